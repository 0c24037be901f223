"""The run-history store on a SQL database through SQLAlchemy Core.

Scalar series are stored packed (see :mod:`runhistory.store.codec`): one row per
flushed batch of a series instead of one row per point, which is what makes a
million points write and read back in well under a second.

Concurrency. On SQLite every write transaction is ``BEGIN IMMEDIATE`` (one writer at a
time) and is retried while the file is locked. On PostgreSQL (READ COMMITTED) the writes
that read-then-write take row locks (``SELECT ... FOR UPDATE``: the experiment row while
numbering a run, the series row while appending to it), a job slot claim and an admission
from a target's queue each take a transaction-level advisory lock on the compute target (a
class of lock each), and a transaction that loses a
race (unique violation, deadlock, serialization failure) is retried from the start, so
that get-or-create of experiments, series, tags and properties re-reads what won.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Connection, Engine

from runhistory.core import validation
from runhistory.core.errors import MetricValueError, NotFoundError, RunFinishedError, RunHistoryError, StoreUnavailableError, first_line
from runhistory.core.uris import redact_uri
from runhistory.store import batch_check, codec, owners
from runhistory.store.base import (
    HEARTBEAT_TIMEOUT_S,
    JOB_RUN_TYPE,
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
from runhistory.store.query import parse_order_by, parse_query
from runhistory.store.sql import compaction
from runhistory.store.sql import query as run_query
from runhistory.store.sql.appends import SeriesCache, StaleSeriesCounts, append_batches, append_batches_once
from runhistory.store.sql.engine import release_free_pages, unavailable_as_error
from runhistory.store.sql.series_reads import read_series, series_rows
from runhistory.store.sql.tokens import SqlTokenStore
from runhistory.store.sql.schema import (
    applied_batches,
    compute_targets,
    experiments,
    metric_chunks,
    metrics,
    properties,
    runs,
    tags,
)

_RETRIES_WHEN_LOCKED = 8
# PostgreSQL SQLSTATEs of a transaction that lost a race and is worth running again:
# serialization_failure, deadlock_detected, unique_violation.
_POSTGRES_RETRYABLE = {"40001", "40P01", "23505"}
_RETRIES_ON_CONFLICT = 8


def _is_locked(exc: BaseException) -> bool:
    """Whether a SQLite write failed only because another process holds the database."""
    return isinstance(exc, sa.exc.OperationalError) and ("locked" in str(exc.orig) or "busy" in str(exc.orig))


def _lost_a_race(exc: BaseException) -> bool:
    """Whether a PostgreSQL transaction failed only because a concurrent one won; worth running again."""
    return isinstance(exc, sa.exc.DBAPIError) and getattr(exc.orig, "sqlstate", None) in _POSTGRES_RETRYABLE


def _retrying(worth_retrying, attempts: int, wait) -> tenacity.Retrying:
    """Up to ``attempts`` tries while the failure is ``worth_retrying(exc)``, then that failure itself."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(worth_retrying),
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        reraise=True,
    )


def _jittered_backoff(retry_state: tenacity.RetryCallState) -> float:
    """0.01 s, 0.02 s, 0.04 s... times 0.5 to 1.5 at random, so that racing writers spread out."""
    return 0.01 * 2 ** (retry_state.attempt_number - 1) * (0.5 + secrets.randbelow(1000) / 1000)

# How long a metric batch's id is remembered: a client retries within seconds, and
# `runhistory sync` replays the spool of a process that died, within 30 days.
BATCH_ID_RETENTION_S = 30 * 24 * 3600
_PRUNE_EVERY_S = 3600


