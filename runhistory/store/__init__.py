"""Run-history stores: one interface (:mod:`.base`), one implementation per backend."""

from runhistory.store.base import (
    ComputeTargetRecord,
    ExperimentRecord,
    MetricBatch,
    MetricKind,
    MetricSeries,
    MetricSource,
    MetricSummary,
    RunRecord,
    RunStore,
    RunStatus,
)

__all__ = [
    "ComputeTargetRecord",
    "ExperimentRecord",
    "MetricBatch",
    "MetricKind",
    "MetricSeries",
    "MetricSource",
    "MetricSummary",
    "RunRecord",
    "RunStatus",
    "RunStore",
]
