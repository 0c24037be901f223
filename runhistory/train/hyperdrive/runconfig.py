"""``HyperDriveConfig``: what a sweep runs, how it samples, stops early and ranks; submitting it.

A sweep is a job run itself: its controller (:mod:`runhistory.train.hyperdrive.controller`) runs
as the script of a generated source folder holding ``sweep.json`` (the whole config), so that its
supervisor heartbeats it, keeps its log, cancels it, and marks it Failed when it dies. It runs on
a target of its own, registered when missing (see :func:`controller_target`): a local target
(``hyperdrive-controller``) for trials on a local target; for trials on a Ray cluster, that
cluster's head node (``NAME-hyperdrive``: a Ray job of no CPU on the head), so that the sweep
goes on when the machine that submitted it goes away. The sweep run is
tagged and has the property ``runhistory.run_type=hyperdrive`` (the store's run type stays
``job``: the supervisor and the liveness checks know job runs by that type).
"""

from __future__ import annotations

import enum
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from runhistory.compute.base import ComputeTarget
from runhistory.compute.local import LocalCompute
from runhistory.compute.ray import RAY_KIND, RayCompute
from runhistory.core.errors import JobConfigError, NotFoundError
from runhistory.jobs.config import ScriptRunConfig
from runhistory.jobs.submit import resolve_target, submit_job

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.train.hyperdrive.run import HyperDriveRun

CONTROLLER_TARGET = "hyperdrive-controller"  # the local target sweep controllers run on
RAY_CONTROLLER_SUFFIX = "-hyperdrive"  # a Ray target's companion target its sweeps' controllers run on
RAY_HEAD_RESOURCE = "node:__internal_head__"  # Ray's resource of the head node (ray._common.constants)
SWEEP_FILE = "sweep.json"
CONTROLLER_SCRIPT = "hyperdrive_controller.py"
RUN_TYPE_KEY = "runhistory.run_type"
RUN_TYPE = "hyperdrive"
# properties of the sweep run (what HyperDriveRun ranks with, without the controller)
PRIMARY_METRIC_CONFIG = "primary_metric_config"  # azureml's: {"name": ..., "goal": "maximize"}
PRIMARY_METRIC_NAME = "hyperdrive.primary_metric"
PRIMARY_METRIC_GOAL = "hyperdrive.goal"
SPACE = "hyperdrive.space"
PARAMETERS = "hyperdrive.parameters"  # a JSON list of the parameter names
BEST_CHILD_RUN_ID = "best_child_run_id"
BEST_METRIC = "best_metric"
# properties and tags of a trial run
HYPERPARAMETERS = "hyperparameters"
OPTUNA_TRIAL = "optuna_trial"
TRIAL_TAG = "hyperdrive.trial"
PRUNED = "hyperdrive.pruned"

_CONTROLLER_SOURCE = '''"""The controller of a runhistory HyperDrive sweep (generated)."""

from runhistory.train.hyperdrive.controller import main

raise SystemExit(main())
'''


class PrimaryMetricGoal(str, enum.Enum):
    """Whether the primary metric is better larger (MAXIMIZE) or smaller (MINIMIZE)."""

    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"

    @classmethod
    def from_str(cls, goal: "str | PrimaryMetricGoal") -> "PrimaryMetricGoal":
        """The goal named ``goal`` (any case); JobConfigError for another word."""
        if isinstance(goal, PrimaryMetricGoal):
            return goal
        if isinstance(goal, str) and goal.upper() in cls.__members__:
            return cls[goal.upper()]
        raise JobConfigError(f"Unknown primary_metric_goal {goal!r}; use PrimaryMetricGoal.MAXIMIZE or MINIMIZE.")

    @property
    def optuna_direction(self) -> str:
        """``maximize`` or ``minimize``, as Optuna's studies take it."""
        return self.value.lower()