class SqlRunStore(RunStore):
    """A :class:`RunStore` on a database SQLAlchemy reaches: SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, uri: str) -> None:
        self._engine = engine
        self.uri = uri
        self._postgres = engine.dialect.name == "postgresql"
        self._next_prune = 0.0  # monotonic time of the next pruning of old batch ids
        self._series_cache = SeriesCache()  # ids and counts of the series this store appended to
        self._checked_series: set = set()  # (run_id, name, kind, description) already validated
        self._frames_written: dict[str, int] = {}  # frames appended per run since its last fold here

    def run_exists(self, run_id: str) -> bool:
        with self._reading() as connection:
            return connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def tokens(self) -> SqlTokenStore:
        return SqlTokenStore(self._engine, self.uri)

    # transactions
    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with unavailable_as_error(self.uri), self._engine.connect() as connection:
            with connection.begin():
                yield connection

    @contextmanager
    def _reading_snapshot(self) -> Iterator[Connection]:
        """A read transaction whose statements all see one snapshot (PostgreSQL: REPEATABLE READ;
        SQLite's read transactions always do)."""
        with unavailable_as_error(self.uri), self._engine.connect() as connection:
            if self._postgres:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with unavailable_as_error(self.uri), self._engine.connect().execution_options(writing=True) as connection:
            with connection.begin():
                yield connection

    def _write(self, work, *args):
        """Run ``work(connection, *args)`` in a write transaction, retrying while locked."""
        if self._postgres:
            return self._write_postgres(work, *args)
        # 0.05 s, 0.1 s, 0.2 s... between attempts
        retrying = _retrying(_is_locked, _RETRIES_WHEN_LOCKED, tenacity.wait_exponential(multiplier=0.05))
        try:
            return self._write_with(retrying, work, args)
        except sa.exc.OperationalError as exc:
            if _is_locked(exc):
                raise StoreUnavailableError(f"The run history at {self.uri} stayed locked by another process.") from exc
            # disk full, I/O error: may pass
            raise StoreUnavailableError(f"The run history at {self.uri} could not be written: {exc.orig}") from exc

    def _write_postgres(self, work, *args):
        """Run ``work(connection, *args)`` in a transaction, again from the start when it lost a race."""
        try:
            return self._write_with(_retrying(_lost_a_race, _RETRIES_ON_CONFLICT, _jittered_backoff), work, args)
        except sa.exc.DBAPIError as exc:
            # an OperationalError (disk full, canceled, shutting down) may pass; a refused value does not
            failure = StoreUnavailableError if isinstance(exc, sa.exc.OperationalError) else RunHistoryError
            raise failure(
                f"The run history at {redact_uri(self.uri)} could not be written: {first_line(exc.orig)}"
            ) from exc

    def _write_with(self, retrying: tenacity.Retrying, work, args: tuple):
        """``work(connection, *args)`` in a write transaction, run again as ``retrying`` says."""
        for attempt in retrying:
            with attempt, self._writing() as connection:
                return work(connection, *args)
        raise AssertionError("unreachable")  # tenacity re-raises the last failure

    # experiments
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        validation.validate_experiment_name(name)
        found = self.get_experiment(name)
        return found if found is not None else self._write(_insert_experiment, name)

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        if not validation.is_storable_text(name):  # no experiment has such a name
            return None
        with self._reading() as connection:
            row = connection.execute(sa.select(experiments).where(experiments.c.name == name)).first()
        return None if row is None else ExperimentRecord(row.id, row.name, row.created_time)

    def list_experiments(self) -> list[ExperimentRecord]:
        with self._reading() as connection:
            rows = connection.execute(sa.select(experiments).order_by(experiments.c.name)).all()
        return [ExperimentRecord(row.id, row.name, row.created_time) for row in rows]

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
        self._check_new_run(experiment_id, display_name, parent_id, status, run_type, target)
        owner = None if owner is None else _checked_owner(owner)
        run_id = self._write(_insert_run, experiment_id, display_name, parent_id, status, run_type, target, owner)
        return self._require_run(run_id)

    def _check_new_run(
        self, experiment_id: Any, display_name: Any, parent_id: Any, status: Any, run_type: Any, target: Any
    ) -> None:
        """The store's checks of a new run (its experiment and parent must exist)."""
        if not _is_int64(experiment_id) or self._experiment_name(experiment_id) is None:
            raise NotFoundError(f"No experiment with id {experiment_id!r:.40} in the run history at {redact_uri(self.uri)}.")
        if display_name is not None:
            validation.validate_name(display_name, "display", f"a new run of experiment {experiment_id}")
        validation.validate_status(status)
        validation.validate_run_type(run_type)
        if target is not None:
            validation.validate_target_name(target)
        if parent_id is not None:
            parent = self._require_run(validation.validate_run_id(parent_id, "parent run id"))
            if parent.experiment_id != experiment_id:
                raise RunHistoryError(f"Parent run {parent_id} belongs to another experiment than {experiment_id}.")

    def _experiment_name(self, experiment_id: int) -> str | None:
        with self._reading() as connection:
            return connection.execute(sa.select(experiments.c.name).where(experiments.c.id == experiment_id)).scalar()

    def get_run(self, run_id: str) -> RunRecord | None:
        if not validation.is_storable_text(run_id):  # no run has such an id (a command line's undecodable bytes)
            return None
        with self._reading() as connection:
            row = connection.execute(_select_runs().where(runs.c.id == run_id)).first()
        return None if row is None else self._expire_if_stale(_run_record(row))

    def get_run_by_number(self, experiment_id: int, number: int) -> RunRecord | None:
        if not (_is_int64(experiment_id) and _is_int64(number)):  # no run has such a number
            return None
        query = _select_runs().where(runs.c.experiment_id == experiment_id, runs.c.number == number)
        with self._reading() as connection:
            row = connection.execute(query).first()
        return None if row is None else self._expire_if_stale(_run_record(row))

    def _expire_if_stale(self, record: RunRecord) -> RunRecord:
        """The run as stored, after marking it Failed (Canceled, if its cancel was requested) if it
        is a job whose supervisor is gone, or Failed / NotResponding if its owner process is gone /
        silent (see :mod:`runhistory.liveness`)."""
        if record.run_type != JOB_RUN_TYPE:
            return self._expire_owned_if_stale(record)
        silence = _silence(record, time.time())
        if silence is None:
            return record
        lost, canceled = _supervisor_lost_errors(silence)
        try:
            self._write(_end_silent_job, record.id, lost, canceled)
        except RunHistoryError:  # a read-only reader still reports the run as ended
            if record.status == RunStatus.CANCEL_REQUESTED:
                return dataclasses.replace(record, status=RunStatus.CANCELED, error=canceled, end_time=time.time())
            return dataclasses.replace(record, status=RunStatus.FAILED, error=lost, end_time=time.time())
        return self._require_run(record.id)

    def _expire_owned_if_stale(self, record: RunRecord) -> RunRecord:
        silence = _owner_silence(record, time.time())
        if silence is None or silence <= owners.OWNER_LOST_AFTER_S or owners.is_this_process(record):
            return record  # beating, or owned by this very process, which is alive since it reads
        if owners.owner_is_gone(record):
            error = owners.process_lost_error(record, silence)
            status, work = RunStatus.FAILED, (_fail_silent_run, record.id, error, _OWNED_ALIVE, owners.OWNER_LOST_AFTER_S)
        elif silence > owners.OWNER_HEARTBEAT_TIMEOUT_S and record.status == RunStatus.RUNNING:
            error, status, work = record.error, RunStatus.NOT_RESPONDING, (_mark_not_responding, record.id)
        else:
            return record
        try:
            self._write(*work)
        except RunHistoryError:  # a read-only reader still reports what it found
            end = time.time() if status == RunStatus.FAILED else record.end_time
            return dataclasses.replace(record, status=status, error=error, end_time=end)
        with self._reading() as connection:  # as stored now (an owner that beat meanwhile wins)
            row = connection.execute(_select_runs().where(runs.c.id == record.id)).first()
        return record if row is None else _run_record(row)

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        query = run_query.ordered(self._matching_runs(run_filter), parse_order_by(run_filter.order_by))
        if run_filter.limit is not None:
            query = query.limit(run_filter.limit)
        if run_filter.offset:
            query = query.offset(run_filter.offset)
        with self._reading() as connection:
            records = [_run_record(row) for row in connection.execute(query)]
        records = [self._expire_if_stale(record) for record in records]  # only the rows of this page
        if run_filter.status is not None:  # a run that went stale since it was read is Failed now
            records = [record for record in records if record.status == run_filter.status]
        return records

    def count_runs(self, run_filter: RunFilter) -> int:
        query = self._matching_runs(run_filter).with_only_columns(sa.func.count(), maintain_column_froms=True)
        with self._reading() as connection:
            return connection.execute(query.order_by(None)).scalar_one()

    def _matching_runs(self, run_filter: RunFilter) -> sa.Select:
        """The query of the runs ``run_filter`` matches (without its order, limit and offset).

        With a status, the open runs that match the rest of the filter are read and brought up
        to date first (a Running run whose owner is gone reads as Failed), so that the status is
        a condition in SQL and a page holds as many runs as it asks for.
        """
        _check_page(run_filter)
        query = _select_runs()
        if run_filter.experiment_id is not None:
            query = query.where(runs.c.experiment_id == run_filter.experiment_id)
        if run_filter.experiment_ids:
            query = query.where(runs.c.experiment_id.in_(_checked_ids(run_filter.experiment_ids)))
        if run_filter.parent_id is not None:
            query = query.where(runs.c.parent_id == run_filter.parent_id)
        if run_filter.top_level_only:
            query = query.where(runs.c.parent_id.is_(None))
        if run_filter.target is not None:
            query = query.where(runs.c.target == run_filter.target)
        for key, value in run_filter.tags.items():
            match = sa.select(tags.c.run_id).where(tags.c.key == key)
            if value is not None:
                match = match.where(tags.c.value == value)
            query = query.where(runs.c.id.in_(match))
        base, parsed = query, None if run_filter.query is None else parse_query(run_filter.query)
        if parsed is not None:
            query = query.where(run_query.filter_clause(parsed, self._postgres))
        if run_filter.status is None and (parsed is None or not run_query.mentions_status(parsed)):
            return query
        self._expire_open_runs(base)
        return query if run_filter.status is None else query.where(runs.c.status == run_filter.status)

    def _expire_open_runs(self, query: sa.Select) -> None:
        """Bring the open runs ``query`` matches up to date (see :meth:`_expire_if_stale`)."""
        with self._reading() as connection:
            open_runs = [_run_record(row) for row in connection.execute(query.where(runs.c.status.in_(_OPEN)))]
        for record in open_runs:
            self._expire_if_stale(record)

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        only_if_not_terminal: bool = True,
        at: float | None = None,
    ) -> RunRecord:
        validation.validate_status(status)
        error = validation.validate_error(error, run_id)
        if at is not None:
            at = validation.validate_wall_time(at, f"time of the status change of run {run_id}")
        self._require_run(run_id)
        self._write(_update_status, run_id, status, error, only_if_not_terminal, at)
        if status in RunStatus.TERMINAL:  # a finished run reads like one logged in a burst
            self._compact_run(run_id, full=True)
            self._series_cache.forget_runs([run_id])
            self._frames_written.pop(run_id, None)
        return self._require_run(run_id)

    def _require_run(self, run_id: str) -> RunRecord:
        record = self.get_run(run_id)
        if record is None:
            raise NotFoundError(f"No run with id {run_id!r} in the run history at {redact_uri(self.uri)}.")
        return record

    # jobs
    def heartbeat(self, run_id: str) -> str:
        self._require_run(run_id)
        return self._write(_beat, run_id)

    def claim_job_slot(self, run_id: str, target: str, max_concurrent: int) -> bool:
        return self._write(_claim_slot, run_id, target, max_concurrent)

    def hold_in_queue(self, run_id: str) -> str:
        self._require_run(run_id)
        return self._write(_hold, run_id)

    def admit_queued_jobs(self, target: str, max_in_flight: int, limit: int | None = None) -> list[str]:
        check_admission(target, max_in_flight, limit)
        return self._write(_admit, target, max_in_flight, limit)

    def save_compute_target(self, name: str, kind: str, config: Mapping[str, Any]) -> ComputeTargetRecord:
        validation.validate_target_name(name)
        validation.validate_target_kind(kind, name)
        self._write(_upsert_compute_target, name, kind, validation.validate_target_config(config, name))
        found = self.get_compute_target(name)
        assert found is not None
        return found

    def get_compute_target(self, name: str) -> ComputeTargetRecord | None:
        with self._reading() as connection:
            row = connection.execute(sa.select(compute_targets).where(compute_targets.c.name == name)).first()
        return None if row is None else _compute_target_record(row)

    def list_compute_targets(self) -> list[ComputeTargetRecord]:
        with self._reading() as connection:
            rows = connection.execute(sa.select(compute_targets).order_by(compute_targets.c.name)).all()
        return [_compute_target_record(row) for row in rows]

    # tags and properties
    def set_tags(self, run_id: str, new_tags: Mapping[str, str | None]) -> None:
        checked = validation.validate_key_values(new_tags, "tag", f"run {run_id}", allow_none=True)
        self._require_run(run_id)
        if checked:
            self._write(_upsert, tags, run_id, checked)

    def get_tags(self, run_id: str) -> dict[str, str | None]:
        return self._key_values(tags, run_id)

    def add_properties(self, run_id: str, new_properties: Mapping[str, str]) -> None:
        checked = validation.validate_key_values(new_properties, "property", f"run {run_id}")
        self._require_run(run_id)
        if checked:
            self._write(_insert_properties, run_id, checked)

    def get_properties(self, run_id: str) -> dict[str, str]:
        return self._key_values(properties, run_id)

    def get_tags_of_runs(self, run_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        return self._key_values_of_runs(tags, check_stats_run_ids(run_ids, "Tags of runs"))

    def get_properties_of_runs(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return self._key_values_of_runs(properties, check_stats_run_ids(run_ids, "Properties of runs"))

    def _key_values_of_runs(self, table: sa.Table, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {run_id: {} for run_id in run_ids}
        query = sa.select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(run_ids)).order_by(table.c.key)
        with self._reading() as connection:
            for row in connection.execute(query):
                found[row.run_id][row.key] = row.value
        return found

    def _key_values(self, table: sa.Table, run_id: str) -> dict[str, Any]:
        query = sa.select(table.c.key, table.c.value).where(table.c.run_id == run_id).order_by(table.c.key)
        with self._reading() as connection:
            return {row.key: row.value for row in connection.execute(query)}

    # metrics
    def append_metrics(self, batches: Iterable[MetricBatch], batch_id: str | None = None) -> None:
        """Append checked batches (see :func:`runhistory.store.batch_check.check_metric_batches`) to runs
        that exist and have not ended, atomically: one refused batch refuses the whole call. A run
        that has gathered enough flushes has them compacted next (see :mod:`.compaction`)."""
        if batch_id is not None and (not isinstance(batch_id, str) or not 0 < len(batch_id) <= 64):
            raise MetricValueError(f"A metric batch id must be 1 to 64 characters, got {batch_id!r:.80}.")
        batches = [batch for batch in batch_check.check_metric_batches(batches, self._checked_series) if len(batch.values)]
        if batch_id is None and not batches:
            return
        written = self._append(batches, batch_id)
        if batch_id is not None:
            self._prune_batch_ids_now_and_then()
        self._fold_when_due(written)

    def _fold_when_due(self, run_ids: list[str]) -> None:
        """Compact the runs that gathered :data:`compaction.FRAMES_PER_FOLD` frames: counted here per
        run, then confirmed in the database (other processes may have folded or added some)."""
        due = []
        for run_id in run_ids:
            count = self._frames_written.get(run_id, 0) + 1
            self._frames_written[run_id] = count
            if count >= compaction.FRAMES_PER_FOLD:
                due.append(run_id)
        if not due:
            return
        with self._reading() as connection:
            frames = compaction.frames_per_run(connection, due)
        for run_id in due:
            self._frames_written.pop(run_id, None)
            if frames.get(run_id, 0) >= compaction.FRAMES_PER_FOLD:
                self._compact_run(run_id, full=False)

    def _append(self, batches: list[MetricBatch], batch_id: str | None) -> list[str]:
        """Write the batches with the remembered series counts; again, reading them, if one was stale."""
        for trust_cache in (True, False):
            try:
                if batch_id is not None:
                    return self._write(append_batches_once, batches, batch_id, self._series_cache, trust_cache)
                return self._write(append_batches, batches, self._series_cache, trust_cache)
            except StaleSeriesCounts:
                self._series_cache.forget_runs({batch.run_id for batch in batches})
        raise AssertionError("unreachable: counts read under lock are never stale")

    def compact_metrics(self, run_id: str | None = None) -> int:
        """Fold the frames and merge the chunks of a run's series (of every run that has frames
        or a series in several chunks, when None) as far as they go; returns how many pieces
        were merged away."""
        if run_id is not None:
            return self._compact_run(validation.validate_run_id(run_id), full=True)
        with self._reading() as connection:
            run_ids = compaction.runs_to_compact(connection)
        return sum(self._compact_run(one, full=True) for one in run_ids)

    def _compact_run(self, run_id: str, *, full: bool) -> int:
        """Fold the run's frames (all of them when ``full``) and merge the chunks of the series they
        touched as the tiers say (every series' chunks as far as they go when ``full``). Best effort:
        a compaction that another one overtook, or a database that is busy, leaves it for later."""
        merged, touched = 0, set()
        try:
            while True:
                folded, away = self._write(compaction.fold_frames, run_id)
                merged += away
                touched.update(folded)
                if not folded or not full:
                    break
            if full:
                with self._reading() as connection:
                    touched = set(compaction.series_of_run(connection, run_id))
            ids = sorted(touched)
            for at in range(0, len(ids), compaction.SERIES_PER_TRANSACTION):
                with self._reading() as connection:
                    groups = compaction.plan_merges(connection, ids[at : at + compaction.SERIES_PER_TRANSACTION], full)
                while groups:
                    now, groups = compaction.next_merges(groups)
                    merged += self._write(compaction.merge_chunks, now)
            if full:
                release_free_pages(self._engine)
        except (compaction.CompactedMeanwhile, StoreUnavailableError):
            pass
        return merged

    def _prune_batch_ids_now_and_then(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + _PRUNE_EVERY_S
        self.prune_batch_ids(time.time() - BATCH_ID_RETENTION_S)

    def prune_batch_ids(self, applied_before: float) -> int:
        """Forget the ids of metric batches applied before ``applied_before`` (a Unix time); returns how many."""
        return self._write(_delete_batch_ids, applied_before)

    def get_metrics(
        self, run_id: str, names: Sequence[str] | None = None, start: int | Mapping[str, int] = 0
    ) -> dict[str, MetricSeries]:
        with self._reading_snapshot() as connection:
            rows = series_rows(connection, [run_id], names)
            starts = {row.id: _start_of(row.name, start) for row in rows}
            series = read_series(connection, rows, starts, names)
        return {row.name: series[row.id] for row in rows}

    def get_metrics_of_runs(
        self, run_ids: Sequence[str], *, names: Sequence[str] | None = None, numeric_arrays: bool = False
    ) -> dict[str, dict[str, MetricSeries]]:
        wanted = [run_id for run_id in dict.fromkeys(run_ids) if validation.is_storable_text(run_id)]
        with self._reading_snapshot() as connection:
            existing = _existing_runs(connection, wanted)
            rows = series_rows(connection, existing, names)
            series = read_series(connection, rows, {}, names, arrays=numeric_arrays)
        found: dict[str, dict[str, MetricSeries]] = {run_id: {} for run_id in existing}
        for row in rows:
            found[row.run_id][row.name] = series[row.id]
        return found

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        columns = (metrics.c.name, metrics.c.kind, metrics.c.count, metrics.c.last_value, metrics.c.description, metrics.c.source)
        query = sa.select(*columns).where(metrics.c.run_id == run_id).order_by(metrics.c.name)
        with self._reading() as connection:
            rows = connection.execute(query).all()  # unpacked as tuples: 100,000 series in well under a second
        decode = codec.decode_json_value
        return [
            MetricSummary(name, kind, count, decode(last), description, source)
            for name, kind, count, last, description, source in rows
        ]

    def get_metric_stats(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricStats]]:
        wanted = [run_id for run_id in check_stats_run_ids(run_ids) if validation.is_storable_text(run_id)]
        columns = (
            metrics.c.run_id, metrics.c.name, metrics.c.kind, metrics.c.count, metrics.c.last_value,
            metrics.c.min_value, metrics.c.max_value,
        )
        found: dict[str, dict[str, MetricStats]] = {}
        with self._reading() as connection:
            for at in range(0, len(wanted), 500):
                query = sa.select(*columns).where(metrics.c.run_id.in_(wanted[at : at + 500])).order_by(metrics.c.run_id, metrics.c.name)
                for run_id, name, kind, count, last, low, high in connection.execute(query):
                    found.setdefault(run_id, {})[name] = MetricStats(kind, count, codec.decode_json_value(last), low, high)
        return found

    def run_keys(self, experiment_id: int) -> RunKeys:
        if not _is_int64(experiment_id):
            raise RunHistoryError(f"An experiment id must be a whole number, not {experiment_id!r:.40}.")
        of_experiment = sa.select(runs.c.id).where(runs.c.experiment_id == experiment_id).scalar_subquery()
        names = []
        with self._reading() as connection:
            for column in (metrics.c.name, tags.c.key, properties.c.key):
                query = sa.select(column).where(column.table.c.run_id.in_(of_experiment)).distinct().order_by(column)
                names.append(tuple(connection.execute(query).scalars()))
        return RunKeys(*names)

    def experiment_summaries(self) -> list[ExperimentSummary]:
        activity = sa.func.max(
            sa.func.coalesce(runs.c.heartbeat_time, 0.0),
            sa.func.coalesce(runs.c.end_time, 0.0),
            sa.func.coalesce(runs.c.start_time, 0.0),
            runs.c.created_time,
        ) if not self._postgres else sa.func.greatest(runs.c.heartbeat_time, runs.c.end_time, runs.c.start_time, runs.c.created_time)
        running = sa.func.sum(sa.case((runs.c.status.in_(_RUNNING), 1), else_=0))
        query = (
            sa.select(experiments.c.id, experiments.c.name, sa.func.count(runs.c.id), running, sa.func.max(activity))
            .select_from(experiments.outerjoin(runs, runs.c.experiment_id == experiments.c.id))
            .group_by(experiments.c.id, experiments.c.name)
            .order_by(experiments.c.name)
        )
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return [ExperimentSummary(id_, name, count, int(running or 0), last) for id_, name, count, running, last in rows]

    def after_fork(self) -> None:
        self._engine.dispose(close=False)

    def close(self) -> None:
        self._engine.dispose()


# --- write transactions (each takes the connection first) ---


def _insert_experiment(connection: Connection, name: str) -> ExperimentRecord:
    existing = connection.execute(sa.select(experiments).where(experiments.c.name == name)).first()
    if existing is not None:  # another process created it since our read
        return ExperimentRecord(existing.id, existing.name, existing.created_time)
    created = time.time()
    result = connection.execute(sa.insert(experiments).values(name=name, created_time=created))
    return ExperimentRecord(result.inserted_primary_key[0], name, created)


_NOT_IN_AN_ID = re.compile(r"[^\w.-]+")
_ID_PREFIX_CHARS = 48


def _id_prefix(experiment_name: str) -> str:
    """The experiment's name as the start of a run id: one plain folder name of bounded length,
    since a run's files live under its id (an experiment may be called ``team/sweep`` or be long)."""
    return _NOT_IN_AN_ID.sub("_", experiment_name).lstrip(".")[:_ID_PREFIX_CHARS] or "run"


def _insert_run(
    connection: Connection,
    experiment_id: int,
    display_name: str | None,
    parent_id: str | None,
    status: str,
    run_type: str,
    target: str | None,
    owner: RunOwner | None = None,
) -> str:
    # The experiment row's lock (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes) makes
    # numbering and child ids race-free: concurrent creators in one experiment take turns.
    experiment_name = connection.execute(
        sa.select(experiments.c.name).where(experiments.c.id == experiment_id).with_for_update()
    ).scalar_one()
    number = connection.execute(
        sa.select(sa.func.coalesce(sa.func.max(runs.c.number), 0) + 1).where(runs.c.experiment_id == experiment_id)
    ).scalar_one()
    now = time.time()
    if parent_id is None:
        run_id = f"{_id_prefix(experiment_name)}_{int(now)}_{secrets.token_hex(4)}"
    else:
        siblings = connection.execute(
            sa.select(sa.func.count()).select_from(runs).where(runs.c.parent_id == parent_id)
        ).scalar_one()
        run_id = f"{parent_id}_{siblings}"
    connection.execute(
        sa.insert(runs).values(
            id=run_id,
            experiment_id=experiment_id,
            number=number,
            display_name=display_name or run_id,
            status=status,
            parent_id=parent_id,
            run_type=run_type,
            target=target,
            created_time=now,
            start_time=now if status == RunStatus.RUNNING else None,
            **_owner_columns(owner, now),
            **_submitter_beat(run_type, status, now),
        )
    )
    return run_id


def _checked_owner(owner: Any) -> RunOwner:
    """The owner of a new run, as the store keeps it; one sentence for what it cannot keep."""
    if not isinstance(owner, RunOwner):
        raise RunHistoryError(f"The owner of a new run must be a RunOwner, got {type(owner).__name__}.")
    validation.validate_name(owner.host, "host", "the owner of a new run")
    if owner.machine is not None:
        if not isinstance(owner.machine, str) or len(owner.machine) > 64:
            raise RunHistoryError("The machine of the owner of a new run must be a string of at most 64 characters.")
        validation.validate_name(owner.machine, "machine", "the owner of a new run")
    if not isinstance(owner.pid, int) or isinstance(owner.pid, bool) or not 0 <= owner.pid < 2**31:
        raise RunHistoryError(f"The pid of the owner of a new run must be an int from 0 to 2**31 - 1, got {owner.pid!r:.40}.")
    validation.validate_wall_time(owner.start_time, "start time of the owner of a new run")
    return owner


def _submitter_beat(run_type: str, status: str, now: float) -> dict[str, Any]:
    """A new Queued job run is beaten by its submitter until it is started or held in its target's
    queue: never read as held (admitted before its snapshot exists), nor Queued for ever when the
    submitter dies before its first beat."""
    return {"heartbeat_time": now} if run_type == JOB_RUN_TYPE and status == RunStatus.QUEUED else {}


def _owner_columns(owner: RunOwner | None, now: float) -> dict[str, Any]:
    if owner is None:
        return {}
    return {
        "owner_host": owner.host,
        "owner_machine": owner.machine,
        "owner_pid": owner.pid,
        "owner_start_time": owner.start_time,
        "heartbeat_time": now,  # silence is counted from the run's creation until the first beat
    }


def _update_status(
    connection: Connection,
    run_id: str,
    status: str,
    error: dict[str, Any] | None,
    only_if_not_terminal: bool,
    at: float | None,
) -> None:
    now = time.time() if at is None else at
    values: dict[str, Any] = {"status": status}
    if status == RunStatus.RUNNING:
        values["start_time"] = sa.func.coalesce(runs.c.start_time, now)
    if status in RunStatus.TERMINAL:
        values["end_time"] = now
        values["start_time"] = sa.func.coalesce(runs.c.start_time, now)
    if error is not None:
        values["error"] = json.dumps(error)
    update = sa.update(runs).where(runs.c.id == run_id).values(**values)
    if only_if_not_terminal:
        still_open = runs.c.status.not_in(list(RunStatus.TERMINAL))
        if status in RunStatus.TERMINAL:  # the run's own last word beats an end we only inferred
            update = update.where(sa.or_(still_open, _ended_by_inference()))
        else:
            update = update.where(still_open)
    if status in (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING):
        # A requested cancel is never undone by a job that starts late: its supervisor sees it.
        update = update.where(runs.c.status != RunStatus.CANCEL_REQUESTED)
    if status == RunStatus.CANCEL_REQUESTED and _cancel_held(connection, run_id, error, now):
        return
    connection.execute(update)


def _cancel_held(connection: Connection, run_id: str, error: dict[str, Any] | None, now: float) -> bool:
    """End a held job run (Queued with no process, see :func:`_hold`) Canceled at once, since no
    supervisor of its own would ever see the cancel; True when it was one. Atomic with
    :func:`_admit`: a run is either admitted first (Starting, its supervisor ends it) or ended here."""
    values: dict[str, Any] = {
        "status": RunStatus.CANCELED,
        "end_time": now,
        "start_time": sa.func.coalesce(runs.c.start_time, now),
    }
    if error is not None:
        values["error"] = json.dumps(error)
    ended = connection.execute(sa.update(runs).where(runs.c.id == run_id, _held()).values(**values))
    return ended.rowcount == 1


# Error codes of ends the store inferred (a process or supervisor gone silent) rather than heard:
# the run's own final status, arriving later (a replayed spool, a resumed supervisor), replaces them.
_INFERRED_END_CODES = ("ProcessLost", "SupervisorLost")


def _ended_by_inference() -> sa.ColumnElement[bool]:
    return sa.and_(
        runs.c.status.in_((RunStatus.FAILED, RunStatus.CANCELED)),
        sa.or_(*(runs.c.error.contains(json.dumps({"code": code})[1:-1]) for code in _INFERRED_END_CODES)),
    )


_ALIVE = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCEL_REQUESTED)
_HOLDING_A_SLOT = (RunStatus.STARTING, RunStatus.RUNNING)


def _silence(record: RunRecord, now: float) -> float | None:
    """Seconds since the last heartbeat of a job run that should be beating but is not; else None."""
    if record.run_type != JOB_RUN_TYPE or record.status not in _ALIVE or record.heartbeat_time is None:
        return None
    silence = now - record.heartbeat_time
    return silence if silence > HEARTBEAT_TIMEOUT_S else None


_OWNED_ALIVE = (RunStatus.RUNNING, RunStatus.NOT_RESPONDING)
# The statuses of a run that may read otherwise once its liveness is checked.
_OPEN = (*_ALIVE, RunStatus.NOT_RESPONDING)


def _owner_silence(record: RunRecord, now: float) -> float | None:
    """Seconds since the last heartbeat of an owned run that is still open; None for other runs."""
    if record.owner_pid is None or record.status not in _OWNED_ALIVE or record.heartbeat_time is None:
        return None
    return now - record.heartbeat_time


def _fail_silent_run(
    connection: Connection, run_id: str, error: dict[str, Any], alive: tuple[str, ...], silent_for: float
) -> None:
    """Mark the run Failed if it is still in one of the ``alive`` statuses and has not beaten for
    ``silent_for`` seconds (it did not beat since we read it)."""
    now = time.time()
    connection.execute(
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.status.in_(alive), runs.c.heartbeat_time < now - silent_for)
        .values(
            status=RunStatus.FAILED,
            error=json.dumps(error),
            end_time=now,
            start_time=sa.func.coalesce(runs.c.start_time, now),
        )
    )


