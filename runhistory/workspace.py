"""The workspace: where run history and files live, found from a config or created on first use.

Within the SDK, ``run`` imports ``experiment`` and ``workspace``, and ``experiment`` imports
``workspace``. The few calls that hand back an object of a module above (``ws.experiments``,
``ws.get_run``, ``exp.start_logging``) import its class where they build it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from runhistory.backends import WORKSPACE_FOLDER_NAME, Backends, open_backends
from runhistory.core import settings
from runhistory.core.errors import NotFoundError, RunHistoryError, WorkspaceNotFoundError
from runhistory.core.paths import refuse_non_folder
from runhistory.core.uris import redact_uri

if TYPE_CHECKING:
    from runhistory.artifacts.base import ArtifactStore
    from runhistory.store.base import RunStore
    from runhistory.experiment import Experiment
    from runhistory.run import Run

CONFIG_FOLDER = WORKSPACE_FOLDER_NAME  # the embedded default's folder, which holds its config
CONFIG_FILE = "config.json"
MAX_RUN_NUMBER = 2**63 - 1

# What lists a workspace's compute targets (``ws.compute_targets``). The compute layer sits above
# this one, so it registers its reader here when ``runhistory.compute`` is imported.
ComputeTargetReader = Callable[["Workspace"], Mapping[str, Any]]
_compute_target_reader: ComputeTargetReader | None = None


def register_compute_target_reader(reader: ComputeTargetReader) -> None:
    """Make ``ws.compute_targets`` call ``reader(ws)`` (``runhistory.compute`` registers its own)."""
    global _compute_target_reader
    _compute_target_reader = reader


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
        *,
        create: bool = True,
    ) -> None:
        # token: the API token of a runhistory server (http(s):// URIs); by default
        # $RUNHISTORY_TOKEN, else the one `runhistory login URL` saved. create=False opens only
        # a workspace that exists (WorkspaceNotFoundError otherwise) and writes nothing new.
        artifact = os.fspath(artifact_uri) if artifact_uri else None
        self._backends: Backends = open_backends(tracking_uri, artifact, token, create=create)
        self.tracking_uri: str = self._backends.store.uri
        self.artifact_uri: str = self._backends.artifacts.uri

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, *, create: bool = True) -> "Workspace":
        """The workspace of the config at ``path`` (a file, or a folder holding one) when given;
        else the one named by ``$RUNHISTORY_TRACKING_URI``; else the nearest config.

        The config is searched in the working folder and its parents, as
        ``.runhistory/config.json`` or ``config.json``. Where there is none, the embedded
        default ``./.runhistory/`` is created and used, unless ``create`` is False: then
        nothing is written (no folder, database or config) and :class:`WorkspaceNotFoundError`
        says where it looked.
        """
        try:
            location = locate_workspace(path)
        except WorkspaceNotFoundError:
            if not create or path is not None:
                raise
            return cls.create(Path.cwd() / CONFIG_FOLDER)
        try:
            return cls(location.tracking_uri, location.artifact_uri, create=create)
        except WorkspaceNotFoundError as exc:
            raise WorkspaceNotFoundError(f"The workspace of {location.source} does not exist yet: {exc}") from exc

    @classmethod
    def create(
        cls, path_or_uri: str | os.PathLike, artifact_uri: str | os.PathLike | None = None
    ) -> "Workspace":
        """Create (or open) a workspace. A folder gets an embedded store and a config.json."""
        text = os.fspath(path_or_uri)
        if "://" in text:
            return cls(text, artifact_uri)
        folder = Path(text).expanduser().resolve()
        refuse_non_folder(folder, "Cannot create a workspace at")
        folder.mkdir(parents=True, exist_ok=True)
        config_file = folder / CONFIG_FILE
        if not config_file.exists():
            config = {"tracking_uri": ".", "artifact_uri": os.fspath(artifact_uri) if artifact_uri else "artifacts"}
            config_file.write_text(json.dumps(config, indent=2) + "\n")
        return cls._from_config_file(config_file)

    @classmethod
    def _from_config_file(cls, config_file: Path, *, create: bool = True) -> "Workspace":
        location = _location_of_config(config_file)
        return cls(location.tracking_uri, location.artifact_uri, create=create)

    @property
    def backends(self) -> Backends:
        """What the workspace talks to: its store, its artifact store and the buffer its runs'
        metrics wait in (one per workspace URI in a process, shared by every handle)."""
        return self._backends

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
        from runhistory.experiment import Experiment  # a handle of the object above: see the module's note

        return {record.name: Experiment.from_record(self, record) for record in self.store.list_experiments()}

    @property
    def compute_targets(self) -> dict[str, Any]:
        """Every compute target of the workspace (a :class:`~runhistory.compute.ComputeTarget`), by
        name; ``local`` always exists."""
        if _compute_target_reader is None:
            raise RunHistoryError(
                "ws.compute_targets needs runhistory's compute targets: import runhistory.compute "
                "(`from runhistory import Workspace` does so)."
            )
        return dict(_compute_target_reader(self))

    def find_compute_target(self, name: str | None) -> Any | None:
        """The compute target called ``name`` (a :class:`~runhistory.compute.ComputeTarget`), or
        None when there is none or the compute targets are not loaded (a reader of run history)."""
        if _compute_target_reader is None or not name:
            return None
        return dict(_compute_target_reader(self)).get(name)

    def local_folders(self) -> list[Path]:
        """What on this machine holds the workspace itself: no upload or job snapshot may include it.

        For an embedded workspace: its folder when the database lives in a folder of its own
        (``.runhistory/``), else the database file and its ``-wal``, ``-shm``, ``-journal`` and
        ``.lock`` companions; and the artifact folder when the files are kept in a local folder.
        Empty for a server, or PostgreSQL with S3. Entries may be files: test a path ``p``
        with ``p == entry or p.is_relative_to(entry)``.
        """
        return self._backends.local_paths()

    @property
    def name(self) -> str:
        """The workspace's name (azureml's ``ws.name``): the name of the workspace's folder for an
        embedded one (``.runhistory`` is named by the folder that holds it), the database's name
        for PostgreSQL, ``HOST:PORT`` for a runhistory server."""
        return self._backends.display_name()

    @property
    def location(self) -> str:
        """Where the run history lives (azureml's Azure region): ``"local"`` for an embedded
        workspace, else its tracking URI with any password replaced by ``***``."""
        return "local" if self.tracking_uri.startswith("sqlite:///") else redact_uri(self.tracking_uri)

    @property
    def subscription_id(self) -> str:
        """Always ``""``: a runhistory workspace belongs to no Azure subscription (kept so that
        azureml code printing it still runs)."""
        return ""

    @property
    def resource_group(self) -> str:
        """Always ``""``: a runhistory workspace belongs to no Azure resource group (kept so that
        azureml code printing it still runs)."""
        return ""

    def get_run(self, run_ref: str) -> "Run":
        """A run by id, or by ``EXPERIMENT:NUMBER``."""
        from runhistory.run import Run  # a handle of the object above: see the module's note

        store = self.store
        record = store.get_run(run_ref)
        if record is None and ":" in run_ref:
            experiment_name, _, number = run_ref.rpartition(":")
            experiment = store.get_experiment(experiment_name)
            # a run number is a positive int64 in every store; beyond it there is no such run
            if experiment is not None and number.isascii() and number.isdigit() and len(number) <= 19 and 0 < int(number) <= MAX_RUN_NUMBER:
                record = store.get_run_by_number(experiment.id, int(number))
        if record is None:
            raise NotFoundError(f"No run {run_ref!r} in the workspace at {self.tracking_uri} (give an id or EXPERIMENT:NUMBER).")
        return Run.from_record(self, record)

    def search_runs(
        self,
        filter: str | None = None,
        order_by: "str | Iterable[str] | None" = None,
        experiments: "Iterable[str] | None" = None,
        include_children: bool = True,
    ) -> "Iterator[Run]":
        """Runs of every experiment (or of the ones named in ``experiments``) that pass ``filter``
        (the run query language, see :mod:`runhistory.store.query`), sorted by ``order_by`` (newest
        first without it), read a page at a time as the iterator advances; children too unless
        ``include_children`` is False. An unknown experiment name raises :class:`NotFoundError`."""
        from runhistory.experiment import iter_runs, query_filter  # see the module's note
        from runhistory.run import Run
        from runhistory.store.base import RunFilter

        ids: tuple[int, ...] = ()
        if experiments is not None:
            names = [experiments] if isinstance(experiments, str) else list(experiments)
            ids = tuple(self._experiment_id(name) for name in names)
            if not ids:
                return iter(())
        run_filter = query_filter(RunFilter(top_level_only=not include_children, experiment_ids=ids), filter, order_by)
        return (Run.from_record(self, record) for record in iter_runs(self.store, run_filter))

    def _experiment_id(self, name: str) -> int:
        found = self.store.get_experiment(name) if isinstance(name, str) else None
        if found is None:
            raise NotFoundError(f"No experiment {name!r:.80} in the workspace at {self.tracking_uri}.")
        return found.id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and (self.tracking_uri, self.artifact_uri) == (
            other.tracking_uri,
            other.artifact_uri,
        )

    def __hash__(self) -> int:
        return hash((self.tracking_uri, self.artifact_uri))

    def __repr__(self) -> str:
        return f"Workspace(tracking_uri={redact_uri(self.tracking_uri)!r}, artifact_uri={self.artifact_uri!r})"


@dataclass(frozen=True)
class WorkspaceLocation:
    """Where a workspace's run history and files are, and what said so (for messages)."""

    tracking_uri: str
    artifact_uri: str | None
    source: str


def locate_workspace(path: str | os.PathLike | None = None) -> WorkspaceLocation:
    """Where the workspace that :meth:`Workspace.from_config` would open is, without opening it.

    Raises :class:`WorkspaceNotFoundError` (saying where it looked) when there is no config at
    ``path``, or, without ``path`` and ``$RUNHISTORY_TRACKING_URI``, in the working folder and
    its parents.
    """
    if path is not None:
        config = _config_at(Path(path))
        if config is None:
            raise WorkspaceNotFoundError(f"No runhistory config.json at {Path(path).resolve()}.")
        return _location_of_config(config)
    if settings.TRACKING_URI.is_set():
        return WorkspaceLocation(
            settings.TRACKING_URI.text(), settings.ARTIFACT_URI.text() or None, f"${settings.TRACKING_URI.name}"
        )
    searched = [Path.cwd(), *Path.cwd().parents]
    for folder in searched:
        config = _config_at(folder)
        if config is not None:
            return _location_of_config(config)
    folders = ", ".join(str(folder) for folder in searched)
    raise WorkspaceNotFoundError(
        f"No runhistory workspace found: no {CONFIG_FOLDER}/{CONFIG_FILE} or {CONFIG_FILE} in {folders}, "
        f"and ${settings.TRACKING_URI.name} is not set; give the workspace's path or URI (--workspace), "
        f"or start a run here to create ./{CONFIG_FOLDER}/."
    )


def _location_of_config(config_file: Path) -> WorkspaceLocation:
    try:
        text = config_file.read_text()
    except OSError as exc:
        raise RunHistoryError(f"Cannot read the runhistory config {config_file}: {exc.strerror or exc}.") from exc
    try:
        config = json.loads(text)
        tracking = config["tracking_uri"]
        artifact = config.get("artifact_uri")
        if not isinstance(tracking, str) or not isinstance(artifact, (str, type(None))):
            raise TypeError("tracking_uri and artifact_uri must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise RunHistoryError(f"{config_file} is not a runhistory config (a JSON object with tracking_uri).") from exc
    base = config_file.parent
    return WorkspaceLocation(_relative_to(base, tracking), _relative_to(base, artifact) if artifact else None, str(config_file))


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

