"""A run's series as charts get them: numeric series downsampled on the server (:mod:`.downsample`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from runhistory.core import errors
from runhistory.store.base import MetricKind, MetricSeries, RunStore
from runhistory.ui.downsample import DEFAULT_POINTS, MAX_POINTS, MIN_POINTS, downsample, numeric_values

X_AXES = ("step", "time")


def is_chartable(kind: str, last: Any) -> bool:
    """Whether a series is drawn as a chart: a scalar series of numbers (text ones are shown as text)."""
    numeric = isinstance(last, (int, float, np.integer, np.floating)) and not isinstance(last, (bool, np.bool_))
    return kind == MetricKind.SCALAR and numeric


def checked_points(points: int) -> int:
    """The number of points asked for, checked (:data:`MIN_POINTS` to :data:`MAX_POINTS`)."""
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise errors.InvalidRequestError(f"points must be from {MIN_POINTS} to {MAX_POINTS}, not {points}.")
    return points


def checked_x(x: str) -> str:
    """The x axis asked for: ``step`` or ``time``."""
    if x not in X_AXES:
        raise errors.InvalidRequestError(f"x must be 'step' or 'time', not {x[:40]!r}.")
    return x


def series_json(series: MetricSeries, points: int = DEFAULT_POINTS, x: str = "step") -> dict[str, Any]:
    """``{"name", "kind", "count", "x", "y"}`` of one series, at most ``points`` of them; a text
    series gets its last values as ``text`` instead."""
    values = numeric_values(series.values)
    head = {"name": series.name, "kind": series.kind}
    if values is None:
        return {**head, "count": len(series.values), "x": [], "y": [], "text": [str(v) for v in series.values[-100:]]}
    xs = series.steps if x == "step" else series.times
    return {**head, **downsample(np.asarray(xs), values, points).as_json()}


def run_series(store: RunStore, run_id: str, name: str, points: int, x: str) -> dict[str, Any]:
    """One series of a run as :func:`series_json` gives it; NotFoundError when there is none."""
    if store.get_run(run_id) is None:
        raise errors.NotFoundError(f"No run with id {run_id[:100]!r}.")
    found = store.get_metrics_of_runs([run_id], names=[name], numeric_arrays=True).get(run_id, {}).get(name)
    if found is None:
        raise errors.NotFoundError(f"Run {run_id} has no metric {name[:100]!r}.")
    return series_json(found, checked_points(points), checked_x(x))