def _supervisor_lost_errors(silence: float) -> tuple[dict[str, str], dict[str, str]]:
    """The error of a job whose supervisor went silent, and of one that did so after its cancel was
    requested (a stop that killed the supervisor before it could write Canceled)."""
    lost = {
        "message": (
            f"The job's supervisor stopped heartbeating {silence:.1f} s ago (it was killed, or its "
            f"machine stopped); the job did not finish."
        ),
        "code": "SupervisorLost",
    }
    canceled = {
        "message": (
            f"The job's supervisor stopped heartbeating {silence:.1f} s ago, after the cancel was "
            f"requested; the job was canceled."
        ),
        "code": "SupervisorLost",
    }
    return lost, canceled


def _end_silent_job(connection: Connection, run_id: str, lost: dict[str, Any], canceled: dict[str, Any]) -> None:
    """End a job run whose supervisor has not beaten for ``HEARTBEAT_TIMEOUT_S`` (not since we read
    it): Canceled with ``canceled`` if its cancel was requested, else Failed with ``lost``."""
    now = time.time()
    for alive, status, error in (
        ((RunStatus.CANCEL_REQUESTED,), RunStatus.CANCELED, canceled),
        (_ALIVE, RunStatus.FAILED, lost),  # a run Canceled just above is no longer alive
    ):
        connection.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_(alive), runs.c.heartbeat_time < now - HEARTBEAT_TIMEOUT_S)
            .values(status=status, error=json.dumps(error), end_time=now, start_time=sa.func.coalesce(runs.c.start_time, now))
        )


