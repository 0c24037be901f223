"""``HyperDriveRun``: a sweep run, its trials ranked by the primary metric, and a live table of them.

Ranking reads the sweep run's properties (metric and goal) and the trials' metrics: it works
without the controller, during the sweep and after it.

A sweep whose controller died (``kill -9``) reads Failed through its supervisor, which first
cancels the trials still open (a job's child jobs do not outlive it, see
:mod:`runhistory.jobs.supervisor`). Should the sweep's supervisor die too, a ``HyperDriveRun``
ends them when it finds the sweep ended (``get_status``, ``wait_for_completion``, the
rankings): a trial still open gets its cancel requested, and one the store already ended
Failed for its supervisor's silence (``SupervisorLost``) is set Canceled.
"""

from __future__ import annotations

import json
import numbers
import sys
import time
from typing import Any

from runhistory.core.errors import RunHistoryError
from runhistory.run import Run
from runhistory.store.base import RunStatus
from runhistory.train.hyperdrive import runconfig as rc

WAIT_POLL_S = 0.5
_LOST_CODE = "SupervisorLost"


class HyperDriveRun(Run):
    """A sweep: a job run whose children are its trials (see :class:`HyperDriveConfig`)."""

    @classmethod
    def from_run(cls, run: Run) -> "HyperDriveRun":
        """The sweep handle of a run (``ws.get_run(id)`` returns a plain Run)."""
        if run.get_properties().get(rc.RUN_TYPE_KEY) != rc.RUN_TYPE and run.get_tags().get(rc.RUN_TYPE_KEY) != rc.RUN_TYPE:
            raise RunHistoryError(f"Run {run.id} is not a HyperDrive sweep (it has no {rc.RUN_TYPE_KEY}={rc.RUN_TYPE}).")
        return cls.from_record(run.workspace, run.record)

    # --- what the sweep ranks by ---

    @property
    def primary_metric_name(self) -> str:
        """The metric the trials are ranked by."""
        return self.get_properties().get(rc.PRIMARY_METRIC_NAME, "")

    @property
    def primary_metric_goal(self) -> rc.PrimaryMetricGoal:
        """MAXIMIZE or MINIMIZE."""
        return rc.PrimaryMetricGoal.from_str(self.get_properties().get(rc.PRIMARY_METRIC_GOAL, "MAXIMIZE"))

    def get_status(self) -> str:
        """The sweep's current status; an ended sweep's open trials are canceled (see the module's note)."""
        status = super().get_status()
        if status in RunStatus.TERMINAL:
            self._end_orphaned_trials()
        return status

    def get_children_sorted_by_primary_metric(self, top: int = 0, reverse: bool = False) -> list[dict[str, Any]]:
        """The trials, best first (worst first with ``reverse``), trials without the metric last:
        dicts with ``run_id``, ``hyperparameters``, ``best_primary_metric`` (its last value) and
        ``status``; ``top`` > 0 keeps that many."""
        self.get_status()
        rows = [self._row(child) for child in self.get_children()]
        ranked = [row for row in rows if row["best_primary_metric"] is not None]
        ranked.sort(key=lambda row: row["best_primary_metric"], reverse=(self.primary_metric_goal == rc.PrimaryMetricGoal.MAXIMIZE) != reverse)
        ordered = ranked + [row for row in rows if row["best_primary_metric"] is None]
        return ordered[:top] if top > 0 else ordered

    def get_best_run_by_primary_metric(self, include_failed: bool = True, include_canceled: bool = True) -> Run | None:
        """The trial with the best last value of the primary metric (None when none logged it)."""
        left_out = {RunStatus.FAILED} if not include_failed else set()
        if not include_canceled:
            left_out.add(RunStatus.CANCELED)
        for row in self.get_children_sorted_by_primary_metric():
            if row["best_primary_metric"] is not None and row["status"] not in left_out:
                return self.workspace.get_run(row["run_id"])
        return None

    def get_hyperparameters(self) -> dict[str, str]:
        """``{trial run id: its hyperparameters as JSON}``."""
        return {child.id: child.get_properties().get(rc.HYPERPARAMETERS, "{}") for child in self.get_children()}

    def get_metrics(self, name: str | None = None, recursive: bool = False) -> dict[str, Any]:
        """``{trial run id: its metrics}`` (``name``: that metric only), as azureml's HyperDriveRun."""
        return {child.id: child.get_metrics(name) for child in self.get_children()}

    def cancel(self) -> None:
        """Cancel the sweep: its controller cancels the trials still running, then it ends Canceled."""
        super().cancel()

    def wait_for_completion(
        self,
        show_output: bool = True,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Block until the sweep ends; with ``show_output`` a live table of its trials (plain
        lines when the output is not a terminal). Returns the sweep's details."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if show_output:
            _show_trials(self, deadline)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        details = super().wait_for_completion(show_output=False, raise_on_error=raise_on_error, timeout=left)
        self.get_status()
        return details

    # --- helpers ---

    def trial_rows(self) -> list[dict[str, Any]]:
        """One row per trial, oldest first: number, run id, status (Pruned when pruned), parameters, metric."""
        rows = []
        for child in self.get_children():
            row = self._row(child)
            properties = child.get_properties()
            row["number"] = properties.get(rc.OPTUNA_TRIAL, "")
            row["display_status"] = "Pruned" if properties.get(rc.PRUNED) == "1" else row["status"]
            rows.append(row)
        return rows

    def _row(self, child: Run) -> dict[str, Any]:
        return {
            "run_id": child.id,
            "hyperparameters": child.get_properties().get(rc.HYPERPARAMETERS, "{}"),
            "best_primary_metric": _last_number(child.get_metrics(self.primary_metric_name).get(self.primary_metric_name)),
            "status": child.record.status,
        }

    def _end_orphaned_trials(self) -> None:
        store = self.workspace.store
        for child in self.get_children():
            record = child.record
            if record.status not in RunStatus.TERMINAL and record.status != RunStatus.CANCEL_REQUESTED:
                child.cancel()
            elif record.status == RunStatus.FAILED and (record.error or {}).get("code") == _LOST_CODE:
                error = {"message": f"The sweep {self.id} ended ({self.record.status}); its trial was canceled.", "code": "SweepEnded"}
                store.set_status(child.id, RunStatus.CANCELED, error=error, only_if_not_terminal=False)


def _last_number(value: Any) -> float | None:
    """The last value of a metric read back (one value, or a list), when it is a number."""
    if isinstance(value, list):
        value = value[-1] if value else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _show_trials(sweep: HyperDriveRun, deadline: float | None) -> None:
    """Show the trials until the sweep ends: a rich live table on a terminal, else a line per change."""
    print(f"RunId: {sweep.id}", flush=True)
    if sys.stdout.isatty():
        _live_table(sweep, deadline)
    else:
        _lines(sweep, deadline)


def _ended(sweep: HyperDriveRun, deadline: float | None) -> bool:
    return Run.get_status(sweep) in RunStatus.TERMINAL or (deadline is not None and time.monotonic() > deadline)


def _lines(sweep: HyperDriveRun, deadline: float | None) -> None:
    shown: dict[str, str] = {}
    while True:
        ended = _ended(sweep, deadline)
        for row in sweep.trial_rows():
            line = _line(row)
            if shown.get(row["run_id"]) != line:
                shown[row["run_id"]] = line
                print(line, flush=True)
        if ended:
            return
        time.sleep(WAIT_POLL_S)


def _line(row: dict[str, Any]) -> str:
    metric = "" if row["best_primary_metric"] is None else f" {row['best_primary_metric']:g}"
    return f"trial {row['number']} {row['run_id']} {row['display_status']} {_params(row)}{metric}"


def _params(row: dict[str, Any]) -> str:
    try:
        params = json.loads(row["hyperparameters"])
    except ValueError:
        return row["hyperparameters"]
    return " ".join(f"{name}={value}" for name, value in params.items())


def _live_table(sweep: HyperDriveRun, deadline: float | None) -> None:
    from rich.live import Live
    from rich.table import Table

    def table() -> Table:
        view = Table(title=f"Sweep {sweep.id} ({sweep.primary_metric_name}, {sweep.primary_metric_goal.value})")
        for column in ("trial", "run", "status", "parameters", sweep.primary_metric_name):
            view.add_column(column)
        for row in sweep.trial_rows():
            metric = "" if row["best_primary_metric"] is None else f"{row['best_primary_metric']:g}"
            view.add_row(str(row["number"]), row["run_id"], row["display_status"], _params(row), metric)
        return view

    with Live(table(), refresh_per_second=2) as live:
        while not _ended(sweep, deadline):
            time.sleep(WAIT_POLL_S)
            live.update(table())
        live.update(table())
