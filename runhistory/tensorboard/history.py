"""Writing a run's run history (``run.log`` & co.) into TensorBoard event files, incrementally.

One :class:`HistoryWriter` per run keeps how many points of each series it has written, so
that calling :meth:`HistoryWriter.sync` again writes only what is new: the exporter calls it
once, the follower every poll. What becomes what:

- numbers of ``log``/``log_list``: scalars (float32) with their steps and wall times;
  strings: text. A series mixing both keeps its numbers as one scalar curve under its name
  and puts its strings under ``NAME/text`` (a tag holds one kind of data in TensorBoard:
  text under a scalar tag shows as a scalar in the Python loader and, in the Rust one, cuts
  the curve at the text's step);
- ``log_row``/``log_table``: a text table (all rows so far, at the step of the last row) and
  a scalar series per numeric column, ``name/column``, by row index;
- ``log_image``: images (PNG or JPEG files among the run's files);
- a run of a sweep: an HParams session (its tags and properties, the metrics named as
  hyperparameters, and its scalar series as the session's metrics). A trial of a HyperDrive
  sweep (a run whose ``hyperparameters`` property holds its parameters as JSON) has exactly
  those parameters as its hyperparameters, and its session starts as soon as it is seen, so
  that the HParams dashboard lists it while it runs. A session written before its run ended
  reads STATUS_RUNNING;
- a HyperDrive sweep run (property ``runhistory.run_type=hyperdrive``), when asked for: the
  HParams experiment, whose hyperparameters are the sweep's parameters and whose one metric
  column is its primary metric (the other tags its trials log vary from trial to trial and
  are not known when the sweep starts; an experiment, once read, is never read again).

A session's status cannot change once TensorBoard has read it: both its loaders keep the
summary metadata of a run's tag from the first event that carries it (whatever the step or
the file, later ones are ignored), and that metadata is where the HParams plugin reads
``session_end_info``. So a session is written once with the status it has when written (the
follower writes a running trial in a folder of its own and drops it at the end: see
:mod:`runhistory.tensorboard.follow`).

Series read from the run's own event files (source ``MetricSource.EVENT_FILES``) and TensorBoard
summaries that stay there (kind ``MetricKind.SUMMARY``) are never written: they are in the run's
``logs/`` files already, which TensorBoard is shown beside these; nor are they hyperparameters.

Repeated or decreasing steps: TensorBoard keeps one point per step and, in its fast loader,
drops what it holds at and after a step that goes back. So within what one sync writes, a
series is ordered by step and, where a step repeats, the last logged point wins.

One unreadable item (a missing or corrupt image, a series TensorBoard cannot hold) is left
out and reported once through ``report``; the rest is written. A store that is unavailable
is not such an item: that error goes up, so that the follower tries again.
"""

from __future__ import annotations

import json
import math
import numbers
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from runhistory.core.errors import ArtifactNotFoundError, RunHistoryError, StoreUnavailableError
from runhistory.store.base import MetricKind, MetricSeries, MetricSource, MetricSummary, RunStatus
from runhistory.tensorboard.events import EventFileWriter, HParamDomain, image_size

if TYPE_CHECKING:
    from runhistory.run import Run

EXPORT_SUFFIX = ".runhistory"
LIVE_SUFFIX = ".running"  # the folder of a trial while a follower writes it (see live_folder)
SCALARS, TEXT = "scalars", "text"
# What one item TensorBoard cannot hold raises; anything else (a bug, a full disk) goes up.
_ITEM_ERRORS = (RunHistoryError, ValueError, TypeError, OverflowError)
TRIAL_HYPERPARAMETERS_PROPERTY = "hyperparameters"  # what a HyperDrive sweep's controller sets on each trial
# Properties of a HyperDrive sweep run (runhistory.train.hyperdrive.runconfig sets them; read as
# plain strings, since this package is below runhistory.train).
RUN_TYPE_PROPERTY, SWEEP_RUN_TYPE = "runhistory.run_type", "hyperdrive"
PRIMARY_METRIC_PROPERTY = "hyperdrive.primary_metric"
PARAMETERS_PROPERTY = "hyperdrive.parameters"  # a JSON list of the parameter names
SPACE_PROPERTY = "hyperdrive.space"  # {"parameter_space": {name: {"kind": ..., "args": [...]}}}
# A trial is created with its parameters (submit_job sets its properties right after creating the
# run, one tag write in between): a follower that sees the run in that window looks again at this
# many syncs (about 1 s) before taking it for a plain child run.
TRIAL_CHECKS = 4
# TensorBoard has no status for a canceled (or pruned) run: neither success nor failure.
_SESSION_STATUS = {RunStatus.COMPLETED: "success", RunStatus.FAILED: "failure", RunStatus.CANCELED: "unknown"}