def _mark_not_responding(connection: Connection, run_id: str) -> None:
    now = time.time()
    connection.execute(
        sa.update(runs)
        .where(
            runs.c.id == run_id,
            runs.c.status == RunStatus.RUNNING,
            runs.c.heartbeat_time < now - owners.OWNER_HEARTBEAT_TIMEOUT_S,
        )
        .values(status=RunStatus.NOT_RESPONDING)
    )


def _beat(connection: Connection, run_id: str) -> str:
    connection.execute(sa.update(runs).where(runs.c.id == run_id).values(heartbeat_time=time.time()))
    connection.execute(  # a suspended owner that beats again is Running again
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.status == RunStatus.NOT_RESPONDING)
        .values(status=RunStatus.RUNNING)
    )
    return connection.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar_one()


_CLAIM_LOCK_CLASS = 0x726A6F62  # "rjob": the advisory lock class of job slot claims


def _claim_slot(connection: Connection, run_id: str, target: str, max_concurrent: int) -> bool:
    if connection.dialect.name == "postgresql":  # claims on one target take turns until commit
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK_CLASS, sa.func.hashtext(target))))
    now = time.time()
    alive = sa.or_(runs.c.heartbeat_time.is_(None), runs.c.heartbeat_time >= now - HEARTBEAT_TIMEOUT_S)
    mine = connection.execute(sa.select(runs.c.status, runs.c.created_time).where(runs.c.id == run_id)).first()
    if mine is None or mine.status != RunStatus.QUEUED:
        return False

    def count(*conditions) -> int:
        query = sa.select(sa.func.count()).select_from(runs).where(runs.c.target == target, runs.c.id != run_id, alive)
        return connection.execute(query.where(*conditions)).scalar_one()

    busy = count(runs.c.status.in_(_HOLDING_A_SLOT))
    waiting_before = count(
        runs.c.status == RunStatus.QUEUED,
        runs.c.heartbeat_time.is_not(None),  # only queued jobs whose supervisor is waiting too
        sa.or_(
            runs.c.created_time < mine.created_time,
            sa.and_(runs.c.created_time == mine.created_time, runs.c.id < run_id),
        ),
    )
    if busy + waiting_before >= max_concurrent:
        return False
    connection.execute(
        sa.update(runs).where(runs.c.id == run_id).values(status=RunStatus.STARTING, heartbeat_time=now)
    )
    return True


