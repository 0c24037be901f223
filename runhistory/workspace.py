"""The workspace: where run history and files live, found from a config or created on first use."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from runhistory.backends import Backends, open_backends
from runhistory.environment import ENV_ARTIFACT_URI, ENV_TRACKING_URI
from runhistory.errors import NotFoundError, RunHistoryError

if TYPE_CHECKING:
    from runhistory.artifacts.base import ArtifactStore
    from runhistory.store.base import RunStore
    from runhistory.compute.base import ComputeTarget
    from runhistory.experiment import Experiment
    from runhistory.run import Run

CONFIG_FOLDER = ".runhistory"
CONFIG_FILE = "config.json"


class Workspace:
    """A run history (experiments, runs, metrics) and the files of its runs.

    ``tracking_uri`` is a folder or ``sqlite:///FILE`` (embedded), or
    ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``; ``artifact_uri`` a folder (by default
    ``artifacts/`` beside the SQLite file, ``~/.runhistory/artifacts/HOST_PORT_DATABASE`` for
    PostgreSQL).
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike,
        artifact_uri: str | os.PathLike | None = None,
        token: str | None = None,
    ) -> None:
        # token: the API token of a runhistory server (http(s):// URIs); by default
        # $RUNHISTORY_TOKEN, else the one `runhistory login URL` saved.
        self._backends: Backends = open_backends(tracking_uri, os.fspath(artifact_uri) if artifact_uri else None, token)
        self.tracking_uri: str = self._backends.store.uri
        self.artifact_uri: str = self._backends.artifacts.uri

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None) -> "Workspace":
        """The workspace of the config at ``path`` (a file, or a folder holding one) when given;
        else the one named by ``$RUNHISTORY_TRACKING_URI``; else the nearest config.

        The config is searched in the working folder and its parents, as
        ``.runhistory/config.json`` or ``config.json``. Where there is none, the embedded
        default ``./.runhistory/`` is created and used.
        """
        if path is not None:
            config = _config_at(Path(path))
            if config is None:
                raise NotFoundError(f"No runhistory config.json at {Path(path).resolve()}.")
            return cls._from_config_file(config)
        if os.environ.get(ENV_TRACKING_URI):
            return cls(os.environ[ENV_TRACKING_URI], os.environ.get(ENV_ARTIFACT_URI) or None)
        for folder in [Path.cwd(), *Path.cwd().parents]:
            config = _config_at(folder)
            if config is not None:
                return cls._from_config_file(config)
        return cls.create(Path.cwd() / CONFIG_FOLDER)

    @classmethod
    def create(
        cls, path_or_uri: str | os.PathLike, artifact_uri: str | os.PathLike | None = None
    ) -> "Workspace":
        """Create (or open) a workspace. A folder gets an embedded store and a config.json."""
        text = os.fspath(path_or_uri)
        if "://" in text:
            return cls(text, artifact_uri)
        folder = Path(text).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            raise RunHistoryError(f"Cannot create a workspace at {folder}: it is a file, not a folder.")
        folder.mkdir(parents=True, exist_ok=True)
        config_file = folder / CONFIG_FILE
        if not config_file.exists():
            config = {"tracking_uri": ".", "artifact_uri": os.fspath(artifact_uri) if artifact_uri else "artifacts"}
            config_file.write_text(json.dumps(config, indent=2) + "\n")
        return cls._from_config_file(config_file)

    @classmethod
    def _from_config_file(cls, config_file: Path) -> "Workspace":
        try:
            config = json.loads(config_file.read_text())
            tracking = config["tracking_uri"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RunHistoryError(f"{config_file} is not a runhistory config (a JSON object with tracking_uri).") from exc
        base = config_file.parent
        artifact = config.get("artifact_uri")
        return cls(_relative_to(base, tracking), _relative_to(base, artifact) if artifact else None)

    @property
    def store(self) -> "RunStore":
        """The run-history store behind the workspace: the one interface every consumer reads through."""
        return self._backends.store

    @property
    def artifacts(self) -> "ArtifactStore":
        """The store of the runs' files behind the workspace."""
        return self._backends.artifacts

    @property
    def experiments(self) -> dict[str, "Experiment"]:
        """Every experiment of the workspace, by name."""
        from runhistory.experiment import Experiment

        return {record.name: Experiment._from_record(self, record) for record in self._backends.store.list_experiments()}

    @property
    def compute_targets(self) -> dict[str, "ComputeTarget"]:
        """Every compute target of the workspace, by name (``local`` always exists)."""
        from runhistory.compute.base import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    def get_run(self, run_ref: str) -> "Run":
        """A run by id, or by ``EXPERIMENT:NUMBER``."""
        from runhistory.run import Run

        store = self._backends.store
        record = store.get_run(run_ref)
        if record is None and ":" in run_ref:
            experiment_name, _, number = run_ref.rpartition(":")
            experiment = store.get_experiment(experiment_name)
            if experiment is not None and number.isdigit():
                record = store.get_run_by_number(experiment.id, int(number))
        if record is None:
            raise NotFoundError(f"No run {run_ref!r} in the workspace at {self.tracking_uri} (give an id or EXPERIMENT:NUMBER).")
        return Run._from_record(self, record)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and (self.tracking_uri, self.artifact_uri) == (
            other.tracking_uri,
            other.artifact_uri,
        )

    def __hash__(self) -> int:
        return hash((self.tracking_uri, self.artifact_uri))

    def __repr__(self) -> str:
        from runhistory.store.sql.engine import redact_uri

        return f"Workspace(tracking_uri={redact_uri(self.tracking_uri)!r}, artifact_uri={self.artifact_uri!r})"


def _config_at(path: Path) -> Path | None:
    """The runhistory config file at ``path`` (a file, or a folder holding one), if any."""
    if path.is_file():
        return path
    for candidate in (path / CONFIG_FOLDER / CONFIG_FILE, path / CONFIG_FILE):
        if candidate.is_file() and _is_runhistory_config(candidate):
            return candidate
    return None


def _is_runhistory_config(path: Path) -> bool:
    try:
        return "tracking_uri" in json.loads(path.read_text())
    except (ValueError, TypeError, OSError):
        return False


def _relative_to(base: Path, uri: str) -> str:
    if "://" in uri:
        return uri
    return str((base / Path(uri).expanduser()).resolve())

