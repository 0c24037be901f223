"""Optional parts of runhistory (``pip install 'runhistory[EXTRA]'``), and the one sentence a
feature says when its extra is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from runhistory.core.errors import MissingExtraError

# extra -> what it enables (the README's install section lists the same)
EXTRAS = {
    "server": "the runhistory server and web UI (FastAPI, uvicorn, Jinja2)",
    "postgres": "PostgreSQL workspaces (psycopg)",
    "s3": "s3:// artifact stores (s3fs)",
    "ray": "Ray compute targets (ray[default])",
    "hyperdrive": "HyperDrive sweeps (Optuna)",
}


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """``import module``, or :class:`MissingExtraError` naming ``feature`` and the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but something it needs is broken: not a missing extra
        raise MissingExtraError(
            f"{feature} needs the {module.split('.')[0]!r} package, which is not installed; "
            f"run: pip install 'runhistory[{extra}]'."
        ) from None