def _held() -> sa.ColumnElement[bool]:
    """A job run waiting in its target's queue with no process of its own (see :func:`_hold`)."""
    return sa.and_(runs.c.run_type == JOB_RUN_TYPE, runs.c.status == RunStatus.QUEUED, runs.c.heartbeat_time.is_(None))


def _hold(connection: Connection, run_id: str) -> str:
    connection.execute(
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.run_type == JOB_RUN_TYPE, runs.c.status == RunStatus.QUEUED)
        .values(heartbeat_time=None)
    )
    return connection.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar_one()


_ADMIT_LOCK_CLASS = 0x72616471  # "radq": the advisory lock class of admissions from a target's queue
_IN_FLIGHT = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCEL_REQUESTED)


def _admit(connection: Connection, target: str, max_in_flight: int, limit: int | None) -> list[str]:
    if connection.dialect.name == "postgresql":  # admissions from one target's queue take turns until commit
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADMIT_LOCK_CLASS, sa.func.hashtext(target))))
    now = time.time()
    of_target = (runs.c.target == target, runs.c.run_type == JOB_RUN_TYPE)
    in_flight = connection.execute(
        sa.select(sa.func.count())
        .select_from(runs)
        .where(
            *of_target,
            runs.c.status.in_(_IN_FLIGHT),
            sa.or_(runs.c.heartbeat_time.is_(None), runs.c.heartbeat_time >= now - HEARTBEAT_TIMEOUT_S),
        )
    ).scalar_one()
    room = max(0, max_in_flight - in_flight)
    if limit is not None:
        room = min(room, limit)
    if room == 0:
        return []
    oldest = connection.execute(
        sa.select(runs.c.id)
        .where(*of_target, _held())
        .order_by(runs.c.created_time, runs.c.number, runs.c.id)
        .limit(room)
    ).scalars().all()
    admitted = []
    for run_id in oldest:  # _held() again: a run canceled since the read above stays out
        moved = connection.execute(sa.update(runs).where(runs.c.id == run_id, _held()).values(status=RunStatus.STARTING))
        if moved.rowcount == 1:
            admitted.append(run_id)
    return admitted


