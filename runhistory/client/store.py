"""The run-history store of a runhistory server, over HTTP (the client of :mod:`runhistory.server`).

Reads and idempotent writes retry with a backoff while the server cannot be reached
(up to ``$RUNHISTORY_HTTP_RETRY_TIMEOUT`` seconds, default 30). Metric batches, run
status changes, tags, properties and small files (up to 1 MiB: images) never fail because the
server is down: they go to the local spool
(:mod:`runhistory.client.spool`) and are sent when it comes back, each batch with its id
so that a retry never duplicates a point. Ending a run waits up to
``$RUNHISTORY_COMPLETE_TIMEOUT`` seconds (default 30) for the spool to drain, then
says what is still spooled and where.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import sys
import threading
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import httpx

from runhistory.core import errors, validation
from runhistory.store import batch_check
from runhistory.store.base import (
    ComputeTargetRecord,
    ExperimentRecord,
    MetricBatch,
    MetricSeries,
    MetricSummary,
    RunFilter,
    RunOwner,
    RunRecord,
    RunStatus,
    RunStore,
)
from runhistory.client.spool import METRICS, REQUEST, STATUS, Retry, Spool, SpoolRecord

API = "/api/v1"
BATCH_ID_HEADER = "X-Runhistory-Batch-Id"
ENV_TOKEN = "RUNHISTORY_TOKEN"
MAX_POINTS_PER_REQUEST = 1_000_000
MAX_BYTES_PER_REQUEST = 32 << 20  # JSON-encoded values per request: half the server's default 64 MiB limit
_RETRYABLE_STATUS = {502, 503, 504}


def config_dir() -> Path:
    """``$RUNHISTORY_CONFIG_DIR``, else ``~/.runhistory``: credentials and the spool live here."""
    configured = os.environ.get("RUNHISTORY_CONFIG_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".runhistory"


def credentials_file() -> Path:
    return config_dir() / "credentials.json"


def normalize_server_url(url: str) -> str:
    return url.rstrip("/")


def save_token(url: str, token: str) -> Path:
    """Remember the token of a server for the CLI and the SDK (a file only its owner can read)."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known.setdefault("servers", {})[normalize_server_url(url)] = {"token": token}
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(known, out, indent=2)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def resolve_token(url: str, token: str | None = None) -> str | None:
    """The token to use: the one given, else ``$RUNHISTORY_TOKEN``, else the one ``runhistory login`` saved."""
    if token:
        return token
    if os.environ.get(ENV_TOKEN):
        return os.environ[ENV_TOKEN]
    try:
        known = json.loads(credentials_file().read_text())
        return known["servers"][normalize_server_url(url)]["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def retry_timeout() -> float:
    return float(os.environ.get("RUNHISTORY_HTTP_RETRY_TIMEOUT", 30))


def complete_timeout() -> float:
    return float(os.environ.get("RUNHISTORY_COMPLETE_TIMEOUT", 30))


class HttpClient:
    """An httpx client on one server: the token, errors mapped back to runhistory's, retries."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = normalize_server_url(url)
        self.token = resolve_token(self.url, token)
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(120.0, connect=5.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def after_fork(self) -> None:
        self._client = self._new_client()

    def close(self) -> None:
        self._client.close()

    def once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; :class:`Retry` when the server cannot be reached or is unavailable."""
        try:
            response = self._client.request(method, API + path, **kwargs)
        except httpx.TransportError as exc:
            raise Retry(f"the runhistory server at {self.url} cannot be reached ({type(exc).__name__}: {exc})") from exc
        if response.status_code in _RETRYABLE_STATUS or response.status_code >= 500:
            raise Retry(f"the runhistory server at {self.url} answered {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise_error(response, self.url)
        return response

    def request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """A request, retried with a backoff while the server is unreachable (a request that is
        not idempotent only when it cannot have reached the server)."""
        deadline = time.monotonic() + retry_timeout()
        delay = 0.05
        while True:
            try:
                return self.once(method, path, **kwargs)
            except Retry as exc:
                sent = not isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout))
                if (sent and not idempotent) or time.monotonic() + delay > deadline:
                    raise errors.StoreUnavailableError(f"{exc}") from None  # may pass: not a refusal
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()


