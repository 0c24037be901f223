"""azureml's early termination policies, on Optuna's pruners.

A policy is evaluated at the steps of a trial's primary metric (step = the index of the logged
point): not before ``delay_evaluation``, then every ``evaluation_interval`` steps::

    BanditPolicy(slack_factor=0.1)          -> BanditPruner (runhistory.train.hyperdrive.pruners)
    MedianStoppingPolicy()                  -> optuna.pruners.MedianPruner
    TruncationSelectionPolicy(20)           -> optuna.pruners.PercentilePruner(80): keeps the top 80%
    NoTerminationPolicy()                   -> optuna.pruners.NopPruner

Optuna's pruners read the goal from the study's direction: the sweep's study is created with
``direction=study_direction(goal)``.
"""

from __future__ import annotations

import abc
import inspect
from typing import TYPE_CHECKING, Any, ClassVar

from runhistory.core.errors import JobConfigError
from runhistory.train.hyperdrive.parameter_expressions import require_optuna

if TYPE_CHECKING:
    import optuna

# Median and truncation compare with finished trials only (Optuna's pruners do): they start
# pruning once this many trials have completed; fewer is a single trial's curve.
STARTUP_TRIALS = 2


def study_direction(goal: Any) -> str:
    """``"maximize"`` or ``"minimize"`` of a goal (``PrimaryMetricGoal`` or its name)."""
    name = str(getattr(goal, "value", goal)).upper()
    if name not in {"MAXIMIZE", "MINIMIZE"}:
        raise JobConfigError(f"the primary metric goal must be MAXIMIZE or MINIMIZE, got {goal!r}.")
    return name.lower()


class EarlyTerminationPolicy(abc.ABC):
    """What stops a lagging trial early (the base of azureml's policies)."""

    kind: ClassVar[str] = ""

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        self.evaluation_interval = _count(self, "evaluation_interval", evaluation_interval, 1)
        self.delay_evaluation = _count(self, "delay_evaluation", delay_evaluation, 0)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.to_json().items() if key != "policy")
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_json() == self.to_json()

    @property
    def terminates(self) -> bool:
        """Whether the policy ever stops a trial (False for ``NoTerminationPolicy``)."""
        return True

    @abc.abstractmethod
    def optuna_pruner(self, goal: Any) -> optuna.pruners.BasePruner:
        """The Optuna pruner of this policy, for a study whose direction is ``goal``'s."""

    def to_json(self) -> dict:
        """``{"policy": kind, argument: value, ...}``, as :meth:`from_json` reads it."""
        return {
            "policy": self.kind,
            "evaluation_interval": self.evaluation_interval,
            "delay_evaluation": self.delay_evaluation,
        }

    @classmethod
    def from_json(cls, data: dict) -> EarlyTerminationPolicy:
        """The policy :meth:`to_json` wrote (of the class its ``policy`` names)."""
        kinds = {policy.kind: policy for policy in POLICIES}
        if not isinstance(data, dict) or data.get("policy") not in kinds:
            raise JobConfigError(f"an early termination policy's 'policy' must be one of {sorted(kinds)}, got {data!r}.")
        policy = kinds[data["policy"]]
        arguments = {key: value for key, value in data.items() if key != "policy"}
        parameters = inspect.signature(policy).parameters
        unknown = sorted(set(arguments) - set(parameters))
        if unknown:
            raise JobConfigError(f"{policy.__name__} does not take {unknown}.")
        missing = sorted(name for name, parameter in parameters.items()
                         if parameter.default is inspect.Parameter.empty and name not in arguments)
        if missing:
            raise JobConfigError(f"{policy.__name__} needs {missing}.")
        return policy(**arguments)