def _upsert_compute_target(connection: Connection, name: str, kind: str, config: str) -> None:
    existing = connection.execute(
        sa.select(compute_targets.c.created_time).where(compute_targets.c.name == name)
    ).scalar_one_or_none()
    if existing is None:
        connection.execute(
            sa.insert(compute_targets).values(name=name, kind=kind, config=config, created_time=time.time())
        )
    else:
        connection.execute(
            sa.update(compute_targets).where(compute_targets.c.name == name).values(kind=kind, config=config)
        )


def _upsert(connection: Connection, table: sa.Table, run_id: str, items: Mapping[str, Any]) -> None:
    keys = list(items)
    connection.execute(sa.delete(table).where(table.c.run_id == run_id, table.c.key.in_(keys)))
    connection.execute(sa.insert(table), [{"run_id": run_id, "key": k, "value": items[k]} for k in keys])


def _insert_properties(connection: Connection, run_id: str, items: Mapping[str, str]) -> None:
    query = sa.select(properties.c.key, properties.c.value).where(
        properties.c.run_id == run_id, properties.c.key.in_(list(items))
    )
    existing = {row.key: row.value for row in connection.execute(query)}
    for key, value in existing.items():
        if value != items[key]:
            raise RunHistoryError(
                f"Property {key!r} of run {run_id} is already {value!r}; properties cannot change "
                f"(use tags for values that change)."
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in items.items() if k not in existing]
    if new:
        connection.execute(sa.insert(properties), new)


