"""``BanditPruner``: azureml's Bandit policy as an Optuna pruner (Optuna has no slack pruner).

Imports Optuna: load it through :func:`~runhistory.train.hyperdrive.policy.BanditPolicy.optuna_pruner`,
which says how to install it when it is missing.
"""

from __future__ import annotations

import math

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

# the trials whose values at a step a lagging trial is measured against (a failed trial's
# values may be anything, so it is left out)
_PEERS = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class BanditPruner(optuna.pruners.BasePruner):
    """Prune a trial whose value at an evaluation step lags the best trial's value at that step.

    Evaluation steps are ``delay_evaluation``, then every ``evaluation_interval`` steps (a trial
    that reported several steps since its last evaluation is judged at its latest one). The slack
    is ``slack_factor`` (maximize: prune below ``best / (1 + factor)``; minimize: above
    ``best * (1 + factor)``) or ``slack_amount`` (below ``best - amount`` / above ``best + amount``),
    the direction being the study's. The best is over the other trials, running ones included,
    that reported a value at the same step; with none, the trial goes on.
    """

    def __init__(
        self,
        *,
        slack_factor: float | None = None,
        slack_amount: float | None = None,
        evaluation_interval: int = 1,
        delay_evaluation: int = 0,
    ) -> None:
        if (slack_factor is None) == (slack_amount is None):
            raise ValueError("BanditPruner needs exactly one of slack_factor and slack_amount.")
        self.slack_factor = slack_factor
        self.slack_amount = slack_amount
        self.evaluation_interval = evaluation_interval
        self.delay_evaluation = delay_evaluation

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether ``trial`` lags the best trial by more than the slack at its latest step."""
        step = trial.last_step
        if step is None or not self._evaluates(step, trial.intermediate_values.keys()):
            return False
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        best = self._best_at(study, trial, step)
        if best is None:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        return value < self._threshold(best, maximize) if maximize else value > self._threshold(best, maximize)

    def _evaluates(self, step: int, steps: object) -> bool:
        """Whether ``step`` is the first step the trial reported in its evaluation interval."""
        if step < self.delay_evaluation:
            return False
        interval_start = step - (step - self.delay_evaluation) % self.evaluation_interval
        earlier = [other for other in steps if other != step]
        return not earlier or max(earlier) < interval_start

    def _best_at(self, study: optuna.Study, trial: FrozenTrial, step: int) -> float | None:
        values = [
            other.intermediate_values[step]
            for other in study.get_trials(deepcopy=False, states=_PEERS)
            if other.number != trial.number
            and step in other.intermediate_values
            and not math.isnan(other.intermediate_values[step])
        ]
        if not values:
            return None
        return max(values) if study.direction == StudyDirection.MAXIMIZE else min(values)

    def _threshold(self, best: float, maximize: bool) -> float:
        if self.slack_factor is not None:
            return best / (1 + self.slack_factor) if maximize else best * (1 + self.slack_factor)
        return best - self.slack_amount if maximize else best + self.slack_amount


__all__ = ["BanditPruner"]