class HyperDriveConfig:
    """A sweep as azureml's HyperDrive defines it; ``experiment.submit(config)`` starts it.

    ``run_config`` (a ScriptRunConfig) or ``estimator`` (an Estimator): what each trial runs, its
    parameters appended as ``--name value`` arguments. ``hyperparameter_sampling``: a Random, Grid
    or Bayesian sampling of a parameter space. The trials are ranked by the last value of
    ``primary_metric_name`` with ``primary_metric_goal``. At most ``max_total_runs`` trials (a grid
    smaller than that caps it), ``max_concurrent_runs`` at once (None: as many as
    ``max_total_runs``), for ``max_duration_minutes``; ``policy`` stops lagging trials early.
    """

    def __init__(
        self,
        run_config: ScriptRunConfig | None = None,
        estimator: ScriptRunConfig | None = None,
        *,
        hyperparameter_sampling: Any,
        primary_metric_name: str,
        primary_metric_goal: "PrimaryMetricGoal | str",
        max_total_runs: int,
        max_concurrent_runs: int | None = None,
        max_duration_minutes: float = 10080,
        policy: Any = None,
    ) -> None:
        self.run_config = _trial_config(run_config, estimator)
        self.hyperparameter_sampling = _sampling(hyperparameter_sampling)
        self.primary_metric_name = _metric_name(primary_metric_name)
        self.primary_metric_goal = _goal(primary_metric_goal)
        self.policy = _policy(policy, self.hyperparameter_sampling)
        self.max_total_runs = _capped_total(_positive_int(max_total_runs, "max_total_runs"), self.hyperparameter_sampling)
        concurrent = None if max_concurrent_runs is None else _positive_int(max_concurrent_runs, "max_concurrent_runs")
        self.max_concurrent_runs = concurrent
        self.max_duration_minutes = _duration(max_duration_minutes)

    @property
    def parameter_names(self) -> list[str]:
        """The names of the swept parameters."""
        return list(self.hyperparameter_sampling.parameter_space)

    def to_json(self) -> dict[str, Any]:
        """The whole sweep as ``sweep.json`` holds it (what the controller reads)."""
        trial = self.run_config
        return {
            "trial": {
                "source_directory": str(trial.source_directory),
                "script": trial.script,
                "arguments": list(trial.arguments),
                "compute_target": trial.target_name,
                "environment": dict(trial.environment),
                "max_run_duration_seconds": trial.max_run_duration_seconds,
            },
            "sampling": {"class": type(self.hyperparameter_sampling).__name__, "json": self.hyperparameter_sampling.to_json()},
            "policy": None if self.policy is None else {"class": type(self.policy).__name__, "json": self.policy.to_json()},
            "primary_metric_name": self.primary_metric_name,
            "primary_metric_goal": self.primary_metric_goal.value,
            "max_total_runs": self.max_total_runs,
            "max_concurrent_runs": self.max_concurrent_runs or self.max_total_runs,
            "max_duration_minutes": self.max_duration_minutes,
        }

    def sweep_properties(self) -> dict[str, str]:
        """The properties of the sweep run: enough to rank its trials without the controller."""
        goal = self.primary_metric_goal.value
        return {
            RUN_TYPE_KEY: RUN_TYPE,
            PRIMARY_METRIC_CONFIG: json.dumps({"name": self.primary_metric_name, "goal": goal.lower()}),
            PRIMARY_METRIC_NAME: self.primary_metric_name,
            PRIMARY_METRIC_GOAL: goal,
            SPACE: json.dumps(self.hyperparameter_sampling.to_json()),
            PARAMETERS: json.dumps(self.parameter_names),
        }

    def submit_to(self, experiment: "Experiment", tags: Mapping[str, Any] | None = None) -> "HyperDriveRun":
        """Start the sweep as a job run of ``experiment`` (what ``experiment.submit(config)`` calls)."""
        from runhistory.train.hyperdrive.run import HyperDriveRun  # run.py imports this module's names

        self.run_config.validate()
        trial_target = resolve_target(experiment.workspace, self.run_config.compute_target)
        trial_target.check_can_run()
        controller = controller_target(experiment.workspace, trial_target)
        folder = Path(tempfile.mkdtemp(prefix="runhistory-sweep-"))
        try:
            (folder / SWEEP_FILE).write_text(json.dumps(self.to_json(), indent=2) + "\n")
            (folder / CONTROLLER_SCRIPT).write_text(_CONTROLLER_SOURCE)
            config = ScriptRunConfig(folder, CONTROLLER_SCRIPT, compute_target=controller.name)
            run = submit_job(experiment, config, {**(tags or {}), RUN_TYPE_KEY: RUN_TYPE}, properties=self.sweep_properties())
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the run's snapshot holds it now
        return HyperDriveRun.from_run(run)

    def __repr__(self) -> str:
        return (
            f"HyperDriveConfig(script={self.run_config.script!r}, sampling={type(self.hyperparameter_sampling).__name__}, "
            f"primary_metric_name={self.primary_metric_name!r}, goal={self.primary_metric_goal.value}, "
            f"max_total_runs={self.max_total_runs}, max_concurrent_runs={self.max_concurrent_runs})"
        )


