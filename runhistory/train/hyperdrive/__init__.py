"""azureml's HyperDrive on Optuna: sweep a training script's hyperparameters as child job runs.

::

    from runhistory.train.hyperdrive import (
        HyperDriveConfig, PrimaryMetricGoal, RandomParameterSampling, BanditPolicy, choice, loguniform,
    )

    sampling = RandomParameterSampling({"learning_rate": loguniform(-6, -1), "hidden": choice(32, 64)})
    config = HyperDriveConfig(run_config=src, hyperparameter_sampling=sampling,
                              primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                              max_total_runs=12, max_concurrent_runs=2, policy=BanditPolicy(slack_factor=0.1))
    sweep = exp.submit(config)

The space, samplings and policies need nothing beyond runhistory; sampling, pruning and sweeping
need Optuna (``pip install 'runhistory[hyperdrive]'``), imported when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from runhistory.train.hyperdrive.parameter_expressions import (
    Distribution,
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from runhistory.train.hyperdrive.policy import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from runhistory.train.hyperdrive.sampling import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
)

# the sweep itself, imported on first use: it loads the jobs machinery
_LAZY = {
    "HyperDriveConfig": "runhistory.train.hyperdrive.runconfig",
    "PrimaryMetricGoal": "runhistory.train.hyperdrive.runconfig",
    "HyperDriveRun": "runhistory.train.hyperdrive.run",
}


def __getattr__(name: str) -> Any:
    """The sweep's own names (HyperDriveConfig, PrimaryMetricGoal, HyperDriveRun), imported on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BanditPolicy",
    "BayesianParameterSampling",
    "Distribution",
    "EarlyTerminationPolicy",
    "GridParameterSampling",
    "HyperDriveConfig",
    "HyperDriveRun",
    "HyperParameterSampling",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "PrimaryMetricGoal",
    "RandomParameterSampling",
    "TruncationSelectionPolicy",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]