def last_point_per_step(steps: np.ndarray) -> np.ndarray:
    """Indexes that order points by step, keeping the last logged point of a repeated step."""
    if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return np.arange(steps.size)
    order = np.argsort(steps, kind="stable")
    ordered = steps[order]
    keep = np.append(ordered[1:] != ordered[:-1], True)
    return order[keep]


def print_report(message: str) -> None:
    """The default ``report``: one line on stderr."""
    print(f"runhistory: {message}", file=sys.stderr)


def is_number(value: Any) -> bool:
    """A value TensorBoard shows as a scalar: a real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_exported(series: MetricSeries | MetricSummary) -> bool:
    """Whether a series is written into TensorBoard files: not when it came from the run's own
    event files, nor a summary that stays there (TensorBoard reads those from the run's logs)."""
    return series.source == MetricSource.SDK and series.kind != MetricKind.SUMMARY


def remove_previous_export(folder: Path) -> None:
    """Delete event files an earlier export wrote in this folder (never the run's own logs), and
    the live folder a follower stopped before the run's end left beside it."""
    if folder.is_dir():
        for path in folder.glob(f"events.out.tfevents.*{EXPORT_SUFFIX}"):
            path.unlink()
    shutil.rmtree(live_folder(folder), ignore_errors=True)


def live_folder(folder: Path) -> Path:
    """Where a follower writes a running trial whose final folder is ``folder``: beside it, under
    a name no run's folder has (those end in the run's number or id)."""
    return folder.with_name(folder.name + LIVE_SUFFIX)


class HistoryWriter:
    """Writes one run's metrics into event files in ``folder``; :meth:`sync` writes what is new.

    ``report(message)`` hears of each item left out (default: a line on stderr). With
    ``live_session``, the session of a trial starts with the status running (for a folder that
    is dropped when the run ends); with ``describes_sweep``, the first sync of a HyperDrive
    sweep run writes the HParams experiment of its trials.
    """

    def __init__(
        self,
        run: "Run",
        folder: Path,
        in_sweep: bool = False,
        hparam_names: Sequence[str] = (),
        report: Callable[[str], None] = print_report,
        *,
        live_session: bool = False,
        describes_sweep: bool = False,
    ) -> None:
        self.run = run
        self.folder = folder
        self._in_sweep = in_sweep
        self._hparam_names = list(hparam_names)
        self._live_session = live_session
        self._experiment_pending = describes_sweep
        self._report = report
        self._workspace = run.experiment.workspace
        self._written: dict[str, int] = {}
        self._tags: dict[tuple[str, str], str] = {}
        self._writer: EventFileWriter | None = None
        self._session_written = False
        self._session_started = False
        self._trial_checks_left = TRIAL_CHECKS

    def sync(self, final: bool = False, series: dict[str, MetricSeries] | None = None) -> int:
        """Write points logged since the last sync; on the ``final`` sync also the HParams session.

        ``series``: the run's whole series, read already (an export reads those of many runs at
        once); by default the store is asked for what is new. Returns the number of points written.
        """
        if series is None:
            self.run.flush()
            summaries, grown = self._read_grown()
        else:
            summaries = [summary_of(one) for one in series.values() if is_exported(one)]
            grown = {
                name: _from_point(one, self._written.get(name, 0))
                for name, one in series.items()
                if len(one.values) > self._written.get(name, 0) and is_exported(one)
            }
        if self._experiment_pending:
            self._write_experiment()
        count = 0
        for name, one in grown.items():
            count += self._write_isolated(one, self._written.get(name, 0))
        if self._in_sweep and not self._session_written and (final or not self._session_started):
            try:
                self._write_session(summaries, final)
            except StoreUnavailableError:
                raise
            except _ITEM_ERRORS as exc:
                self._session_written = self._session_started = True
                self._report(f"left the HParams session of run {self.run.id} out of TensorBoard: {exc}")
        if self._writer is not None:
            self._writer.flush()
        return count

    def _read_grown(self) -> tuple[list[MetricSummary], dict[str, MetricSeries]]:
        """The summaries of the run's exported series, and those that grew since the last sync, read
        from where each was."""
        store = self._workspace.store
        summaries = [one for one in store.get_metric_summaries(self.run.id) if is_exported(one)]
        grown = {s.name: s for s in summaries if s.count > self._written.get(s.name, 0)}
        if not grown:
            return summaries, {}
        # Tables are rewritten whole (their text shows every row); the rest from where we were.
        starts = {name: 0 if s.kind == MetricKind.TABLE else self._written.get(name, 0) for name, s in grown.items()}
        return summaries, store.get_metrics(self.run.id, list(grown), start=starts)

    def close(self) -> None:
        """Close the event file."""
        if self._writer is not None:
            self._writer.close()

    def _events(self) -> EventFileWriter:
        if self._writer is None:
            self._writer = EventFileWriter(self.folder, filename_suffix=EXPORT_SUFFIX)
        return self._writer

    def _write_isolated(self, series: MetricSeries, done: int) -> int:
        """Write a series; one TensorBoard cannot hold is reported and counted as written."""
        try:
            return self._write_series(series, done)
        except StoreUnavailableError:
            raise
        except _ITEM_ERRORS as exc:
            # Tables are read whole, other series from ``done`` on.
            whole = series.kind == MetricKind.TABLE
            self._written[series.name] = len(series.values) if whole else done + len(series.values)
            self._report(f"left metric {series.name!r} of run {self.run.id} out of TensorBoard: {exc}")
            return 0

    def _write_series(self, series: MetricSeries, done: int) -> int:
        """Write a series read from ``done`` on (tables: read whole); returns the new point count."""
        if series.kind == MetricKind.TABLE:
            self._write_table(series, first_new_row=done)
            new = len(series.values) - done
        elif series.kind == MetricKind.IMAGE:
            new = self._write_images(series, done)
        else:
            self._write_values(series.name, series.steps, series.values, series.times)
            new = len(series.values)
        self._written[series.name] = done + new
        return new

    def _tag(self, name: str, plugin: str) -> str:
        """The tag of a series' scalars or text: the first kind written takes the name, the other
        ``NAME/text`` (or ``NAME/scalars``), and keeps it in every later sync."""
        key = (name, plugin)
        if key not in self._tags:
            other = (name, TEXT if plugin == SCALARS else SCALARS)
            self._tags[key] = f"{name}/{plugin}" if other in self._tags else name
        return self._tags[key]

    def _write_values(self, name: str, steps: np.ndarray, values: list[Any], times: np.ndarray) -> None:
        try:
            array = np.asarray(values) if values else np.zeros(0)
        except (TypeError, ValueError):  # ragged values: neither numbers nor strings
            array = np.asarray(values, dtype=object)
        if array.ndim == 1 and array.dtype.kind in "iuf":  # numbers only: the fast path
            self._write_scalars(name, steps, array.astype(np.float64), times)
            return
        numeric = np.fromiter((is_number(value) for value in values), dtype=bool, count=len(values))
        if numeric.any():
            numbers_only = np.asarray([v for v, ok in zip(values, numeric) if ok], dtype=np.float64)
            self._write_scalars(name, steps[numeric], numbers_only, times[numeric])
        if not numeric.all():
            tag = self._tag(name, TEXT)
            texts = [value for value, ok in zip(values, numeric) if not ok]
            for step, text, wall in zip(steps[~numeric].tolist(), texts, times[~numeric].tolist()):
                self._events().add_text(tag, str(text), step, wall)

    def _write_scalars(self, name: str, steps: np.ndarray, numbers_only: np.ndarray, times: np.ndarray) -> None:
        keep = last_point_per_step(steps)
        self._events().add_scalars(self._tag(name, SCALARS), steps[keep], numbers_only[keep], times[keep])

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
            numeric = [is_number(c) for c in cells]
            if any(numeric):
                mask = np.array(numeric)
                values = np.asarray([c for c, ok in zip(cells, numeric) if ok], dtype=np.float64)
                self._events().add_scalars(f"{series.name}/{column}", indexes[mask], values, times[mask])

    def _write_images(self, series: MetricSeries, done: int) -> int:
        """Write each image (PNG or JPEG); one that cannot be read is reported and left out."""
        for step, file_name, wall in zip(series.steps.tolist(), series.values, series.times.tolist()):
            image = self._read_image(series.name, step, file_name)
            if image is not None:
                data, (width, height) = image
                self._events().add_image(series.name, data, step, wall, width=width, height=height)
            done += 1
            self._written[series.name] = done  # an image written is never written again
        return len(series.values)

    def _read_image(self, name: str, step: int, file_name: Any) -> tuple[bytes, tuple[int, int]] | None:
        """The bytes and size of one image, or None (reported) when it is missing or not a PNG or JPEG."""
        where = f"image {name!r} of run {self.run.id} at step {step}"
        if not isinstance(file_name, str):
            self._report(f"left {where} out of TensorBoard: it names no file ({file_name!r}).")
            return None
        try:
            data = self._workspace.artifacts.read(self.run.id, file_name)
            size = image_size(data)
        except StoreUnavailableError:
            raise
        except ArtifactNotFoundError:
            self._report(f"left {where} out of TensorBoard: its file {file_name} is missing.")
            return None
        except (*_ITEM_ERRORS, OSError) as exc:  # OSError: this one file could not be read
            self._report(f"left {where} out of TensorBoard: {file_name}: {_reason(exc)}")
            return None
        return data, size

    def _write_experiment(self) -> None:
        """The HParams experiment of a sweep run's trials, once (nothing for a run that is no sweep)."""
        self._experiment_pending = False
        try:
            experiment = sweep_experiment(self._workspace.store.get_properties(self.run.id))
            if experiment is not None:
                hparams, metrics = experiment
                record = self._workspace.store.get_run(self.run.id)
                self._events().add_hparams_experiment(hparams, metrics, time_created=record.created_time)
        except StoreUnavailableError:
            self._experiment_pending = True  # tried again at the next sync
            raise
        except _ITEM_ERRORS as exc:
            self._report(f"left the HParams experiment of sweep {self.run.id} out of TensorBoard: {exc}")

    def _write_session(self, summaries: list[MetricSummary], final: bool) -> None:
        """The run's HParams session: at the final sync, whole; before, only the start of a sweep
        trial's (its parameters are known from the start), once. Its end info is written with it
        (TensorBoard reads only the first): the run's end, or running while it goes on (at the
        final sync of an export, or in a live folder); none for a live session elsewhere."""
        if not final:
            self._trial_checks_left -= 1
            self._session_started = self._trial_checks_left <= 0
            if trial_hyperparameters(self._workspace.store.get_properties(self.run.id)) is None:
                return
            self._session_started = True
        record = self._workspace.store.get_run(self.run.id)
        ended = record.status in RunStatus.TERMINAL
        running = "running" if final or self._live_session else None
        self._events().add_hparams_session(
            session_hparams(self.run, self._hparam_names, summaries),
            group_name=self.run.id,
            start_time=record.start_time or record.created_time,
            end_time=record.end_time,
            status=_SESSION_STATUS.get(record.status) if final and ended else running,
        )
        self._session_written = (final and ended) or self._live_session


def summary_of(series: MetricSeries) -> MetricSummary:
    """What the store's summary of a series says (kind, count, last value), from the series itself."""
    last = series.values[-1] if series.values else None
    return MetricSummary(series.name, series.kind, len(series.values), last, series.description, series.source)


def _from_point(series: MetricSeries, done: int) -> MetricSeries:
    """A whole series from point ``done`` on, as a read of what is new gives it (tables: whole)."""
    if done == 0 or series.kind == MetricKind.TABLE:
        return series
    return MetricSeries(
        series.name,
        series.kind,
        series.steps[done:],
        series.values[done:],
        series.times[done:],
        series.description,
        series.source,
    )


def session_hparams(run: "Run", hparam_names: Sequence[str], summaries: list[MetricSummary]) -> dict[str, Any]:
    """A run's hyperparameters: tags, properties and the last values of the named metrics; for a
    trial of a HyperDrive sweep, its parameters instead of its tags and properties.

    With none of these, the metric the run logged first (a single value, like the sweep's
    ``run.log("alpha", alpha)``) is taken as its hyperparameter. Series that are not exported
    (see :func:`is_exported`) are never hyperparameters.
    """
    summaries = [summary for summary in summaries if is_exported(summary)]
    store = run.experiment.workspace.store
    properties = store.get_properties(run.id)
    hparams: dict[str, Any] | None = trial_hyperparameters(properties)
    if hparams is None:
        hparams = {key: _typed(value) for key, value in store.get_tags(run.id).items()}
        hparams.update({key: _typed(value) for key, value in properties.items()})
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


def trial_hyperparameters(properties: dict[str, str]) -> dict[str, float | str] | None:
    """The parameters of a HyperDrive trial (its ``hyperparameters`` property, a JSON object), or
    None for a run that is no trial."""
    text = properties.get(TRIAL_HYPERPARAMETERS_PROPERTY)
    try:
        values = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(values, dict) or not values:
        return None
    return {str(name): _hparam_value(value) for name, value in values.items()}


def sweep_experiment(properties: dict[str, str]) -> tuple[dict[str, HParamDomain], list[str]] | None:
    """The HParams experiment of a HyperDrive sweep run's trials from its properties: its
    parameters (a choice's options as their domain) and its primary metric; None for a run that
    is no sweep."""
    if properties.get(RUN_TYPE_PROPERTY) != SWEEP_RUN_TYPE or not properties.get(PRIMARY_METRIC_PROPERTY):
        return None
    try:
        names = json.loads(properties.get(PARAMETERS_PROPERTY) or "null")
    except ValueError:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        return None
    domains = _choice_domains(properties.get(SPACE_PROPERTY))
    return {name: domains.get(name) for name in names}, [properties[PRIMARY_METRIC_PROPERTY]]


def _choice_domains(space_text: str | None) -> dict[str, list[float | str]]:
    """The options of each ``choice`` parameter of a sweep's space, as its trials' sessions hold
    them (numbers as floats, the rest as text); a space that cannot be read gives none."""
    try:
        space = json.loads(space_text or "null")
    except ValueError:
        return {}
    parameters = space.get("parameter_space") if isinstance(space, dict) else None
    if not isinstance(parameters, dict):
        return {}
    domains = {}
    for name, distribution in parameters.items():
        if isinstance(distribution, dict) and distribution.get("kind") == "choice":
            options = [_hparam_value(option) for option in distribution.get("args") or ()]
            if options and len({type(option) for option in options}) == 1:  # one type, as Discrete needs
                domains[name] = list(dict.fromkeys(options))
    return domains


def _typed(text: str) -> float | str:
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _hparam_value(value: Any) -> float | str:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _reason(error: BaseException) -> str:
    """An error as the end of a report sentence."""
    text = str(error).strip().rstrip(".") or type(error).__name__
    return f"{text}."


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
