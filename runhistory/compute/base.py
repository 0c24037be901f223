"""Compute targets: where jobs run. A target is registered in the workspace by name and kind.

A target's one duty is :meth:`ComputeTarget.start`: run the job's supervisor
(``python -m runhistory.jobs.supervisor RUN_ID``, see :meth:`supervisor_command`)
somewhere, with the workspace URIs in its environment and a working folder of its own.
The supervisor does everything else, so a new kind of target (a Ray cluster) is one
more subclass with its own ``kind``, provisioning configuration and ``start``.
"""

from __future__ import annotations

import abc
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from runhistory import workspace as workspace_module
from runhistory.core import settings
from runhistory.core.errors import InvalidNameError, JobConfigError, NotFoundError
from runhistory.core.validation import validate_target_name
from runhistory.store.base import ComputeTargetRecord, RunFilter, RunStatus

if TYPE_CHECKING:
    from runhistory.run import Run
    from runhistory.workspace import Workspace

LOCAL_TARGET_NAME = "local"  # the built-in target: every workspace has it
LOCAL_KIND = LOCAL_TARGET_NAME  # ...and it is of the local kind, named for it
SUPERVISOR_MODULE = "runhistory.jobs.supervisor"


class ProvisioningConfiguration(abc.ABC):
    """What ``ComputeTarget.create`` registers: a kind of target and its settings."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values, as the workspace stores them."""

    def check(self) -> None:
        """Refuse, in one sentence, a target that cannot be used now (a cluster whose head does not answer)."""


@dataclass(frozen=True)
class ComputeTargetStatus:
    """What ``get_status()`` tells: provisioning state and the target's jobs right now."""

    name: str
    kind: str
    provisioning_state: str
    running_runs: int
    queued_runs: int
    max_concurrent_runs: int | None
    cluster: Mapping[str, Any] | None = None  # a cluster's nodes, CPUs and GPUs (total / free)

    def serialize(self) -> dict[str, Any]:
        """The status as a dict."""
        found = dict(self.__dict__)
        found["cluster"] = None if self.cluster is None else dict(self.cluster)
        return found


