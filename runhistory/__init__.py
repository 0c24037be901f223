"""runhistory: experiment run history with TensorBoard built in.

The public names load on first use (PEP 562), so that a process which needs only a
small part of runhistory (a job's supervisor, ``runhistory --version``) starts fast.
Loading any of them loads the compute targets too: ``runhistory.compute`` registers the
reader of ``ws.compute_targets`` with the workspace module (which sits below compute).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.jobs.config import Estimator, ScriptRunConfig
    from runhistory.run import Run
    from runhistory.workspace import Workspace

from runhistory.core.version import __version__

VERSION = __version__  # azureml.core.VERSION's counterpart: the package version string

_HOMES = {
    "Estimator": "runhistory.jobs.config",
    "Experiment": "runhistory.experiment",
    "Run": "runhistory.run",
    "ScriptRunConfig": "runhistory.jobs.config",
    "Workspace": "runhistory.workspace",
}

# Loaded with any public name: the compute targets (they register ``ws.compute_targets``).
_ALSO_LOADED = "runhistory.compute"

__all__ = ["VERSION", "Estimator", "Experiment", "Run", "ScriptRunConfig", "Workspace", "__version__"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'runhistory' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    importlib.import_module(_ALSO_LOADED)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
