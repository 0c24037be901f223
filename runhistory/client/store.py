"""The run-history store of a runhistory server, over HTTP (the client of :mod:`runhistory.server`).

Reads and idempotent writes retry with a backoff while the server cannot be reached
(up to ``$RUNHISTORY_HTTP_RETRY_TIMEOUT`` seconds, default 30; :mod:`runhistory.client.http`).
Metric batches, run status changes, tags, properties and small files (up to 1 MiB: images)
never fail because the server is down: they go to the local spool
(:mod:`runhistory.client.spool`) and are sent when it comes back, each batch with its id
so that a retry never duplicates a point. Ending a run waits up to
``$RUNHISTORY_COMPLETE_TIMEOUT`` seconds (default 30) for the spool to drain, then
says what is still spooled and where.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import sys
import threading
import time
import uuid
import warnings
import weakref
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from runhistory.core import errors, settings, validation
from runhistory.client.batches import split_batches
from runhistory.client.http import HttpClient, Retry
from runhistory.client.records import (
    metrics_record,
    quote_part,
    request_record,
    split_metrics_record,
    spooled_request,
    status_record,
)
from runhistory.client.spool import STATUS, Spool, SpoolRecord
from runhistory.protocol.routes import MAX_RUNS_PER_METRICS_READ
from runhistory.protocol.series_of_runs import decode_series_of_runs
from runhistory.protocol.wire import decode_series
from runhistory.store import batch_check
from runhistory.store.base import (
    ComputeTargetRecord,
    ExperimentRecord,
    ExperimentSummary,
    MetricBatch,
    MetricSeries,
    MetricStats,
    MetricSummary,
    RunFilter,
    RunKeys,
    RunOwner,
    RunRecord,
    RunStatus,
    RunStore,
    check_admission,
    check_stats_run_ids,
)

_Found = TypeVar("_Found")


def _filter_body(run_filter: RunFilter) -> dict[str, Any]:
    """A run filter as the JSON body of a listing (its page goes as query parameters)."""
    body = dataclasses.asdict(run_filter)
    body["tags"] = dict(run_filter.tags)
    order_by = run_filter.order_by
    body["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
    body["experiment_ids"] = list(run_filter.experiment_ids)
    for name in ("query", "order_by", "experiment_ids"):  # the body of a plain listing stays as it was
        if body[name] is None or body[name] == []:
            del body[name]
    del body["limit"], body["offset"]
    return body


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
        """The API token this store sends (None: none was given, set or saved)."""
        return self.http.token

    # experiments
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        return ExperimentRecord(**self.http.json("POST", "/experiments", json={"name": name}))

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        return self._get_or_none(f"/experiments/{quote_part(name)}", lambda data: ExperimentRecord(**data))

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
        return self._remember_answer(self.http.json("POST", "/runs", json=body, idempotent=False))

    def _remember(self, record: RunRecord) -> RunRecord:
        """Keep the latest record of a run: what a status change spooled while away builds on."""
        self._known[record.id] = record
        return record

    def _remember_answer(self, data: dict) -> RunRecord:
        return self._remember(_run(data))

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._get_or_none(f"/runs/{quote_part(run_id)}", self._remember_answer)

    def get_run_by_number(self, experiment_id: int, number: int) -> RunRecord | None:
        params = {"experiment_id": experiment_id, "number": number}
        return self._get_or_none("/runs/by-number", self._remember_answer, params=params)

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        params = {"limit": run_filter.limit} if run_filter.limit is not None else {}
        if run_filter.offset:
            params["offset"] = run_filter.offset
        answer = self.http.json("POST", "/runs/search", json=_filter_body(run_filter), params=params)
        return [_run(item) for item in answer]

    def count_runs(self, run_filter: RunFilter) -> int:
        return int(self.http.json("POST", "/runs/count", json=_filter_body(run_filter))["count"])

    def _get_or_none(self, path: str, build: Callable[[Any], _Found], **options: Any) -> _Found | None:
        """What a GET of ``path`` answers, built; None when the server has no such thing (404)."""
        try:
            data = self.http.json("GET", path, **options)
        except errors.NotFoundError:
            return None
        return build(data)

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
        with self._send_lock:
            result: RunRecord | None = None
            if not self.spool.pending:
                try:
                    answer = self.http.once("POST", f"/runs/{quote_part(run_id)}/status", json=body)
                    result = self._remember_answer(answer.json())
                except Retry:
                    result = None
            if result is None:
                self.spool.add(status_record(run_id, body))
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
        timeout = settings.COMPLETE_TIMEOUT.positive_number() if timeout is None else timeout
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
        return self.http.json("POST", f"/runs/{quote_part(run_id)}/heartbeat")["status"]

    def claim_job_slot(self, run_id: str, target: str, max_concurrent: int) -> bool:
        body = {"target": target, "max_concurrent": max_concurrent}
        return self.http.json("POST", f"/runs/{quote_part(run_id)}/claim", json=body, idempotent=False)["claimed"]

    def hold_in_queue(self, run_id: str) -> str:
        return self.http.json("POST", f"/runs/{quote_part(run_id)}/hold")["status"]

    def admit_queued_jobs(self, target: str, max_in_flight: int, limit: int | None = None) -> list[str]:
        check_admission(target, max_in_flight, limit)  # the same sentence as the store's, before any request
        body = {"max_in_flight": max_in_flight, "limit": limit}
        # never retried once it may have reached the server: a retried admission would admit runs nobody starts
        answer = self.http.json("POST", f"/compute-targets/{quote_part(target)}/admit", json=body, idempotent=False)
        return list(answer["admitted"])

    def save_compute_target(self, name: str, kind: str, config: Mapping[str, Any]) -> ComputeTargetRecord:
        data = self.http.json("PUT", f"/compute-targets/{quote_part(name)}", json={"kind": kind, "config": dict(config)})
        return ComputeTargetRecord(**data)

    def get_compute_target(self, name: str) -> ComputeTargetRecord | None:
        return self._get_or_none(f"/compute-targets/{quote_part(name)}", lambda data: ComputeTargetRecord(**data))

    def list_compute_targets(self) -> list[ComputeTargetRecord]:
        return [ComputeTargetRecord(**item) for item in self.http.json("GET", "/compute-targets")]

    # tags and properties
    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None:
        checked = validation.validate_key_values(tags, "tag", f"run {run_id}", allow_none=True)
        self.send_or_spool(request_record("PATCH", f"/runs/{quote_part(run_id)}/tags", body=checked))

    def get_tags(self, run_id: str) -> dict[str, str | None]:
        return self.http.json("GET", f"/runs/{quote_part(run_id)}/tags")

    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        checked = validation.validate_key_values(properties, "property", f"run {run_id}")
        self.send_or_spool(request_record("PATCH", f"/runs/{quote_part(run_id)}/properties", body=checked))

    def get_properties(self, run_id: str) -> dict[str, str]:
        return self.http.json("GET", f"/runs/{quote_part(run_id)}/properties")

    # metrics
    def append_metrics(self, batches: Iterable[MetricBatch], batch_id: str | None = None) -> None:
        batches = list(batches)
        for batch in batches:  # what the server would refuse never enters the spool
            if len(batch.values):
                batch_check.check_metric_batch(batch)
        batch_id = batch_id or uuid.uuid4().hex
        groups = list(split_batches(batches))
        for index, group in enumerate(groups):
            ident = batch_id if len(groups) == 1 else f"{batch_id}.{index}"
            self.send_or_spool(metrics_record(ident, group))

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
            self._remember_answer(response.json())

    def get_metrics(
        self, run_id: str, names: Sequence[str] | None = None, start: int | Mapping[str, int] = 0
    ) -> dict[str, MetricSeries]:
        params: dict[str, Any] = {}
        if names is not None:
            if not names:
                return {}
            params["name"] = list(names)
        if isinstance(start, Mapping):
            params["starts"] = json.dumps(dict(start))
        else:
            params["start"] = start
        return decode_series(self.http.request("GET", f"/runs/{quote_part(run_id)}/metrics", params=params).content)

    def get_metrics_of_runs(
        self, run_ids: Sequence[str], *, names: Sequence[str] | None = None, numeric_arrays: bool = False
    ) -> dict[str, dict[str, MetricSeries]]:
        """Requests of at most ``MAX_RUNS_PER_METRICS_READ`` runs (the server's cap), each asking
        for the runs the one before left unread; a server older than that route is read one run
        at a time."""
        pending = list(dict.fromkeys(run_ids))
        wanted = None if names is None else list(names)
        found: dict[str, dict[str, MetricSeries]] = {}
        while pending:
            asked = pending[:MAX_RUNS_PER_METRICS_READ]
            try:
                answer = self.http.request("POST", "/metrics/of-runs", json={"run_ids": asked, "names": wanted})
            except errors.NotFoundError:  # the route, not a run: runs that do not exist are left out
                return {**found, **super().get_metrics_of_runs(pending, names=names)}
            series_of, unread = decode_series_of_runs(answer.content)
            found.update(series_of)
            pending = pending[max(1, len(asked) - unread) :]  # at least one: never the same request again
        return found

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        answer = self.http.json("GET", f"/runs/{quote_part(run_id)}/metric-summaries")
        return [MetricSummary(**{key: item[key] for key in _SUMMARY_FIELDS if key in item}) for item in answer]

    def get_metric_stats(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricStats]]:
        wanted = [run_id for run_id in check_stats_run_ids(run_ids) if validation.is_storable_text(run_id)]
        if not wanted:
            return {}
        answer = self.http.json("POST", "/runs/metric-stats", json={"run_ids": wanted})
        return {
            run_id: {name: MetricStats(**{key: item[key] for key in _STATS_FIELDS}) for name, item in series.items()}
            for run_id, series in answer.items()
        }

    def run_keys(self, experiment_id: int) -> RunKeys:
        if not isinstance(experiment_id, int) or isinstance(experiment_id, bool) or experiment_id < 0:
            raise errors.RunHistoryError(f"An experiment id must be a whole number, not {experiment_id!r:.40}.")
        answer = self.http.json("GET", f"/experiments/{experiment_id}/run-keys")
        return RunKeys(tuple(answer["metrics"]), tuple(answer["tags"]), tuple(answer["properties"]))

    def experiment_summaries(self) -> list[ExperimentSummary]:
        answer = self.http.json("GET", "/experiment-summaries")
        return [ExperimentSummary(**{key: item[key] for key in _EXPERIMENT_SUMMARY_FIELDS}) for item in answer]

    def after_fork(self) -> None:
        self.http.after_fork()
        self.spool.after_fork()
        self._send_lock = threading.RLock()

    def close(self) -> None:
        self.http.close()


# What a summary holds: fields a newer server adds are left out rather than refused.
_SUMMARY_FIELDS = tuple(field.name for field in dataclasses.fields(MetricSummary))
_STATS_FIELDS = tuple(field.name for field in dataclasses.fields(MetricStats))
_EXPERIMENT_SUMMARY_FIELDS = tuple(field.name for field in dataclasses.fields(ExperimentSummary))

_live_stores: "weakref.WeakSet[RemoteRunStore]" = weakref.WeakSet()


def _drain_at_exit() -> None:
    """At interpreter exit, after the SDK's exit sequence flushed its metric buffers into the
    stores (:mod:`runhistory.backends`): wait (bounded) for each spool to drain."""
    for store in list(_live_stores):
        store.wait_for_spool("the process")


atexit.register(_drain_at_exit)
