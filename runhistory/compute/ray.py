"""The Ray target: each job is a Ray job whose entrypoint is the job's supervisor; the queue is ours.

Ray has no job queue of its own that we want: a Ray job beyond the cluster's room sits PENDING
and is failed after 15 minutes. So a job submitted to a Ray target is *held* Queued in the run
history (no process of its own, no heartbeat expected), and *admitted* when the cluster has room:
moved to Starting by :meth:`~runhistory.store.base.RunStore.admit_queued_jobs` (one transaction,
serialised per target, so that two admitters never admit one run twice nor more than the room),
then submitted to Ray with the run id as ``submission_id`` (a resubmit is a no-op). Admission runs
at each submit, when each job ends (its supervisor admits the next before it exits), while
someone waits for a queued run of the target, and at ``target.get_status()``: no daemon of ours
lives on the head.

The room: at most ``max_concurrent_runs`` in flight, and at most as many as the cluster's total
resources hold jobs of this shape (see :func:`jobs_in_flight_allowed`). A run is
Starting while Ray holds its job PENDING (a runtime_env may take minutes to install) and until its
supervisor starts the script; from then on the supervisor reports, as on the local target. A job
that ends without its supervisor saying so (Ray could not set up its runtime_env, the head
restarted and forgot it) is ended at the next admission from what Ray tells.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

import psutil

from runhistory.compute.base import SUPERVISOR_MODULE, ComputeTarget, ComputeTargetStatus, ProvisioningConfiguration
from runhistory.compute.ray_cluster import ClusterResources, RayCluster
from runhistory.core.errors import ComputeUnavailableError, JobConfigError, first_line
from runhistory.core.extras import require
from runhistory.core.uris import HTTP_SCHEMES, machine_local_uri, redact_uri
from runhistory.store.base import RunFilter, RunRecord, RunStatus

if TYPE_CHECKING:
    from runhistory.run import Run

RAY_KIND = "ray"
ENTRYPOINT = "python -m " + SUPERVISOR_MODULE + " {run_id} --temp-folder"
# Ray's wait between the SIGTERM and the SIGKILL of a stopped job: time for the supervisor to end
# the script's tree (2 s grace), upload ./outputs and write Canceled.
STOP_WAIT_S = 30
NOT_FOUND_RECHECK_S = 3.0
LOG_TAIL_LINES = 20
READY_POLL_S = 1.0
RESOURCES_FRESH_S = 2.0
_IN_FLIGHT = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCEL_REQUESTED)
_RAY_ENDED = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(frozen=True)
class RayComputeConfiguration(ProvisioningConfiguration):
    """Settings of a Ray target: the head's Jobs API address and what each job's driver needs."""

    kind: ClassVar[str] = RAY_KIND
    address: str = "auto"
    num_cpus: float = 1
    num_gpus: float = 0
    memory: int | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    max_concurrent_runs: int | None = None
    runtime_env: Mapping[str, Any] = field(default_factory=dict)
    keep_working_folders: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The settings as the workspace stores them."""
        return {
            "address": self.address,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "memory": self.memory,
            "resources": dict(self.resources),
            "max_concurrent_runs": self.max_concurrent_runs,
            "runtime_env": dict(self.runtime_env),
            "keep_working_folders": self.keep_working_folders,
        }

    def check(self) -> None:
        """Refuse a cluster whose head does not answer (one sentence naming the address)."""
        RayCluster(self.address).ping()