def controller_target(workspace: Any, trial_target: ComputeTarget) -> ComputeTarget:
    """Where the controller of a sweep whose trials run on ``trial_target`` runs, registered when
    missing: for a Ray target, a companion target on the same cluster whose jobs take no CPU and
    run on the head node (so that the controller never holds a trial's room); else the local
    target ``hyperdrive-controller`` (no limit on jobs at once)."""
    if trial_target.record.kind != RAY_KIND:
        return _registered(workspace, CONTROLLER_TARGET, LocalCompute.provisioning_configuration())
    trials = trial_target.config
    config = RayCompute.provisioning_configuration(
        address=trials.get("address", "auto"), num_cpus=0, resources={RAY_HEAD_RESOURCE: 0.001},
        runtime_env=trials.get("runtime_env") or None,
    )
    return _registered(workspace, trial_target.name + RAY_CONTROLLER_SUFFIX, config)


def _registered(workspace: Any, name: str, config: Any) -> ComputeTarget:
    try:
        return ComputeTarget(workspace, name)
    except NotFoundError:
        return ComputeTarget.create(workspace, name, config)


def _trial_config(run_config: Any, estimator: Any) -> ScriptRunConfig:
    if (run_config is None) == (estimator is None):
        raise JobConfigError("HyperDriveConfig needs exactly one of run_config= (a ScriptRunConfig) or estimator=.")
    config = run_config if run_config is not None else estimator
    if not isinstance(config, ScriptRunConfig):
        which = "run_config" if run_config is not None else "estimator"
        raise JobConfigError(f"HyperDriveConfig's {which} must be a ScriptRunConfig or an Estimator, got {type(config).__name__}.")
    return config


def _sampling(sampling: Any) -> Any:
    for method in ("optuna_sampler", "suggest", "to_json", "check"):
        if not callable(getattr(sampling, method, None)):
            raise JobConfigError(
                f"hyperparameter_sampling must be a RandomParameterSampling, GridParameterSampling or "
                f"BayesianParameterSampling, got {type(sampling).__name__}."
            )
    sampling.check()
    return sampling


def _policy(policy: Any, sampling: Any) -> Any:
    if policy is None or getattr(policy, "terminates", True) is False:
        return None  # NoTerminationPolicy
    if not callable(getattr(policy, "optuna_pruner", None)) or not callable(getattr(policy, "to_json", None)):
        raise JobConfigError(
            f"policy must be a BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy or "
            f"NoTerminationPolicy, got {type(policy).__name__}."
        )
    if type(sampling).__name__ == "BayesianParameterSampling":
        raise JobConfigError(
            f"BayesianParameterSampling takes no early termination policy (got {type(policy).__name__}), "
            f"as in azureml: leave policy out or use NoTerminationPolicy."
        )
    return policy


def _metric_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise JobConfigError(f"primary_metric_name must be the name of a metric the trials log, got {name!r}.")
    return name


def _goal(goal: Any) -> PrimaryMetricGoal:
    return PrimaryMetricGoal.from_str(goal)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise JobConfigError(f"{name} must be an integer of at least 1, got {value!r}.")
    return value


def _capped_total(total: int, sampling: Any) -> int:
    grid_size = getattr(sampling, "grid_size", None)
    return min(total, grid_size()) if callable(grid_size) else total


def _duration(minutes: Any) -> float:
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise JobConfigError(f"max_duration_minutes must be a positive number of minutes, got {minutes!r}.")
    return float(minutes)