def raise_error(response: httpx.Response, url: str) -> None:
    """Raise the runhistory error the server reported (its class by name, else RunHistoryError)."""
    try:
        body = response.json()
        name, detail = body.get("error"), body.get("detail")
    except ValueError:
        name, detail = None, response.text[:500]
    if isinstance(detail, list):  # a FastAPI validation error
        detail = "; ".join(f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg')}" for item in detail)
    message = detail or f"HTTP {response.status_code}"
    if response.status_code == 401:
        raise errors.RunHistoryError(
            f"The runhistory server at {url} refused the request (401): {message} "
            f"Give a token (Workspace(..., token=...), ${ENV_TOKEN}, or `runhistory login {url}`)."
        )
    if response.status_code == 413:
        raise errors.RunHistoryError(f"The runhistory server at {url} refused a request as too large (413): {message}")
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, errors.RunHistoryError)):
        cls = errors.NotFoundError if response.status_code == 404 else errors.RunHistoryError
    raise cls(message)


def _run(data: dict) -> RunRecord:
    return RunRecord(**data)


class RemoteRunStore(RunStore):
    """A :class:`RunStore` on a runhistory server."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.http = HttpClient(url, token)
        self.uri = self.http.url
        self._known: dict[str, RunRecord] = {}
        self._send_lock = threading.RLock()
        self.spool = Spool(self.uri, self._send_spooled, split=split_metrics_record)
        _live_stores.add(self)

    @property
    def token(self) -> str | None:
        return self.http.token

    # experiments
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        return ExperimentRecord(**self.http.json("POST", "/experiments", json={"name": name}))

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        try:
            return ExperimentRecord(**self.http.json("GET", f"/experiments/{_quote(name)}"))
        except errors.NotFoundError:
            return None

    def list_experiments(self) -> list[ExperimentRecord]:
        return [ExperimentRecord(**item) for item in self.http.json("GET", "/experiments")]

    # runs
    def create_run(
        self,
        experiment_id: int,
        *,
        display_name: str | None = None,
        parent_id: str | None = None,
        status: str = RunStatus.RUNNING,
        run_type: str = "interactive",
        target: str | None = None,
        owner: RunOwner | None = None,
    ) -> RunRecord:
        body = {
            "experiment_id": experiment_id,
            "display_name": display_name,
            "parent_id": parent_id,
            "status": status,
            "run_type": run_type,
            "target": target,
        }
        if owner is not None:  # only then: a server older than the owner columns still takes the run
            body["owner"] = dataclasses.asdict(owner)
        return self._remember(_run(self.http.json("POST", "/runs", json=body, idempotent=False)))

    def _remember(self, record: RunRecord) -> RunRecord:
        self._known[record.id] = record
        return record

    def get_run(self, run_id: str) -> RunRecord | None:
        try:
            return self._remember(_run(self.http.json("GET", f"/runs/{_quote(run_id)}")))
        except errors.NotFoundError:
            return None

    def get_run_by_number(self, experiment_id: int, number: int) -> RunRecord | None:
        try:
            data = self.http.json("GET", "/runs/by-number", params={"experiment_id": experiment_id, "number": number})
        except errors.NotFoundError:
            return None
        return self._remember(_run(data))

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        body = dataclasses.asdict(run_filter)
        body["tags"] = dict(run_filter.tags)
        return [_run(item) for item in self.http.json("POST", "/runs/search", json=body)]

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        only_if_not_terminal: bool = True,
        at: float | None = None,
    ) -> RunRecord:
        at = time.time() if at is None else at  # the change happened now, even if it is sent later
        validation.validate_status(status)  # what the server would refuse never enters the spool
        validation.validate_error(error, run_id)
        validation.validate_wall_time(at, f"time of the status change of run {run_id}")
        body = {"status": status, "error": error, "only_if_not_terminal": only_if_not_terminal, "at": at}
        payload = json.dumps({"run_id": run_id, **body}).encode()
        with self._send_lock:
            result: RunRecord | None = None
            if not self.spool.pending:
                try:
                    result = self._remember(_run(self.http.once("POST", f"/runs/{_quote(run_id)}/status", json=body).json()))
                except Retry:
                    result = None
            if result is None:
                self.spool.add(SpoolRecord(STATUS, "", payload))
        if status in RunStatus.TERMINAL:
            self.wait_for_spool(f"run {run_id}")
        if result is not None:
            return result
        known = self._known.get(run_id)
        if known is None:
            raise errors.RunHistoryError(f"The runhistory server at {self.uri} cannot be reached; the status of run {run_id} is spooled.")
        end = at if status in RunStatus.TERMINAL else known.end_time
        return self._remember(dataclasses.replace(known, status=status, error=error or known.error, end_time=end))

    def wait_for_spool(self, what: str, timeout: float | None = None) -> bool:
        """Wait (bounded) for spooled records to reach the server; say what is left if they did not."""
        if not self.spool.pending:
            return True
        timeout = complete_timeout() if timeout is None else timeout
        if self.spool.wait(timeout):
            return True
        message = (
            f"runhistory: the server at {self.uri} could not be reached for {timeout:g} s while ending {what}; "
            f"{self.spool.pending} records (metric batches, status changes, tags) are still spooled in {self.spool.path}. "
            f"They are sent when the server comes back while this process lives; after it ends, "
            f"run `runhistory sync` to send them. ({self.spool.last_error})"
        )
        print(message, file=sys.stderr)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return False

    # jobs
    def heartbeat(self, run_id: str) -> str:
        return self.http.json("POST", f"/runs/{_quote(run_id)}/heartbeat")["status"]

    def claim_job_slot(self, run_id: str, target: str, max_concurrent: int) -> bool:
        body = {"target": target, "max_concurrent": max_concurrent}
        return self.http.json("POST", f"/runs/{_quote(run_id)}/claim", json=body, idempotent=False)["claimed"]

    def save_compute_target(self, name: str, kind: str, config: Mapping[str, Any]) -> ComputeTargetRecord:
        data = self.http.json("PUT", f"/compute-targets/{_quote(name)}", json={"kind": kind, "config": dict(config)})
        return ComputeTargetRecord(**data)

    def get_compute_target(self, name: str) -> ComputeTargetRecord | None:
        try:
            return ComputeTargetRecord(**self.http.json("GET", f"/compute-targets/{_quote(name)}"))
        except errors.NotFoundError:
            return None

    def list_compute_targets(self) -> list[ComputeTargetRecord]:
        return [ComputeTargetRecord(**item) for item in self.http.json("GET", "/compute-targets")]

    # tags and properties
    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None:
        checked = validation.validate_key_values(tags, "tag", f"run {run_id}", allow_none=True)
        self.send_or_spool(request_record("PATCH", f"/runs/{_quote(run_id)}/tags", body=checked))

    def get_tags(self, run_id: str) -> dict[str, str | None]:
        return self.http.json("GET", f"/runs/{_quote(run_id)}/tags")

    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        checked = validation.validate_key_values(properties, "property", f"run {run_id}")
        self.send_or_spool(request_record("PATCH", f"/runs/{_quote(run_id)}/properties", body=checked))

    def get_properties(self, run_id: str) -> dict[str, str]:
        return self.http.json("GET", f"/runs/{_quote(run_id)}/properties")

    # metrics
    def append_metrics(self, batches: Iterable[MetricBatch], batch_id: str | None = None) -> None:
        from runhistory.protocol.wire import encode_batches

        batches = list(batches)
        for batch in batches:  # what the server would refuse never enters the spool
            if len(batch.values):
                batch_check.check_metric_batch(batch)
        batch_id = batch_id or uuid.uuid4().hex
        groups = list(_split(batches))
        for index, group in enumerate(groups):
            ident = batch_id if len(groups) == 1 else f"{batch_id}.{index}"
            self.send_or_spool(SpoolRecord(METRICS, ident, encode_batches(group)))

    def send_or_spool(self, record: SpoolRecord) -> None:
        """Send a record now, or spool it (behind anything already spooled) while the server is away;
        a refusal (4xx) raises here."""
        with self._send_lock:
            if not self.spool.pending:
                try:
                    self._send_spooled(record)
                    return
                except Retry:
                    pass
            self.spool.add(record)

    def _send_spooled(self, record: SpoolRecord) -> None:
        """Send one record (from the spool or directly); :class:`Retry` while the server is away."""
        method, path, options = spooled_request(record)
        response = self.http.once(method, path, **options)
        if record.kind == STATUS:
            self._remember(_run(response.json()))

    def get_metrics(
        self, run_id: str, names: Sequence[str] | None = None, start: int | Mapping[str, int] = 0
    ) -> dict[str, MetricSeries]:
        from runhistory.protocol.wire import decode_series

        params: dict[str, Any] = {}
        if names is not None:
            if not names:
                return {}
            params["name"] = list(names)
        if isinstance(start, Mapping):
            params["starts"] = json.dumps(dict(start))
        else:
            params["start"] = start
        return decode_series(self.http.request("GET", f"/runs/{_quote(run_id)}/metrics", params=params).content)

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        return [MetricSummary(**item) for item in self.http.json("GET", f"/runs/{_quote(run_id)}/metric-summaries")]

    def after_fork(self) -> None:
        self.http.after_fork()
        self.spool.after_fork()
        self._send_lock = threading.RLock()

    def close(self) -> None:
        self.http.close()


def spooled_request(record: SpoolRecord) -> tuple[str, str, dict[str, Any]]:
    """The HTTP request (method, path under the API, httpx options) that sends a spooled record."""
    if record.kind == METRICS:
        from runhistory.protocol.wire import MEDIA_TYPE

        headers = {BATCH_ID_HEADER: record.batch_id, "Content-Type": MEDIA_TYPE}
        return "POST", "/metrics", {"content": record.payload, "headers": headers}
    head, _, content = record.payload.partition(b"\n")  # status changes are JSON alone
    body = json.loads(head)
    if record.kind == STATUS:
        return "POST", f"/runs/{_quote(body.pop('run_id'))}/status", {"json": body}
    if record.kind == REQUEST:
        return body["method"], body["path"], {"json": body["body"]} if "body" in body else {"content": content}
    raise errors.RunHistoryError(f"Unknown spool record type {record.kind}; a newer runhistory wrote this spool.")


def split_metrics_record(record: SpoolRecord) -> list[SpoolRecord]:
    """A metric record the server refused, as one record per series (each with its own id: the
    refused record was applied not at all); other records stay whole."""
    if record.kind != METRICS:
        return [record]
    from runhistory.protocol.wire import decode_batches, encode_batches

    batches = decode_batches(record.payload, 1 << 40)
    return [SpoolRecord(METRICS, f"{record.batch_id[:56]}:{index}", encode_batches([batch])) for index, batch in enumerate(batches)]


def request_record(method: str, path: str, *, body: Any = None, content: bytes = b"") -> SpoolRecord:
    """A spool record of an idempotent request: a JSON ``body``, or raw ``content`` (a small file)."""
    head: dict[str, Any] = {"method": method, "path": path}
    if body is not None:
        head["body"] = body
    return SpoolRecord(REQUEST, "", json.dumps(head).encode() + b"\n" + content)


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


def _split(batches: list[MetricBatch]) -> Iterable[list[MetricBatch]]:
    """Batches in groups of at most MAX_POINTS_PER_REQUEST points and about MAX_BYTES_PER_REQUEST
    bytes of JSON-encoded values (a long series cut in slices), so that no request passes the
    server's limits however long its strings are."""
    group: list[MetricBatch] = []
    points = size = 0
    for batch in batches:
        sizes = _json_point_sizes(batch)
        at = 0
        while at < len(batch.values):
            take = min(len(batch.values) - at, MAX_POINTS_PER_REQUEST - points)
            if sizes is not None:
                take = max(_fitting(sizes, at, take, MAX_BYTES_PER_REQUEST - size), 1 if not group else 0)
                if take == 0:  # this group is full: start the next one
                    yield group
                    group, points, size = [], 0, 0
                    continue
                size += sum(sizes[at : at + take])
            group.append(_slice(batch, at, take))
            points += take
            at += take
            if points >= MAX_POINTS_PER_REQUEST or size >= MAX_BYTES_PER_REQUEST:
                yield group
                group, points, size = [], 0, 0
    if group:
        yield group