class RayCompute(ComputeTarget):
    """Runs jobs on a Ray cluster through Ray's Jobs API (``pip install 'runhistory[ray]'``).

    Each job's driver is runhistory's supervisor, placed by Ray on a node with room for
    ``num_cpus`` / ``num_gpus`` / ``memory`` / ``resources``; the supervisor downloads the run's
    snapshot, runs the script and streams its files, as on the local target, so every node must
    reach the workspace (a ``runhistory server``, or PostgreSQL + S3; an embedded workspace only
    when every node is this machine) and have runhistory installed (or get it from ``runtime_env``).
    ``runtime_env`` is Ray's: the script's own dependencies on the nodes (``pip``, ``conda``,
    ``env_vars``); its ``working_dir`` is refused, the code comes from the run's snapshot.
    """

    kind: ClassVar[str] = RAY_KIND
    type: ClassVar[str] = "AmlCompute"  # it plays azureml's training cluster (see LocalCompute)
    keeps_own_queue: ClassVar[bool] = True
    _read_resources: tuple[float, ClusterResources] | None = None  # (monotonic time, reading)

    @staticmethod
    def provisioning_configuration(
        address: str = "auto",
        num_cpus: float = 1,
        num_gpus: float = 0,
        memory: int | None = None,
        resources: Mapping[str, float] | None = None,
        max_concurrent_runs: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        keep_working_folders: bool = False,
    ) -> RayComputeConfiguration:
        """The configuration ``ComputeTarget.create`` registers. ``address``: ``http://HEAD:8265``
        (the head's dashboard), or ``auto`` (``$RAY_ADDRESS``, else the cluster on this machine);
        ``memory`` in bytes; ``resources`` Ray's custom resources per job."""
        return RayComputeConfiguration(
            address=_checked_address(address),
            num_cpus=_checked_amount("num_cpus", num_cpus),
            num_gpus=_checked_amount("num_gpus", num_gpus),
            memory=None if memory is None else int(_checked_amount("memory", memory, whole=True)),
            resources=_checked_resources(resources),
            max_concurrent_runs=_checked_limit(max_concurrent_runs),
            runtime_env=_checked_runtime_env(runtime_env),
            keep_working_folders=_checked_flag("keep_working_folders", keep_working_folders),
        )

    # --- settings ---

    @property
    def cluster(self) -> RayCluster:
        """The cluster's Jobs API and resources."""
        return RayCluster(self._record.config.get("address", "auto"))

    @property
    def demand(self) -> dict[str, float]:
        """What each job's driver takes on its node: Ray's resource names and amounts (no zeros)."""
        config = self._record.config
        wanted = {"CPU": config.get("num_cpus", 1), "GPU": config.get("num_gpus", 0), "memory": config.get("memory") or 0}
        wanted.update(config.get("resources") or {})
        return {name: float(amount) for name, amount in wanted.items() if amount}

    # --- submitting ---

    def check_can_run(self) -> None:
        """Refuse, before anything is created, a job the cluster cannot run: a head that does not
        answer, a job bigger than the whole cluster, a workspace its nodes cannot reach."""
        resources = self._resources()
        for name, amount in self.demand.items():
            if amount > resources.total.get(name, 0.0):
                raise JobConfigError(
                    f"Each job of compute target {self.name!r} needs {amount:g} {name}, but the Ray cluster at "
                    f"{resources.address} has {resources.total.get(name, 0.0):g} in all ({resources.nodes} nodes): it would wait forever."
                )
        problem = unreachable_workspace(self.workspace.tracking_uri, self.workspace.artifact_uri, resources.node_addresses)
        if problem:
            raise JobConfigError(problem)

    def start(self, run: "Run") -> None:
        """Hold the job in the target's queue, then admit what has room (this job, if it fits)."""
        self.workspace.store.hold_in_queue(run.id)
        self.admit_queued_runs()

    def admit_queued_runs(self, *, leaving: str | None = None) -> list[str]:
        """Submit to Ray the oldest queued jobs that have room now; their run ids. ``leaving``: a job
        of this target, still in flight, whose room frees in a moment (its supervisor ends it right
        after): one more is admitted, and Ray holds it PENDING until that room frees."""
        self._end_lost_jobs()
        most = jobs_in_flight_allowed(self.demand, self._resources().total, self.max_concurrent_runs)
        record = None if leaving is None else self.workspace.store.get_run(leaving)
        if record is not None and record.status in _IN_FLIGHT:
            most += 1
        admitted = self.workspace.store.admit_queued_jobs(self.name, most)
        failures = []
        for run_id in admitted:
            try:
                self._submit(run_id)
            except ComputeUnavailableError as exc:
                self.workspace.store.set_status(run_id, RunStatus.QUEUED)  # back in the queue, still held
                failures.append(exc)
        if failures:
            raise failures[0]
        return admitted

    def prepare_admission(self) -> None:
        """Import Ray and connect to the head now (a job's supervisor, while its script runs)."""
        self.cluster.ping()

    def _resources(self) -> ClusterResources:
        """The cluster's nodes and totals, read again when the last reading of this handle is older
        than ``RESOURCES_FRESH_S`` (a submit checks them, then admits: one request, not two)."""
        now = time.monotonic()
        if self._read_resources is None or now - self._read_resources[0] > RESOURCES_FRESH_S:
            self._read_resources = (now, self.cluster.resources())
        return self._read_resources[1]

    def _submit(self, run_id: str) -> None:
        env = self.supervisor_environment(base={})
        env["RAY_JOB_STOP_WAIT_TIME_S"] = str(STOP_WAIT_S)
        runtime_env = dict(self._record.config.get("runtime_env") or {})
        runtime_env["env_vars"] = {**(runtime_env.get("env_vars") or {}), **env}
        self.cluster.submit(run_id, ENTRYPOINT.format(run_id=run_id), resources=self.demand, runtime_env=runtime_env)

    # --- jobs that ended without their supervisor ---

    def _end_lost_jobs(self) -> None:
        """End the admitted runs whose Ray job ended (or vanished) before their supervisor beat."""
        unknown = []
        for record in self._runs(RunStatus.STARTING, RunStatus.CANCEL_REQUESTED):
            if record.heartbeat_time is not None:
                continue  # its supervisor runs: it reports itself, and its heartbeat tells if it dies
            job = self.cluster.job(record.id)
            if job is None:
                unknown.append(record.id)
            elif _ray_status(job) in _RAY_ENDED:
                self._end_from_ray(record.id, job)
        if unknown:
            time.sleep(NOT_FOUND_RECHECK_S)  # an admitter may be submitting it right now
            for run_id in unknown:
                if self.cluster.job(run_id) is None:
                    self._end_lost(run_id)

    def _end_from_ray(self, run_id: str, job: Any) -> None:
        status = _ray_status(job)
        if status == "STOPPED":
            self.workspace.store.set_status(run_id, RunStatus.CANCELED)
            return
        tail = self.cluster.log_tail(run_id, LOG_TAIL_LINES)
        message = (
            f"The Ray job of this run ended {status} before its supervisor reported "
            f"({job.error_type or 'no error type'}, exit code {job.driver_exit_code}): {job.message or ''}".rstrip(": ")
        )
        error = {
            "message": message + (f"\nThe end of its log:\n{tail}" if tail else ""),
            "code": "RayJobFailed",
            "error_type": job.error_type,
            "exit_code": job.driver_exit_code,
            "log_tail": tail,
        }
        self.workspace.store.set_status(run_id, RunStatus.FAILED, error=error)

    def _end_lost(self, run_id: str) -> None:
        message = (
            f"The Ray cluster at {self.cluster.address} does not know this run's job (its head restarted, "
            f"or whoever admitted the run died before submitting it); the job did not run."
        )
        self.workspace.store.set_status(run_id, RunStatus.FAILED, error={"message": message, "code": "RayJobLost"})

    def _runs(self, *statuses: str) -> list[RunRecord]:
        store = self.workspace.store
        return [record for status in statuses for record in store.list_runs(RunFilter(target=self.name, status=status))]

    # --- canceling ---

    def cancel_job(self, run: "Run") -> None:
        """The run was just set CancelRequested (a run still held in the queue is Canceled by the store
        itself). A job Ray holds PENDING, or not yet submitted by its admitter, is stopped and
        Canceled (its supervisor, should it start, sees that and exits); a running one is stopped:
        Ray sends its supervisor SIGTERM, and the supervisor ends the script's tree and writes Canceled."""
        job = self.cluster.job(run.id)
        if job is not None:
            self.cluster.stop(run.id)
        if job is None or _ray_status(job) == "PENDING":
            self.workspace.store.set_status(run.id, RunStatus.CANCELED)

    # --- state ---

    def get_status(self) -> ComputeTargetStatus:
        """The cluster's nodes, CPUs and GPUs (total / free) and this target's jobs running and
        queued; admits what has room first (a queue whose jobs were all lost moves on here too)."""
        self.admit_queued_runs()
        status = super().get_status()
        return ComputeTargetStatus(**{**status.__dict__, "cluster": self.cluster.resources(with_free=True).serialize()})

    def wait_for_completion(
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: float = 20,
        is_delete_operation: bool = False,
    ) -> None:
        """Wait until the cluster's head answers (and has ``min_node_count`` live nodes); with
        ``show_output``, say what the cluster has. ComputeUnavailableError after the time-out."""
        deadline = time.monotonic() + timeout_in_minutes * 60
        told = False
        while True:
            try:
                resources = self.cluster.resources(with_free=True)
                if resources.nodes >= (min_node_count or 1):
                    break
                problem = ComputeUnavailableError(
                    f"The Ray cluster at {resources.address} has {resources.nodes} live nodes, not the {min_node_count} waited for."
                )
            except ComputeUnavailableError as exc:
                problem = exc
            if time.monotonic() >= deadline:
                raise problem
            if show_output and not told:
                print(f"{problem} Waiting up to {timeout_in_minutes:g} min...", flush=True)
                told = True
            time.sleep(READY_POLL_S)
        if show_output:
            summary = resources.serialize()
            print(
                f"Compute target {self.name!r} (ray at {resources.address}): Succeeded, {summary['nodes']} nodes, "
                f"{summary['cpus_free']:g}/{summary['cpus_total']:g} CPUs free, {summary['gpus_free']:g}/{summary['gpus_total']:g} GPUs free.",
                flush=True,
            )


