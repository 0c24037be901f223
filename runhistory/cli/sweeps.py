"""What ``runhistory runs show`` adds for a HyperDrive sweep: its trials, with their parameters,
status ("Pruned" for a trial stopped early by the sweep's policy) and primary metric.

Everything is read from what the sweep's controller recorded, so this works for a sweep that
is still running, that ended or whose controller died: the trial's ``hyperparameters`` property
(JSON), its ``hyperdrive.pruned`` mark (a property or a tag), the sweep's primary metric name
(its ``hyperdrive.primary_metric`` property, or the ``name`` of its ``primary_metric_config`` JSON)
and ``best_child_run_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from runhistory.cli.common import new_table
from runhistory.cli.format import format_value, status_text
from runhistory.run import Run
from runhistory.store.base import MAX_STATS_RUNS, MetricStats
from runhistory.train.hyperdrive.runconfig import (
    BEST_CHILD_RUN_ID as BEST_CHILD_PROPERTY,
    HYPERPARAMETERS as HYPERPARAMETERS_PROPERTY,
    PRIMARY_METRIC_CONFIG as PRIMARY_METRIC_CONFIG_PROPERTY,
    PRIMARY_METRIC_NAME as PRIMARY_METRIC_PROPERTY,
    PRUNED as PRUNED_MARK,
    RUN_TYPE as SWEEP_RUN_TYPE,
    RUN_TYPE_KEY,
)

PRUNED = "Pruned"


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep as ``runs show`` lists it."""

    run_id: str
    number: int
    status: str
    hyperparameters: dict[str, Any]
    primary_metric: Any

    def data(self) -> dict[str, Any]:
        """The trial as a plain record for JSON and CSV."""
        return {
            "run_id": self.run_id,
            "number": self.number,
            "status": self.status,
            "hyperparameters": self.hyperparameters,
            "primary_metric": self.primary_metric,
        }


@dataclass(frozen=True)
class SweepTrials:
    """A sweep's primary metric, its best trial and its trials."""

    primary_metric_name: str | None
    best_run_id: str | None
    trials: list[Trial]

    def data(self) -> dict[str, Any]:
        """The sweep part of ``runs show -o json``."""
        return {
            "primary_metric_name": self.primary_metric_name,
            "best_child_run_id": self.best_run_id,
            "trials": [trial.data() for trial in self.trials],
        }


def primary_metric_name(properties: dict[str, str]) -> str | None:
    """The sweep's primary metric, from its properties (None when they do not name one)."""
    if properties.get(PRIMARY_METRIC_PROPERTY):
        return properties[PRIMARY_METRIC_PROPERTY]
    try:
        config = json.loads(properties.get(PRIMARY_METRIC_CONFIG_PROPERTY) or "null")
    except ValueError:
        return None
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else None


def hyperparameters_of(properties: dict[str, str]) -> dict[str, Any] | None:
    """A trial's parameters (its ``hyperparameters`` property), or None for a run that is no trial."""
    try:
        values = json.loads(properties.get(HYPERPARAMETERS_PROPERTY) or "null")
    except ValueError:
        return None
    return values if isinstance(values, dict) else None


def is_pruned(tags: dict[str, Any], properties: dict[str, str]) -> bool:
    """Whether the sweep's policy stopped this trial early."""
    mark = properties.get(PRUNED_MARK, tags.get(PRUNED_MARK))
    return mark is not None and str(mark).lower() not in ("", "0", "false")


def is_sweep(run: Run, properties: dict[str, str]) -> bool:
    """Whether ``run`` is a HyperDrive sweep: its type, its type tag, or a primary metric named."""
    marked = SWEEP_RUN_TYPE in (run.record.run_type, properties.get(RUN_TYPE_KEY), run.get_tags().get(RUN_TYPE_KEY))
    return marked or primary_metric_name(properties) is not None


def sweep_trials(run: Run, children: list[Run]) -> SweepTrials | None:
    """The sweep's trials (children with hyperparameters), oldest first; None when ``run`` is no sweep."""
    properties = run.get_properties()
    if not is_sweep(run, properties):
        return None
    metric = primary_metric_name(properties)
    found = [(child, child.get_properties()) for child in children]
    trial_runs = [(child, props) for child, props in found if hyperparameters_of(props) is not None]
    stats = _metric_stats(run, [child.id for child, _ in trial_runs])
    trials = [_trial(child, props, stats.get(child.id, {}).get(metric or "")) for child, props in trial_runs]
    trials.sort(key=lambda trial: trial.number)
    return SweepTrials(metric, properties.get(BEST_CHILD_PROPERTY) or None, trials)


def _metric_stats(run: Run, run_ids: list[str]) -> dict[str, dict[str, MetricStats]]:
    """The last values of the trials' series, read a page of runs at a time."""
    store = run.workspace.store
    stats: dict[str, dict[str, MetricStats]] = {}
    for start in range(0, len(run_ids), MAX_STATS_RUNS):
        stats.update(store.get_metric_stats(run_ids[start : start + MAX_STATS_RUNS]))
    return stats


def _trial(child: Run, properties: dict[str, str], stats: MetricStats | None) -> Trial:
    record = child.record
    status = PRUNED if is_pruned(child.get_tags(), properties) else record.status
    params = hyperparameters_of(properties) or {}
    return Trial(child.id, record.number, status, params, None if stats is None else stats.last)


def trials_table(sweep: SweepTrials) -> RenderableType | None:
    """The trials as a table: number, status, one column per parameter, the primary metric; the
    best trial marked. None when the sweep has no trials yet."""
    if not sweep.trials:
        return None
    names = list(dict.fromkeys(name for trial in sweep.trials for name in trial.hyperparameters))
    table: Table = new_table()
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", overflow="fold")
    table.add_column(sweep.primary_metric_name or "primary metric", justify="right", no_wrap=True)
    for trial in sweep.trials:
        best = trial.run_id == sweep.best_run_id
        number = Text(f"{'*' if best else ''}{trial.number}", style="bold" if best else "")
        status = Text(PRUNED, style="magenta") if trial.status == PRUNED else status_text(trial.status)
        cells = [format_value(trial.hyperparameters[name]) if name in trial.hyperparameters else "" for name in names]
        metric = "" if trial.primary_metric is None else format_value(trial.primary_metric)
        table.add_row(number, status, *cells, metric)
    if sweep.best_run_id is None:
        return table
    return Group(table, Text(f"* the best trial ({sweep.best_run_id})", style="dim"))
