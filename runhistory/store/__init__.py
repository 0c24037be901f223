"""Run-history stores: one interface (:mod:`.base`), one implementation per backend."""

from runhistory.store.base import (
    ExperimentRecord,
    MetricBatch,
    MetricSeries,
    MetricSummary,
    RunRecord,
    RunStore,
    RunStatus,
)

__all__ = [
    "ExperimentRecord",
    "MetricBatch",
    "MetricSeries",
    "MetricSummary",
    "RunRecord",
    "RunStatus",
    "RunStore",
]