def jobs_in_flight_allowed(demand: Mapping[str, float], total: Mapping[str, float], limit: int | None) -> int:
    """How many of a target's jobs may be in flight at once: as many as the cluster's ``total``
    resources hold, and no more than ``limit``. Counted against totals, not against what Ray reports
    free: that report is refreshed every few seconds, and our own in-flight jobs are known exactly
    (the store counts them when it admits); jobs of others on the cluster make ours wait PENDING."""
    fit = most_that_fit(demand, total)
    return fit if limit is None else min(fit, limit)


def most_that_fit(demand: Mapping[str, float], amounts: Mapping[str, float]) -> int:
    """How many jobs of ``demand`` fit in ``amounts`` (a large number when the demand is nothing)."""
    fits = [math.floor(amounts.get(name, 0.0) / amount + 1e-9) for name, amount in demand.items() if amount > 0]
    return min(fits) if fits else 1_000_000


def unreachable_workspace(tracking_uri: str, artifact_uri: str, node_addresses: Iterable[str]) -> str | None:
    """Why nodes at ``node_addresses`` cannot reach the workspace (one sentence), or None when they can:
    a workspace kept on this machine (an embedded one, a local artifact folder, a server or database on
    loopback) serves only nodes that are this machine."""
    elsewhere = [ip for ip in node_addresses if not _is_this_machine(ip)]
    if not elsewhere:
        return None
    for what, uri in (("run history", tracking_uri), ("files", artifact_uri)):
        if machine_local_uri(uri):
            return (
                f"The workspace's {what} ({redact_uri(uri)}) is on this machine, which the Ray nodes at "
                f"{', '.join(elsewhere)} cannot reach; a Ray cluster needs a workspace every node reaches: "
                f"a `runhistory server` (http://HOST:PORT), or PostgreSQL and S3."
            )
    return None


