"""The run-history store on a SQL database through SQLAlchemy Core.

Scalar series are stored packed (see :mod:`runhistory.store.codec`): one row per
flushed batch of a series instead of one row per point, which is what makes a
million points write and read back in well under a second.

Concurrency. On SQLite every write transaction is ``BEGIN IMMEDIATE`` (one writer at a
time) and is retried while the file is locked. On PostgreSQL (READ COMMITTED) the writes
that read-then-write take row locks (``SELECT ... FOR UPDATE``: the experiment row while
numbering a run, the series row while appending to it), a job slot claim takes a
transaction-level advisory lock on its compute target, and a transaction that loses a
race (unique violation, deadlock, serialization failure) is retried from the start, so
that get-or-create of experiments, series, tags and properties re-reads what won.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from runhistory.errors import NotFoundError, RunHistoryError, StoreUnavailableError
from runhistory.store import codec
from runhistory.store.base import (
    HEARTBEAT_TIMEOUT_S,
    JOB_RUN_TYPE,
    ComputeTargetRecord,
    ExperimentRecord,
    MetricBatch,
    MetricSeries,
    MetricSummary,
    RunFilter,
    RunRecord,
    RunStatus,
    RunStore,
)
from runhistory.store.sql.engine import unavailable_as_error
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

    # transactions
    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with unavailable_as_error(self.uri), self._engine.connect() as connection:
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
        for attempt in range(_RETRIES_WHEN_LOCKED):
            try:
                with self._writing() as connection:
                    return work(connection, *args)
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                    raise RunHistoryError(f"The run history at {self.uri} could not be written: {exc.orig}") from exc
                if attempt == _RETRIES_WHEN_LOCKED - 1:
                    raise StoreUnavailableError(f"The run history at {self.uri} stayed locked by another process.") from exc
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _write_postgres(self, work, *args):
        """Run ``work(connection, *args)`` in a transaction, again from the start when it lost a race."""
        for attempt in range(_RETRIES_ON_CONFLICT):
            try:
                with self._writing() as connection:
                    return work(connection, *args)
            except sa.exc.DBAPIError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state not in _POSTGRES_RETRYABLE or attempt == _RETRIES_ON_CONFLICT - 1:
                    raise RunHistoryError(
                        f"The run history at {_redact(self.uri)} could not be written: {_first_line(exc.orig)}"
                    ) from exc
                time.sleep(0.01 * 2**attempt * (0.5 + secrets.randbelow(1000) / 1000))
        raise AssertionError("unreachable")

    # experiments
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        found = self.get_experiment(name)
        return found if found is not None else self._write(_insert_experiment, name)

    def get_experiment(self, name: str) -> ExperimentRecord | None:
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
    ) -> RunRecord:
        run_id = self._write(_insert_run, experiment_id, display_name, parent_id, status, run_type, target)
        return self._require_run(run_id)

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._reading() as connection:
            row = connection.execute(_select_runs().where(runs.c.id == run_id)).first()
        return None if row is None else self._expire_if_stale(_run_record(row))

    def get_run_by_number(self, experiment_id: int, number: int) -> RunRecord | None:
        query = _select_runs().where(runs.c.experiment_id == experiment_id, runs.c.number == number)
        with self._reading() as connection:
            row = connection.execute(query).first()
        return None if row is None else self._expire_if_stale(_run_record(row))

    def _expire_if_stale(self, record: RunRecord) -> RunRecord:
        """The run as stored, after marking it Failed if it is a job whose supervisor is gone."""
        silence = _silence(record, time.time())
        if silence is None:
            return record
        error = {
            "message": (
                f"The job's supervisor stopped heartbeating {silence:.1f} s ago (it was killed, or its "
                f"machine stopped); the job did not finish."
            ),
            "code": "SupervisorLost",
        }
        try:
            self._write(_fail_stale_run, record.id, error)
        except RunHistoryError:  # a read-only reader still reports the run as Failed
            return dataclasses.replace(record, status=RunStatus.FAILED, error=error, end_time=time.time())
        return self._require_run(record.id)

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        query = _select_runs()
        if run_filter.experiment_id is not None:
            query = query.where(runs.c.experiment_id == run_filter.experiment_id)
        if run_filter.parent_id is not None:
            query = query.where(runs.c.parent_id == run_filter.parent_id)
        if run_filter.top_level_only:
            query = query.where(runs.c.parent_id.is_(None))
        if run_filter.target is not None:
            query = query.where(runs.c.target == run_filter.target)
        if run_filter.status is not None:
            query = query.where(runs.c.status == run_filter.status)
        for key, value in run_filter.tags.items():
            match = sa.select(tags.c.run_id).where(tags.c.key == key)
            if value is not None:
                match = match.where(tags.c.value == value)
            query = query.where(runs.c.id.in_(match))
        query = query.order_by(runs.c.experiment_id, runs.c.number.desc())
        with self._reading() as connection:
            records = [_run_record(row) for row in connection.execute(query)]
        records = [self._expire_if_stale(record) for record in records]
        if run_filter.status is not None:  # a stale job read as Running is Failed now
            records = [record for record in records if record.status == run_filter.status]
        return records

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        only_if_not_terminal: bool = True,
        at: float | None = None,
    ) -> RunRecord:
        self._require_run(run_id)
        self._write(_update_status, run_id, status, error, only_if_not_terminal, at)
        return self._require_run(run_id)

    def _require_run(self, run_id: str) -> RunRecord:
        record = self.get_run(run_id)
        if record is None:
            raise NotFoundError(f"No run with id {run_id!r} in the run history at {_redact(self.uri)}.")
        return record

    # jobs
    def heartbeat(self, run_id: str) -> str:
        self._require_run(run_id)
        return self._write(_beat, run_id)

    def claim_job_slot(self, run_id: str, target: str, max_concurrent: int) -> bool:
        return self._write(_claim_slot, run_id, target, max_concurrent)

    def save_compute_target(self, name: str, kind: str, config: Mapping[str, Any]) -> ComputeTargetRecord:
        self._write(_upsert_compute_target, name, kind, json.dumps(dict(config), sort_keys=True))
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
        self._require_run(run_id)
        self._write(_upsert, tags, run_id, new_tags)

    def get_tags(self, run_id: str) -> dict[str, str | None]:
        return self._key_values(tags, run_id)

    def add_properties(self, run_id: str, new_properties: Mapping[str, str]) -> None:
        self._require_run(run_id)
        self._write(_insert_properties, run_id, new_properties)

    def get_properties(self, run_id: str) -> dict[str, str]:
        return self._key_values(properties, run_id)

    def _key_values(self, table: sa.Table, run_id: str) -> dict[str, Any]:
        query = sa.select(table.c.key, table.c.value).where(table.c.run_id == run_id).order_by(table.c.key)
        with self._reading() as connection:
            return {row.key: row.value for row in connection.execute(query)}

    # metrics
    def append_metrics(self, batches: Iterable[MetricBatch], batch_id: str | None = None) -> None:
        batches = [batch for batch in batches if len(batch.values)]
        if batch_id is not None:
            self._write(_append_batches_once, batches, batch_id)
            self._prune_batch_ids_now_and_then()
        elif batches:
            self._write(_append_batches, batches)

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
        series_query = sa.select(metrics).where(metrics.c.run_id == run_id).order_by(metrics.c.name)
        if names is not None:
            series_query = series_query.where(metrics.c.name.in_(list(names)))
        with self._reading() as connection:
            series_rows = connection.execute(series_query).all()
            starts = {row.name: _start_of(row.name, start) for row in series_rows}
            chunks = _chunks_by_metric(connection, [row.id for row in series_rows], min(starts.values(), default=0))
        return {row.name: _series(row, chunks.get(row.id, []), starts[row.name]) for row in series_rows}

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        query = sa.select(metrics).where(metrics.c.run_id == run_id).order_by(metrics.c.name)
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return [
            MetricSummary(row.name, row.kind, row.count, codec.decode_json_value(row.last_value), row.description)
            for row in rows
        ]

    def after_fork(self) -> None:
        self._engine.dispose(close=False)

    def close(self) -> None:
        self._engine.dispose()


def _redact(uri: str) -> str:
    from runhistory.store.sql.engine import redact_uri

    return redact_uri(uri)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- write transactions (each takes the connection first) ---


def _insert_experiment(connection: Connection, name: str) -> ExperimentRecord:
    existing = connection.execute(sa.select(experiments).where(experiments.c.name == name)).first()
    if existing is not None:  # another process created it since our read
        return ExperimentRecord(existing.id, existing.name, existing.created_time)
    created = time.time()
    result = connection.execute(sa.insert(experiments).values(name=name, created_time=created))
    return ExperimentRecord(result.inserted_primary_key[0], name, created)


def _insert_run(
    connection: Connection,
    experiment_id: int,
    display_name: str | None,
    parent_id: str | None,
    status: str,
    run_type: str,
    target: str | None,
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
        run_id = f"{experiment_name}_{int(now)}_{secrets.token_hex(4)}"
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
        )
    )
    return run_id


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
        update = update.where(runs.c.status.not_in(list(RunStatus.TERMINAL)))
    connection.execute(update)


_ALIVE = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)
_HOLDING_A_SLOT = (RunStatus.STARTING, RunStatus.RUNNING)


def _silence(record: RunRecord, now: float) -> float | None:
    """Seconds since the last heartbeat of a job run that should be beating but is not; else None."""
    if record.run_type != JOB_RUN_TYPE or record.status not in _ALIVE or record.heartbeat_time is None:
        return None
    silence = now - record.heartbeat_time
    return silence if silence > HEARTBEAT_TIMEOUT_S else None


def _fail_stale_run(connection: Connection, run_id: str, error: dict[str, Any]) -> None:
    now = time.time()
    connection.execute(
        sa.update(runs)
        .where(
            runs.c.id == run_id,
            runs.c.status.in_(_ALIVE),
            runs.c.heartbeat_time < now - HEARTBEAT_TIMEOUT_S,  # it did not beat since we read it
        )
        .values(
            status=RunStatus.FAILED,
            error=json.dumps(error),
            end_time=now,
            start_time=sa.func.coalesce(runs.c.start_time, now),
        )
    )


def _beat(connection: Connection, run_id: str) -> str:
    connection.execute(sa.update(runs).where(runs.c.id == run_id).values(heartbeat_time=time.time()))
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


def _append_batches(connection: Connection, batches: list[MetricBatch]) -> None:
    """Append each batch to its series: a constant number of statements however many series."""
    series = _open_series(connection, batches)
    chunk_rows, updates = [], {}
    for batch in batches:
        metric_id, first_index = series[(batch.run_id, batch.name)]
        steps = codec.resolve_steps(batch.steps, first_index)
        encoding, vals = codec.encode_values(batch.values)
        chunk_rows.append(
            {
                "metric_id": metric_id,
                "first_index": first_index,
                "count": len(batch.values),
                "encoding": encoding,
                "steps": codec.encode_steps(steps, first_index),
                "vals": vals,
                "times": codec.encode_times(batch.times),
            }
        )
        series[(batch.run_id, batch.name)] = (metric_id, first_index + len(batch.values))
        updates[metric_id] = {
            "b_id": metric_id,
            "b_count": first_index + len(batch.values),
            "b_last": codec.encode_json_value(batch.values[-1]),
        }
    # executemany: multi-row INSERT ... VALUES (SQLAlchemy's insertmanyvalues) and a pipelined UPDATE.
    connection.execute(sa.insert(metric_chunks), chunk_rows)
    connection.execute(
        sa.update(metrics)
        .where(metrics.c.id == sa.bindparam("b_id"))
        .values(count=sa.bindparam("b_count"), last_value=sa.bindparam("b_last")),
        list(updates.values()),
    )


def _append_batches_once(connection: Connection, batches: list[MetricBatch], batch_id: str) -> None:
    """Append the batches unless a batch with this id was applied before (in the same transaction)."""
    seen = connection.execute(sa.select(applied_batches.c.id).where(applied_batches.c.id == batch_id)).first()
    if seen is not None:
        return
    connection.execute(sa.insert(applied_batches).values(id=batch_id, applied_time=time.time()))
    if batches:
        _append_batches(connection, batches)


def _delete_batch_ids(connection: Connection, applied_before: float) -> int:
    return connection.execute(sa.delete(applied_batches).where(applied_batches.c.applied_time < applied_before)).rowcount


_NAMES_PER_QUERY = 500


def _open_series(connection: Connection, batches: list[MetricBatch]) -> dict[tuple[str, str], tuple[int, int]]:
    """Each batch's series as ``{(run_id, name): (id, current length)}``, creating the new ones.

    The rows are read ``FOR UPDATE`` (in id order, so that writers never wait on each other in
    a circle): on PostgreSQL two writers appending to one series take turns, each seeing the
    other's count. A series created concurrently elsewhere is a unique violation; the store
    then runs the whole transaction again and finds it.
    """
    wanted: dict[str, dict[str, MetricBatch]] = {}
    for batch in batches:
        wanted.setdefault(batch.run_id, {}).setdefault(batch.name, batch)
    found: dict[tuple[str, str], tuple[int, int]] = {}

    def read(run_id: str, names: list[str]) -> None:
        for at in range(0, len(names), _NAMES_PER_QUERY):
            query = (
                sa.select(metrics.c.id, metrics.c.name, metrics.c.count)
                .where(metrics.c.run_id == run_id, metrics.c.name.in_(names[at : at + _NAMES_PER_QUERY]))
                .order_by(metrics.c.id)
                .with_for_update()
            )
            for row in connection.execute(query):
                found[(run_id, row.name)] = (row.id, row.count)

    for run_id in sorted(wanted):
        read(run_id, sorted(wanted[run_id]))
        new = [batch for name, batch in wanted[run_id].items() if (run_id, name) not in found]
        if new:
            connection.execute(
                sa.insert(metrics),
                [
                    {"run_id": run_id, "name": b.name, "kind": b.kind, "description": b.description, "count": 0}
                    for b in new
                ],
            )
            read(run_id, sorted(b.name for b in new))
    return found


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
    )


def _compute_target_record(row) -> ComputeTargetRecord:
    return ComputeTargetRecord(name=row.name, kind=row.kind, config=json.loads(row.config), created_time=row.created_time)


def _chunks_by_metric(connection: Connection, metric_ids: list[int], start: int) -> dict[int, list]:
    if not metric_ids:
        return {}
    query = (
        sa.select(metric_chunks)
        .where(
            metric_chunks.c.metric_id.in_(metric_ids),
            metric_chunks.c.first_index + metric_chunks.c.count > start,
        )
        .order_by(metric_chunks.c.metric_id, metric_chunks.c.first_index)
    )
    grouped: dict[int, list] = {}
    for chunk in connection.execute(query):
        grouped.setdefault(chunk.metric_id, []).append(chunk)
    return grouped


def _start_of(name: str, start: int | Mapping[str, int]) -> int:
    return start.get(name, 0) if isinstance(start, Mapping) else start


def _series(row, chunks: list, start: int) -> MetricSeries:
    steps, values, times = [], [], []
    for chunk in chunks:
        skip = max(0, start - chunk.first_index)
        steps.append(codec.decode_steps(chunk.steps, chunk.first_index, chunk.count)[skip:])
        values.extend(codec.decode_values(chunk.encoding, chunk.vals)[skip:])
        times.append(codec.decode_times(chunk.times)[skip:])
    empty_int, empty_float = np.empty(0, np.int64), np.empty(0, np.float64)
    return MetricSeries(
        name=row.name,
        kind=row.kind,
        steps=np.concatenate(steps) if steps else empty_int,
        values=values,
        times=np.concatenate(times) if times else empty_float,
        description=row.description,
    )
