"""Comparing runs: their curves per metric, a parallel-coordinates plot of properties against
metrics' last values, and the keys whose values differ between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from runhistory.core import errors
from runhistory.store.base import RunRecord, RunStore
from runhistory.ui import charts
from runhistory.ui.columns import attribute_of
from runhistory.ui.rendering import format_duration, format_time, format_value

MAX_COMPARED = 100
_COMPARED_ATTRIBUTES = ("status", "display_name", "run_type", "target", "duration", "created_time")


@dataclass(frozen=True)
class Comparison:
    """What the compare page shows: the runs, their chartable metrics, the parallel-coordinates
    data and the differing keys (``(key, [cell text per run])``)."""

    runs: list[RunRecord]
    labels: list[str]
    metrics: list[str]
    parallel: dict[str, Any]
    differences: list[tuple[str, list[str]]]


def label_of(run: RunRecord) -> str:
    """How a run is named in legends: its display name, else experiment and number."""
    return run.display_name or f"{run.experiment_name} #{run.number}"


def existing_runs(store: RunStore, run_ids: Sequence[str]) -> list[RunRecord]:
    """The runs of these ids; NotFoundError naming the first that does not exist."""
    found = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is None:
            raise errors.NotFoundError(f"No run with id {run_id[:100]!r} to compare.")
        found.append(run)
    return found


def compare(store: RunStore, run_ids: Sequence[str]) -> Comparison:
    """The comparison of these runs (their metrics' statistics read in one query)."""
    runs = existing_runs(store, run_ids)
    stats = store.get_metric_stats([run.id for run in runs])
    properties = store.get_properties_of_runs([run.id for run in runs])
    tags = store.get_tags_of_runs([run.id for run in runs])
    metric_names = sorted({name for found in stats.values() for name, one in found.items() if charts.is_chartable(one.kind, one.last)})
    property_names = sorted({name for found in properties.values() for name in found})
    rows: dict[str, list[Any]] = {}
    for name in _COMPARED_ATTRIBUTES:
        rows[f"attributes.{name}"] = [_attribute_text(run, name) for run in runs]
    for name in property_names:
        rows[f"properties.{name}"] = [properties[run.id].get(name) for run in runs]
    for name in sorted({name for found in tags.values() for name in found}):
        rows[f"tags.{name}"] = [tags[run.id].get(name) for run in runs]
    for name in sorted({name for found in stats.values() for name in found}):
        rows[f"metrics.{name}.last"] = [getattr(stats.get(run.id, {}).get(name), "last", None) for run in runs]
    differences = [(key, [format_value(value) for value in values]) for key, values in rows.items() if len(set(map(repr, values))) > 1]
    parallel = _parallel(runs, property_names, metric_names, properties, stats)
    return Comparison(runs, [label_of(run) for run in runs], metric_names, parallel, differences)


def _attribute_text(run: RunRecord, name: str) -> str:
    value = attribute_of(run, name)
    if name == "duration":
        return format_duration(value)
    if name == "created_time":
        return format_time(value)
    return format_value(value)


def _parallel(runs: list[RunRecord], property_names: list[str], metric_names: list[str], properties: dict, stats: dict) -> dict[str, Any]:
    """Axes (properties, then each metric's last; a text axis is categorical) and one line per run."""
    columns: list[tuple[str, list[Any]]] = []
    for name in property_names:
        values = [properties[run.id].get(name) for run in runs]
        if all(value is None or value.startswith("{") for value in values):
            continue  # a JSON object (a sweep trial's hyperparameters): its parameters are properties too
        columns.append((name, [_number_or_text(value) for value in values]))
    for name in metric_names:
        columns.append((name, [getattr(stats.get(run.id, {}).get(name), "last", None) for run in runs]))
    axes = []
    for index, (name, values) in enumerate(columns):
        if all(value is None or isinstance(value, (int, float)) for value in values):
            axes.append({"dim": index, "name": name, "type": "value"})
        else:
            categories = sorted({str(value) for value in values if value is not None})
            axes.append({"dim": index, "name": name, "type": "category", "data": categories})
            columns[index] = (name, [None if value is None else str(value) for value in values])
    lines = [{"name": label_of(run), "value": [values[row] for _name, values in columns]} for row, run in enumerate(runs)]
    return {"axes": axes, "lines": lines}


def _number_or_text(value: Any) -> Any:
    """A property (always text) as a number when it reads as one, for a numeric axis."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def compare_series(
    store: RunStore, run_ids: Sequence[str], points: int, x: str, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Every numeric series of these runs (those called ``names`` when given), downsampled:
    ``{"runs": [...], "metrics": {name: [one per run]}}``."""
    runs = existing_runs(store, run_ids)
    points, x = charts.checked_points(points), charts.checked_x(x)
    found = store.get_metrics_of_runs([run.id for run in runs], names=names, numeric_arrays=True)
    metrics: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for name, series in sorted(found.get(run.id, {}).items()):
            if len(series.values) == 0 or not charts.is_chartable(series.kind, series.values[-1]):
                continue
            metrics.setdefault(name, []).append({"run_id": run.id, "label": label_of(run), **charts.series_json(series, points, x)})
    return {"runs": [{"id": run.id, "label": label_of(run)} for run in runs], "metrics": metrics}