def _ray_status(job: Any) -> str:
    """A Ray job's status as its name (``PENDING``, ``RUNNING``, ``SUCCEEDED``, ...)."""
    return str(getattr(job.status, "value", job.status))


def _is_this_machine(ip: str) -> bool:
    if ip.startswith("127.") or ip == "::1":
        return True
    return any(address.address == ip for addresses in psutil.net_if_addrs().values() for address in addresses)


# --- checks of the configuration ---


def _checked_address(address: Any) -> str:
    if address == "auto" or (isinstance(address, str) and address.startswith(HTTP_SCHEMES) and len(address) > 8):
        return address.rstrip("/")
    raise JobConfigError(
        f"address must be the Ray head's Jobs API address, like 'http://HEAD:8265', or 'auto', got {address!r}."
    )


def _checked_amount(name: str, value: Any, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e18 or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise JobConfigError(f"{name} must be {kind} of 0 or more, got {value!r}.")
    return value


def _checked_resources(resources: Mapping[str, float] | None) -> dict[str, float]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise JobConfigError(f"resources must be a dict of Ray resource names to amounts, got {type(resources).__name__}.")
    checked = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name.isprintable() or not 0 < len(name.strip()) <= 255 or name in ("CPU", "GPU", "memory"):
            raise JobConfigError(f"resources takes custom Ray resources by name (num_cpus, num_gpus and memory have their own), got {name!r}.")
        checked[name] = _checked_amount(f"resources[{name!r}]", amount)
    return checked


def _checked_limit(limit: Any) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise JobConfigError(f"max_concurrent_runs must be a positive integer or None, got {limit!r}.")
    return limit


def _checked_runtime_env(runtime_env: Mapping[str, Any] | None) -> dict[str, Any]:
    if runtime_env is None:
        return {}
    if not isinstance(runtime_env, Mapping):
        raise JobConfigError(f"runtime_env must be a dict (Ray's runtime_env), got {type(runtime_env).__name__}.")
    if "working_dir" in runtime_env:
        raise JobConfigError(
            "runtime_env's working_dir is not used on a runhistory target: a job's code comes from its snapshot "
            "(ScriptRunConfig's source_directory); give the script's dependencies as pip, conda or env_vars."
        )
    env_vars = runtime_env.get("env_vars") or {}
    if not isinstance(env_vars, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()):
        raise JobConfigError("runtime_env's env_vars must map names to strings.")
    runtime_env_class = require("ray.runtime_env", extra="ray", feature="A Ray compute target").RuntimeEnv
    try:
        runtime_env_class(**dict(runtime_env))  # Ray's own checks, now rather than at the first submit
    except (TypeError, ValueError) as exc:
        raise JobConfigError(f"runtime_env is not one Ray takes: {first_line(exc).rstrip('.')}.") from None
    try:
        return json.loads(json.dumps(dict(runtime_env)))
    except (TypeError, ValueError) as exc:
        raise JobConfigError(f"runtime_env must hold JSON values only (it is stored in the workspace): {exc}.") from None


def _checked_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise JobConfigError(f"{name} must be True or False, got {value!r}.")
    return value