def _slice(batch: MetricBatch, at: int, take: int) -> MetricBatch:
    if at == 0 and take == len(batch.values):
        return batch
    return dataclasses.replace(
        batch, values=batch.values[at : at + take], steps=batch.steps[at : at + take], times=batch.times[at : at + take]
    )


def _json_point_sizes(batch: MetricBatch) -> list[int] | None:
    """An upper bound of each point's size on the wire when its values go as JSON; None for numbers."""
    values = batch.values
    if set(map(type, values)) <= {int, float}:
        return None
    # ``json.dumps`` escapes every non-ASCII character: at most 12 bytes per character (a surrogate pair)
    return [32 + (12 * len(v) if isinstance(v, str) else len(json.dumps(v, allow_nan=True))) for v in values]


def _fitting(sizes: list[int], at: int, most: int, room: int) -> int:
    """How many points from ``at`` (at most ``most``) fit in ``room`` bytes."""
    taken = 0
    while taken < most and sizes[at + taken] <= room:
        room -= sizes[at + taken]
        taken += 1
    return taken


_live_stores: "weakref.WeakSet[RemoteRunStore]" = weakref.WeakSet()


def _drain_at_exit() -> None:
    """At interpreter exit, after the SDK's exit sequence flushed its metric buffers into the
    stores (:mod:`runhistory.backends`): wait (bounded) for each spool to drain."""
    for store in list(_live_stores):
        store.wait_for_spool("the process")


atexit.register(_drain_at_exit)
