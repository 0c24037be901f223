"""A Ray cluster as runhistory's Ray target sees it: Ray's Jobs API (``JobSubmissionClient``), its
nodes (Ray's State API) and the resources in use. Every failure to reach the head is one sentence
(:class:`~runhistory.core.errors.ComputeUnavailableError`) naming the address.

Ray is imported on first use (``pip install 'runhistory[ray]'``): the local target never pays for it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from runhistory.core.errors import ComputeUnavailableError, first_line
from runhistory.core.extras import require

if TYPE_CHECKING:
    from ray.job_submission import JobInfo, JobSubmissionClient

FEATURE = "A Ray compute target"
CLUSTER_STATUS_PATH = "/api/cluster_status"  # the dashboard's resource report, as `ray status` shows it
REQUEST_TIMEOUT_S = 10.0
_NOT_FOUND = "status code 404"

_clients: dict[str, "JobSubmissionClient"] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class ClusterResources:
    """A Ray cluster right now: its live nodes, and each resource's total and free amount."""

    address: str
    nodes: int
    node_addresses: tuple[str, ...]
    total: Mapping[str, float]
    free: Mapping[str, float] | None  # None: not asked for

    def serialize(self) -> dict[str, Any]:
        """The resources as a dict (``nodes``, ``cpus_total``, ``cpus_free``, ``gpus_total``, ``gpus_free``, ...)."""
        free = self.free
        return {
            "address": self.address,
            "nodes": self.nodes,
            "cpus_total": self.total.get("CPU", 0.0),
            "cpus_free": None if free is None else free.get("CPU", 0.0),
            "gpus_total": self.total.get("GPU", 0.0),
            "gpus_free": None if free is None else free.get("GPU", 0.0),
        }


class RayCluster:
    """The Jobs API and resources of the Ray cluster whose head answers at ``address``
    (``http://HEAD:8265``, or ``auto``: ``$RAY_ADDRESS``, else the cluster on this machine)."""

    def __init__(self, address: str) -> None:
        self.address = address

    # --- jobs ---

    def submit(
        self,
        submission_id: str,
        entrypoint: str,
        *,
        resources: Mapping[str, float],
        runtime_env: Mapping[str, Any],
    ) -> bool:
        """Submit a job under ``submission_id`` unless the cluster has it already (a resubmit is
        idempotent); True when this call submitted it. ``resources`` are the driver's: CPU, GPU,
        memory (bytes) and custom ones, always set so that the driver goes to a node with room."""
        if self.job(submission_id) is not None:
            return False
        custom = {name: amount for name, amount in resources.items() if name not in ("CPU", "GPU", "memory")}
        with self._calling("submit a job"):
            self.client.submit_job(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env=dict(runtime_env),
                entrypoint_num_cpus=resources.get("CPU", 0),
                entrypoint_num_gpus=resources.get("GPU", 0),
                entrypoint_memory=int(resources.get("memory", 0)),
                entrypoint_resources=custom or None,
            )
        return True

    def job(self, submission_id: str) -> "JobInfo | None":
        """What the cluster knows of the job, or None when it does not know it."""
        try:
            with self._calling("read a job"):
                return self.client.get_job_info(submission_id)
        except _JobNotFound:
            return None

    def stop(self, submission_id: str) -> bool:
        """Ask the cluster to stop the job (SIGTERM, then SIGKILL); False when it does not know it."""
        try:
            with self._calling("stop a job"):
                return bool(self.client.stop_job(submission_id))
        except _JobNotFound:
            return False

    def log_tail(self, submission_id: str, lines: int = 20) -> str:
        """The last ``lines`` lines of the job's entrypoint output, as Ray keeps it ("" when none)."""
        try:
            with self._calling("read a job's log"):
                text = self.client.get_job_logs(submission_id)
        except _JobNotFound:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    # --- the cluster ---

    def resources(self, *, with_free: bool = False) -> ClusterResources:
        """The live nodes and their resources' totals as the nodes register them (fresh); with
        ``with_free`` also the free amounts as Ray's autoscaler reports them (every few seconds)."""
        state = require("ray.util.state", extra="ray", feature=FEATURE)
        with self._calling("list its nodes"):
            nodes = state.list_nodes(address=self.api_address, timeout=int(REQUEST_TIMEOUT_S))
        alive = [node for node in nodes if node.state == "ALIVE"]
        total: dict[str, float] = {}
        for node in alive:
            for name, amount in (node.resources_total or {}).items():
                total[name] = total.get(name, 0.0) + amount
        used = self._used() if with_free else None
        free = None if used is None else {name: max(0.0, amount - used.get(name, 0.0)) for name, amount in total.items()}
        addresses = tuple(sorted({node.node_ip for node in alive}))
        return ClusterResources(self.api_address, len(alive), addresses, total, free)

    def _used(self) -> dict[str, float]:
        """What the autoscaler's last report says is in use ({} when the dashboard has no report)."""
        import httpx  # a dependency of runhistory's

        with self._calling("report its resources"):
            response = httpx.get(self.api_address + CLUSTER_STATUS_PATH, timeout=REQUEST_TIMEOUT_S)
        try:
            usage = response.json()["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
            return {name: float(pair[0]) for name, pair in usage.items()}
        except (ValueError, KeyError, TypeError, IndexError):
            return {}

    # --- the client ---

    @property
    def client(self) -> "JobSubmissionClient":
        """Ray's Jobs API client for this address (one per process and address)."""
        with _clients_lock:
            found = _clients.get(self.address)
        if found is not None:
            return found
        job_submission = require("ray.job_submission", extra="ray", feature=FEATURE)
        with self._calling("answer"):
            client = job_submission.JobSubmissionClient(None if self.address == "auto" else self.address)
        with _clients_lock:
            return _clients.setdefault(self.address, client)

    @property
    def api_address(self) -> str:
        """The head's Jobs API URL as Ray resolved it (``auto`` and ``$RAY_ADDRESS`` applied)."""
        return self.client.get_address().rstrip("/")

    def ping(self) -> None:
        """Return once the head answers; :class:`ComputeUnavailableError` naming the address when it does not."""
        with self._calling("answer"):
            self.client.get_version()

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ConnectionError, OSError) as exc:  # requests' errors are OSErrors too
            reason = "" if self.address in str(exc) else f" ({first_line(exc).rstrip('.')})"  # Ray's own names the address
            raise ComputeUnavailableError(
                f"The Ray cluster at {self.address} did not {what}{reason}; is its head running? "
                f"`ray start --head` starts one."
            ) from None
        except RuntimeError as exc:  # the Jobs API answered with an error status
            if _NOT_FOUND in str(exc):
                raise _JobNotFound(str(exc)) from None
            raise ComputeUnavailableError(f"The Ray cluster at {self.address} did not {what}: {first_line(exc)}") from None


class _JobNotFound(LookupError):
    """The Jobs API does not know the job (404)."""