class BanditPolicy(EarlyTerminationPolicy):
    """Stops a trial that lags the best trial by more than a slack (exactly one of factor, amount)."""

    kind = "bandit"

    def __init__(
        self,
        evaluation_interval: int = 1,
        slack_factor: float | None = None,
        slack_amount: float | None = None,
        delay_evaluation: int = 0,
    ) -> None:
        super().__init__(evaluation_interval, delay_evaluation)
        if (slack_factor is None) == (slack_amount is None):
            raise JobConfigError(
                f"BanditPolicy needs exactly one of slack_factor and slack_amount, got {slack_factor!r} and {slack_amount!r}."
            )
        for argument, value in (("slack_factor", slack_factor), ("slack_amount", slack_amount)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
                raise JobConfigError(f"BanditPolicy's {argument} must be a number >= 0, got {value!r}.")
        self.slack_factor = slack_factor
        self.slack_amount = slack_amount

    def optuna_pruner(self, goal: Any) -> optuna.pruners.BasePruner:
        """A :class:`~runhistory.train.hyperdrive.pruners.BanditPruner`."""
        study_direction(goal)
        require_optuna()
        from runhistory.train.hyperdrive.pruners import BanditPruner

        return BanditPruner(
            slack_factor=self.slack_factor,
            slack_amount=self.slack_amount,
            evaluation_interval=self.evaluation_interval,
            delay_evaluation=self.delay_evaluation,
        )

    def to_json(self) -> dict:
        """The arguments, with the slack."""
        return {**super().to_json(), "slack_factor": self.slack_factor, "slack_amount": self.slack_amount}


class MedianStoppingPolicy(EarlyTerminationPolicy):
    """Stops a trial whose best value so far is worse than the median of finished trials' at that step."""

    kind = "median"

    def optuna_pruner(self, goal: Any) -> optuna.pruners.BasePruner:
        """A ``MedianPruner`` (pruning from the ``STARTUP_TRIALS``-th finished trial on)."""
        study_direction(goal)
        return require_optuna().pruners.MedianPruner(
            n_startup_trials=STARTUP_TRIALS,
            n_warmup_steps=self.delay_evaluation,
            interval_steps=self.evaluation_interval,
        )


class TruncationSelectionPolicy(EarlyTerminationPolicy):
    """Stops the trials in the worst ``truncation_percentage`` percent (1 to 99) at each evaluation."""

    kind = "truncation"

    def __init__(self, truncation_percentage: int, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        super().__init__(evaluation_interval, delay_evaluation)
        value = truncation_percentage
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 99:
            raise JobConfigError(
                f"TruncationSelectionPolicy's truncation_percentage must be a number from 1 to 99, got {value!r}."
            )
        self.truncation_percentage = truncation_percentage

    def optuna_pruner(self, goal: Any) -> optuna.pruners.BasePruner:
        """A ``PercentilePruner`` that keeps the top ``100 - truncation_percentage`` percent.

        Optuna's ``percentile`` is the share kept, measured from the best end in the study's
        direction, so the same value serves both goals.
        """
        study_direction(goal)
        return require_optuna().pruners.PercentilePruner(
            percentile=100 - self.truncation_percentage,
            n_startup_trials=STARTUP_TRIALS,
            n_warmup_steps=self.delay_evaluation,
            interval_steps=self.evaluation_interval,
        )

    def to_json(self) -> dict:
        """The arguments, with the percentage."""
        return {**super().to_json(), "truncation_percentage": self.truncation_percentage}


class NoTerminationPolicy(EarlyTerminationPolicy):
    """Lets every trial run to its end."""

    kind = "none"

    def __init__(self) -> None:
        super().__init__()

    @property
    def terminates(self) -> bool:
        """Never."""
        return False

    def optuna_pruner(self, goal: Any) -> optuna.pruners.BasePruner:
        """A ``NopPruner``."""
        study_direction(goal)
        return require_optuna().pruners.NopPruner()

    def to_json(self) -> dict:
        """``{"policy": "none"}``."""
        return {"policy": self.kind}


def _count(policy: EarlyTerminationPolicy, argument: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JobConfigError(f"{type(policy).__name__}'s {argument} must be an int >= {minimum}, got {value!r}.")
    return value


POLICIES: tuple[type[EarlyTerminationPolicy], ...] = (
    BanditPolicy,
    MedianStoppingPolicy,
    TruncationSelectionPolicy,
    NoTerminationPolicy,
)

__all__ = [
    "BanditPolicy",
    "EarlyTerminationPolicy",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "TruncationSelectionPolicy",
    "study_direction",
]
