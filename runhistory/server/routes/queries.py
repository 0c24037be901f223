"""What a runs table reads besides the runs: their series' stats, the keys to pick columns from,
and the experiments at a glance."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Response

from runhistory.protocol.routes import API_PREFIX
from runhistory.server.dependencies import Store, json_response
from runhistory.server.models import Count, MetricStatsIn
from runhistory.store.base import ExperimentSummary, RunKeys

router = APIRouter(prefix=API_PREFIX, tags=["queries"])


@router.post("/runs/metric-stats")
def get_metric_stats(body: MetricStatsIn, store: Store) -> Response:
    """``{run_id: {name: {kind, count, last, min, max}}}`` of these runs' series."""
    found = store.get_metric_stats(body.run_ids)
    return json_response(
        {run_id: {name: dataclasses.asdict(stats) for name, stats in series.items()} for run_id, series in found.items()}
    )


@router.get("/experiments/{experiment_id}/run-keys", response_model=RunKeys)
def run_keys(experiment_id: Count, store: Store) -> Response:
    """The metric, tag and property names of the experiment's runs, sorted."""
    return json_response(store.run_keys(experiment_id))


@router.get("/experiment-summaries", response_model=list[ExperimentSummary])
def experiment_summaries(store: Store) -> Response:
    """Every experiment with its runs, running runs and last activity, by name."""
    return json_response([dataclasses.asdict(summary) for summary in store.experiment_summaries()])
