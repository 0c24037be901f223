"""Writing a run's run history (``run.log`` & co.) into TensorBoard event files, incrementally.

One :class:`HistoryWriter` per run keeps how many points of each series it has written, so
that calling :meth:`HistoryWriter.sync` again writes only what is new: the exporter calls it
once, the follower every poll. What becomes what:

- numbers of ``log``/``log_list``: scalars (float32) with their steps and wall times;
  strings: text;
- ``log_row``/``log_table``: a text table (all rows so far, at the step of the last row) and
  a scalar series per numeric column, ``name/column``, by row index;
- ``log_image``: images;
- a run of a sweep: an HParams session (its tags and properties, the metrics named as
  hyperparameters, and its scalar series as the session's metrics).

Repeated or decreasing steps: TensorBoard keeps one point per step and, in its fast loader,
drops what it holds at and after a step that goes back. So within what one sync writes, a
series is ordered by step and, where a step repeats, the last logged point wins.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from runhistory.store.base import MetricKind, MetricSeries, MetricSummary, RunStatus
from runhistory.tensorboard.events import EventFileWriter

if TYPE_CHECKING:
    from runhistory.run import Run

EXPORT_SUFFIX = ".runhistory"
_SESSION_STATUS = {RunStatus.COMPLETED: "success", RunStatus.FAILED: "failure", RunStatus.CANCELED: "unknown"}


def last_point_per_step(steps: np.ndarray) -> np.ndarray:
    """Indexes that order points by step, keeping the last logged point of a repeated step."""
    if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return np.arange(steps.size)
    order = np.argsort(steps, kind="stable")
    ordered = steps[order]
    keep = np.append(ordered[1:] != ordered[:-1], True)
    return order[keep]


def remove_previous_export(folder: Path) -> None:
    """Delete event files an earlier export wrote in this folder (never the run's own logs)."""
    if folder.is_dir():
        for path in folder.glob(f"events.out.tfevents.*{EXPORT_SUFFIX}"):
            path.unlink()


class HistoryWriter:
    """Writes one run's metrics into event files in ``folder``; :meth:`sync` writes what is new."""

    def __init__(self, run: "Run", folder: Path, in_sweep: bool = False, hparam_names: Sequence[str] = ()) -> None:
        self.run = run
        self.folder = folder
        self._in_sweep = in_sweep
        self._hparam_names = list(hparam_names)
        self._workspace = run.experiment.workspace
        self._written: dict[str, int] = {}
        self._writer: EventFileWriter | None = None
        self._session_written = False

    def sync(self, final: bool = False) -> int:
        """Write points logged since the last sync; on the ``final`` sync also the HParams session.

        Returns the number of points written.
        """
        self.run.flush()
        store = self._workspace.store
        summaries = store.get_metric_summaries(self.run.id)
        grown = {s.name: s for s in summaries if s.count > self._written.get(s.name, 0)}
        count = 0
        if grown:
            # Tables are rewritten whole (their text shows every row); the rest from where we were.
            starts = {name: 0 if s.kind == MetricKind.TABLE else self._written.get(name, 0) for name, s in grown.items()}
            for name, series in store.get_metrics(self.run.id, list(grown), start=starts).items():
                count += self._write_series(series, self._written.get(name, 0))
        if final and self._in_sweep and not self._session_written:
            self._write_session(summaries)
        if self._writer is not None:
            self._writer.flush()
        return count

    def close(self) -> None:
        """Close the event file."""
        if self._writer is not None:
            self._writer.close()

    def _events(self) -> EventFileWriter:
        if self._writer is None:
            self._writer = EventFileWriter(self.folder, filename_suffix=EXPORT_SUFFIX)
        return self._writer

    def _write_series(self, series: MetricSeries, done: int) -> int:
        """Write a series read from ``done`` on (tables: read whole); returns the new point count."""
        if series.kind == MetricKind.TABLE:
            self._write_table(series, first_new_row=done)
            new = len(series.values) - done
        elif series.kind == MetricKind.IMAGE:
            self._write_images(series)
            new = len(series.values)
        else:
            self._write_values(series.name, series.steps, series.values, series.times)
            new = len(series.values)
        self._written[series.name] = done + new
        return new

    def _write_values(self, tag: str, steps: np.ndarray, values: list[Any], times: np.ndarray) -> None:
        try:
            numbers = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            numbers = None
        if numbers is not None and numbers.ndim == 1:
            keep = last_point_per_step(steps)
            self._events().add_scalars(tag, steps[keep], numbers[keep], times[keep])
            return
        is_number = np.array([isinstance(v, (int, float)) and not isinstance(v, bool) for v in values], dtype=bool)
        if is_number.any():
            numeric = np.asarray([v for v, ok in zip(values, is_number) if ok], dtype=np.float64)
            self._write_values(tag, steps[is_number], list(numeric), times[is_number])
        for step, value, wall in zip(steps[~is_number], np.asarray(values, dtype=object)[~is_number], times[~is_number]):
            self._events().add_text(tag, str(value), int(step), float(wall))

    def _write_table(self, series: MetricSeries, first_new_row: int) -> None:
        rows = series.values
        columns = list(dict.fromkeys(column for row in rows for column in row))
        table = [columns] + [[_cell(row.get(column)) for column in columns] for row in rows]
        self._events().add_text(series.name, table, len(rows) - 1, float(series.times[-1]))
        new_rows = rows[first_new_row:]
        indexes = np.arange(first_new_row, len(rows), dtype=np.int64)
        times = series.times[first_new_row:]
        for column in columns:
            cells = [row.get(column) for row in new_rows]
            numeric = [isinstance(c, (int, float)) and not isinstance(c, bool) for c in cells]
            if any(numeric):
                mask = np.array(numeric)
                values = np.asarray([c for c, ok in zip(cells, numeric) if ok], dtype=np.float64)
                self._events().add_scalars(f"{series.name}/{column}", indexes[mask], values, times[mask])

    def _write_images(self, series: MetricSeries) -> None:
        artifacts = self._workspace.artifacts
        for step, file_name, wall in zip(series.steps, series.values, series.times):
            png = artifacts.read(self.run.id, file_name)
            self._events().add_image(series.name, png, int(step), float(wall))

    def _write_session(self, summaries: list[MetricSummary]) -> None:
        record = self._workspace.store.get_run(self.run.id)
        self._events().add_hparams_session(
            session_hparams(self.run, self._hparam_names, summaries),
            group_name=self.run.id,
            start_time=record.start_time or record.created_time,
            end_time=record.end_time,
            status=_SESSION_STATUS.get(record.status),
        )
        self._session_written = record.status in RunStatus.TERMINAL


def session_hparams(run: "Run", hparam_names: Sequence[str], summaries: list[MetricSummary]) -> dict[str, Any]:
    """A run's hyperparameters: tags, properties and the last values of the named metrics.

    With none of these, the metric the run logged first (a single value, like the sweep's
    ``run.log("alpha", alpha)``) is taken as its hyperparameter.
    """
    store = run.experiment.workspace.store
    hparams: dict[str, Any] = {key: _typed(value) for key, value in store.get_tags(run.id).items()}
    hparams.update({key: _typed(value) for key, value in store.get_properties(run.id).items()})
    last_values = {summary.name: summary.last_value for summary in summaries}
    for name in hparam_names:
        if name in last_values:
            hparams[name] = _hparam_value(last_values[name])
    if not hparams:
        singles = [s.name for s in summaries if s.kind == MetricKind.SCALAR and s.count == 1]
        if singles:
            series = store.get_metrics(run.id, singles)
            first = min(series.values(), key=lambda s: float(s.times[0]))
            hparams[first.name] = _hparam_value(first.values[0])
    return hparams


def _typed(text: str) -> float | str:
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _hparam_value(value: Any) -> float | str:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