def _existing_runs(connection: Connection, run_ids: list[str]) -> list[str]:
    found: set[str] = set()
    for at in range(0, len(run_ids), 500):
        found.update(connection.execute(sa.select(runs.c.id).where(runs.c.id.in_(run_ids[at : at + 500]))).scalars())
    return [run_id for run_id in run_ids if run_id in found]


def _delete_batch_ids(connection: Connection, applied_before: float) -> int:
    return connection.execute(sa.delete(applied_batches).where(applied_batches.c.applied_time < applied_before)).rowcount


def _start_of(name: str, start: int | Mapping[str, int]) -> int:
    return start.get(name, 0) if isinstance(start, Mapping) else start


def _check_page(run_filter: RunFilter) -> None:
    """Refuse a limit or offset that is not a whole number from 0 to 2**63 - 1 (what SQL takes)."""
    for name, value in (("limit", run_filter.limit), ("offset", run_filter.offset)):
        if value is not None and not (_is_int64(value) and value >= 0):
            raise RunHistoryError(f"The {name} of a run listing must be a whole number from 0 to {validation.INT64_MAX}, not {value!r:.40}.")


def _checked_ids(experiment_ids: Any) -> list[int]:
    """The experiment ids of a run listing; one sentence for a list that is not of ids."""
    ids = list(experiment_ids)
    if len(ids) > 1000 or not all(_is_int64(one) for one in ids):
        raise RunHistoryError(f"The experiment ids of a run listing must be at most 1000 whole numbers, not {ids!r:.60}.")
    return ids


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and validation.INT64_MIN <= value <= validation.INT64_MAX


# --- reads ---


def _select_runs() -> sa.Select:
    return sa.select(runs, experiments.c.name.label("experiment_name")).join(
        experiments, experiments.c.id == runs.c.experiment_id
    )


def _run_record(row) -> RunRecord:
    return RunRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        experiment_name=row.experiment_name,
        number=row.number,
        display_name=row.display_name,
        status=row.status,
        parent_id=row.parent_id,
        created_time=row.created_time,
        start_time=row.start_time,
        end_time=row.end_time,
        run_type=row.run_type,
        error=None if row.error is None else json.loads(row.error),
        target=row.target,
        heartbeat_time=row.heartbeat_time,
        owner_host=row.owner_host,
        owner_machine=row.owner_machine,
        owner_pid=row.owner_pid,
        owner_start_time=row.owner_start_time,
    )


def _compute_target_record(row) -> ComputeTargetRecord:
    return ComputeTargetRecord(name=row.name, kind=row.kind, config=json.loads(row.config), created_time=row.created_time)
_RUNNING = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCEL_REQUESTED, RunStatus.NOT_RESPONDING)  # experiment_summaries' "running"