class ComputeTarget(abc.ABC):
    """A registered compute target. ``ComputeTarget(ws, name)`` gets one (of its own kind's class);
    ``ComputeTarget.create(ws, name, config)`` registers one; ``"local"`` always exists."""

    kind: ClassVar[str] = ""  # runhistory's name for the kind: how the workspace registers it
    # azureml's name for the kind of target (``ws.compute_targets[name].type == "AmlCompute"``).
    type: ClassVar[str] = ""
    _kinds: ClassVar[dict[str, type["ComputeTarget"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            ComputeTarget._kinds[cls.kind] = cls

    def __new__(cls, workspace: "Workspace", name: str) -> "ComputeTarget":
        record = _lookup(workspace, name)
        target_class = _class_of(record.kind)
        if not issubclass(target_class, cls):
            raise JobConfigError(f"Compute target {name!r} is a {record.kind} target, not a {cls.kind} one.")
        return target_class.from_record(workspace, record)

    def __init__(self, workspace: "Workspace", name: str) -> None:
        """Get the compute target ``name`` of ``workspace`` (NotFoundError when there is none)."""

    @classmethod
    def from_record(cls, workspace: "Workspace", record: ComputeTargetRecord) -> "ComputeTarget":
        """The handle of a target the store returned, of this class (see ``ComputeTarget(ws, name)``
        for one of its own kind's class)."""
        target = object.__new__(cls)
        target._init(workspace, record)
        return target

    def _init(self, workspace: "Workspace", record: ComputeTargetRecord) -> None:
        self.workspace = workspace
        self._record = record

    @staticmethod
    def create(
        workspace: "Workspace", name: str, provisioning_configuration: ProvisioningConfiguration
    ) -> "ComputeTarget":
        """Register a compute target in the workspace (replacing one of that name); it survives restarts."""
        if not isinstance(provisioning_configuration, ProvisioningConfiguration):
            raise JobConfigError(
                f"ComputeTarget.create({name!r}, ...) takes a provisioning configuration such as "
                f"LocalCompute.provisioning_configuration(), got {type(provisioning_configuration).__name__}."
            )
        kind = provisioning_configuration.kind
        _class_of(kind)
        try:
            validate_target_name(name)
        except InvalidNameError as exc:  # a config error here, as every refusal of ComputeTarget.create
            raise JobConfigError(str(exc)) from None
        if name == LOCAL_TARGET_NAME and kind != LOCAL_KIND:
            raise JobConfigError(f"The compute target {LOCAL_TARGET_NAME!r} is built in and must stay a local target.")
        provisioning_configuration.check()
        workspace.store.save_compute_target(name, kind, provisioning_configuration.to_dict())
        return ComputeTarget(workspace, name)

    @staticmethod
    def list(workspace: "Workspace") -> list["ComputeTarget"]:
        """Every compute target of the workspace: ``local`` first, then the others by name."""
        records = {record.name: record for record in workspace.store.list_compute_targets()}
        records.setdefault(LOCAL_TARGET_NAME, _BUILT_IN_LOCAL)
        names = [LOCAL_TARGET_NAME, *sorted(name for name in records if name != LOCAL_TARGET_NAME)]
        return [_class_of(records[name].kind).from_record(workspace, records[name]) for name in names]

    # identity and settings
    @property
    def record(self) -> ComputeTargetRecord:
        """The target as the workspace registered it (a frozen :class:`~runhistory.store.base.ComputeTargetRecord`)."""
        return self._record

    @property
    def name(self) -> str:
        """The target's name in its workspace."""
        return self._record.name

    @property
    def config(self) -> dict[str, Any]:
        """The settings it was created with."""
        return dict(self._record.config)

    @property
    def max_concurrent_runs(self) -> int | None:
        """How many of its jobs may run at once (None: no limit); the others wait Queued."""
        return self._record.config.get("max_concurrent_runs")

    keeps_own_queue: ClassVar[bool] = False  # True: queued jobs wait held in the store, admitted by the target

    @property
    def supervisor_slot_limit(self) -> int | None:
        """How many jobs the target's supervisors let run at once, each waiting for a slot before its
        script starts (None: no limit, or the target keeps its own queue)."""
        return None if self.keeps_own_queue else self.max_concurrent_runs

    @property
    def keep_working_folders(self) -> bool:
        """Whether a job's working folder stays after the job ends (default: it is removed)."""
        return bool(self._record.config.get("keep_working_folders", False))

    @property
    def provisioning_state(self) -> str:
        """``Succeeded`` once the target can take jobs."""
        return "Succeeded"

    # state
    def get_status(self) -> ComputeTargetStatus:
        """Provisioning state and how many of its jobs run and wait right now."""
        store = self.workspace.store

        def count(*statuses: str) -> int:
            return sum(len(store.list_runs(RunFilter(target=self.name, status=status))) for status in statuses)

        return ComputeTargetStatus(
            name=self.name,
            kind=self.kind,
            provisioning_state=self.provisioning_state,
            running_runs=count(RunStatus.STARTING, RunStatus.RUNNING),
            queued_runs=count(RunStatus.QUEUED),
            max_concurrent_runs=self.max_concurrent_runs,
        )

    def wait_for_completion(
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: float = 20,
        is_delete_operation: bool = False,
    ) -> None:
        """Wait until the target is provisioned; with ``show_output``, say so.

        A local target is ready as soon as it is registered, so azureml's options
        (``min_node_count``, ``timeout_in_minutes``, ...) have nothing to wait for here.
        """
        if show_output:
            limit = self.max_concurrent_runs
            at_once = "no limit on jobs at once" if limit is None else f"at most {limit} jobs at once"
            print(f"Compute target {self.name!r} ({self.kind}): {self.provisioning_state}, {at_once}.", flush=True)

    # jobs
    def check_can_run(self) -> None:
        """Refuse, in one sentence and before any run is created, a job this target cannot run now."""

    @abc.abstractmethod
    def start(self, run: "Run") -> None:
        """Start the supervisor of a submitted (Queued) job run, and return without waiting for it."""

    def admit_queued_runs(self, *, leaving: str | None = None) -> list[str]:
        """Start the queued jobs that have room now, for a target that keeps its own queue; their run
        ids. ``leaving``: the run id of a job whose room frees in a moment (an ending supervisor's
        own). A local target's jobs wait for a slot themselves, so there is nothing to admit."""
        return []

    def prepare_admission(self) -> None:
        """Import and connect what :meth:`admit_queued_runs` needs (a job's supervisor calls it while
        its script runs, so that the job's end admits the next without delay)."""

    def cancel_job(self, run: "Run") -> None:
        """The job run was just set CancelRequested: tell the target. A local job's supervisor sees
        the request itself, so there is nothing to tell."""

    def supervisor_command(self, run: "Run", python: str = sys.executable) -> list[str]:
        """The command that supervises ``run``: the same everywhere, given the environment below."""
        return [python, "-m", SUPERVISOR_MODULE, run.id]

    def supervisor_environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the workspace URIs, and no run id."""
        env = dict(os.environ if base is None else base)
        env.pop(settings.RUN_ID.name, None)  # a job submitted from inside a job is not that job
        env[settings.TRACKING_URI.name] = self.workspace.tracking_uri
        env[settings.ARTIFACT_URI.name] = self.workspace.artifact_uri
        token = getattr(self.workspace.store, "token", None)  # a runhistory server's API token
        if token:
            env[settings.TOKEN.name] = token
        return env

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComputeTarget) and (other.workspace, other.name) == (self.workspace, self.name)

    def __hash__(self) -> int:
        return hash((self.workspace, self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self._record.config!r})"

    workspace: "Workspace"
    _record: ComputeTargetRecord


_BUILT_IN_LOCAL = ComputeTargetRecord(LOCAL_TARGET_NAME, LOCAL_KIND, {}, 0.0)


def compute_targets_by_name(workspace: "Workspace") -> dict[str, ComputeTarget]:
    """Every compute target of ``workspace`` by name, ``local`` first: ``ws.compute_targets``."""
    return {target.name: target for target in ComputeTarget.list(workspace)}


workspace_module.register_compute_target_reader(compute_targets_by_name)


def _lookup(workspace: "Workspace", name: str) -> ComputeTargetRecord:
    record = workspace.store.get_compute_target(name) if isinstance(name, str) else None
    if record is None and name == LOCAL_TARGET_NAME:
        return _BUILT_IN_LOCAL
    if record is None:
        known = ", ".join(target.name for target in ComputeTarget.list(workspace))
        raise NotFoundError(
            f"No compute target {name!r} in the workspace at {workspace.tracking_uri} (it has: {known}); "
            f"create it with ComputeTarget.create."
        )
    return record


def _class_of(kind: str) -> type[ComputeTarget]:
    # every kind is registered: importing this module ran runhistory/compute/__init__.py first
    found = ComputeTarget._kinds.get(kind)
    if found is None:
        raise JobConfigError(
            f"Unknown kind of compute target {kind!r}; this runhistory knows {', '.join(sorted(ComputeTarget._kinds))}."
        )
    return found
