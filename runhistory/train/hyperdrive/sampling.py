"""azureml's parameter samplings: a parameter space and how a sweep samples it, on Optuna's samplers.

A space maps parameter names to :mod:`~runhistory.train.hyperdrive.parameter_expressions`
distributions; each name reaches a trial as the script argument ``--NAME VALUE`` (a name given as
``--NAME``, as in some of azureml's notebooks, is the same argument)::

    RandomParameterSampling({"learning_rate": loguniform(-6, -1), "hidden": choice(32, 64)})
"""

from __future__ import annotations

import abc
import functools
import math
import re
from typing import TYPE_CHECKING, Any, ClassVar

from runhistory.core.errors import JobConfigError
from runhistory.train.hyperdrive.parameter_expressions import (
    QUANTILE_SUFFIX,
    RAW_SUFFIX,
    Distribution,
    require_optuna,
)

if TYPE_CHECKING:
    import optuna

_NAME = re.compile(r"^(--)?[A-Za-z_][A-Za-z0-9_-]*$")


class HyperParameterSampling(abc.ABC):
    """A parameter space and the Optuna sampler a sweep draws it with (the base of the three)."""

    kind: ClassVar[str] = ""
    # the distributions this sampling accepts (None: all)
    supported: ClassVar[frozenset[str] | None] = None
    properties_allowed: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, parameter_space: dict[str, Distribution], properties: dict | None = None) -> None:
        self.parameter_space = dict(parameter_space) if isinstance(parameter_space, dict) else parameter_space
        self.properties = dict(properties or {})
        self.check()

    def __repr__(self) -> str:
        space = ", ".join(f"{name!r}: {dist}" for name, dist in self.parameter_space.items())
        return f"{type(self).__name__}({{{space}}})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_json() == self.to_json()

    def check(self) -> None:
        """Refuse, in one sentence, a space this sampling cannot draw."""
        name = type(self).__name__
        if not isinstance(self.parameter_space, dict):
            raise JobConfigError(f"{name}'s parameter_space must be a dict of name -> distribution.")
        if not self.parameter_space:
            raise JobConfigError(f"{name}'s parameter_space is empty: give at least one parameter.")
        arguments: dict[str, str] = {}
        for parameter, distribution in self.parameter_space.items():
            self._check_parameter(parameter, distribution)
            argument = argument_name(parameter)
            if argument in arguments:
                raise JobConfigError(
                    f"{name}'s parameters {arguments[argument]!r} and {parameter!r} are the same argument {argument}."
                )
            arguments[argument] = parameter
        self._check_properties()

    def _check_parameter(self, parameter: Any, distribution: Any) -> None:
        name = type(self).__name__
        if not isinstance(parameter, str) or not _NAME.match(parameter) or parameter.endswith(
            (QUANTILE_SUFFIX, RAW_SUFFIX)
        ):
            raise JobConfigError(
                f"{name}'s parameter name {parameter!r} must be an identifier (letters, digits, _ and -, "
                f"optionally after --, not ending in {QUANTILE_SUFFIX} or {RAW_SUFFIX}): it becomes a script argument."
            )
        if not isinstance(distribution, Distribution):
            raise JobConfigError(
                f"{name}'s parameter {parameter!r} must be a distribution such as choice(...) or "
                f"uniform(...), got {distribution!r}."
            )
        if self.supported is not None and distribution.kind not in self.supported:
            raise JobConfigError(
                f"{name} supports only {', '.join(sorted(self.supported))}; parameter {parameter!r} is {distribution}."
            )

    def _check_properties(self) -> None:
        name = type(self).__name__
        unknown = sorted(set(self.properties) - self.properties_allowed)
        if unknown:
            allowed = ", ".join(sorted(self.properties_allowed)) or "none"
            raise JobConfigError(f"{name} does not know the properties {unknown} (it knows: {allowed}).")
        for key in sorted(self.properties_allowed & set(self.properties)):
            value = self.properties[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise JobConfigError(f"{name}'s property {key!r} must be a non-negative int, got {value!r}.")

    def seed(self, seed: int | None = None) -> int | None:
        """``seed`` if given, else the ``seed`` of the properties, else None (a fresh one)."""
        return seed if seed is not None else self.properties.get("seed")

    @abc.abstractmethod
    def optuna_sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        """The Optuna sampler of this sampling (seeded: the same seed draws the same trials)."""

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Every parameter's value for ``trial`` (real values: a normal's, not its quantile)."""
        return {name: dist.suggest(trial, name) for name, dist in self.parameter_space.items()}

    def values_of(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """The values :meth:`suggest` gave a trial, read back from the study (e.g. a stored one)."""
        return {name: dist.value_of(trial, name) for name, dist in self.parameter_space.items()}

    def to_json(self) -> dict:
        """``{"sampling": kind, "parameter_space": {name: distribution}, "properties": {...}}``."""
        return {
            "sampling": self.kind,
            "parameter_space": {name: dist.to_json() for name, dist in self.parameter_space.items()},
            "properties": dict(self.properties),
        }

    @classmethod
    def from_json(cls, data: dict) -> HyperParameterSampling:
        """The sampling :meth:`to_json` wrote (of the class its ``sampling`` names)."""
        kinds = {sampling.kind: sampling for sampling in SAMPLINGS}
        if not isinstance(data, dict) or data.get("sampling") not in kinds:
            raise JobConfigError(f"a parameter sampling's 'sampling' must be one of {sorted(kinds)}, got {data!r}.")
        space = data.get("parameter_space")
        if not isinstance(space, dict):
            raise JobConfigError(f"a parameter sampling's 'parameter_space' must be a dict, got {space!r}.")
        parsed = {name: Distribution.from_json(dist) for name, dist in space.items()}
        return kinds[data["sampling"]](parsed, data.get("properties") or None)

    @staticmethod
    def arguments(values: dict[str, Any]) -> list[str]:
        """The script arguments of a trial's values: ``["--name", "value", ...]``."""
        return [item for name, value in values.items() for item in (argument_name(name), str(value))]


def argument_name(parameter: str) -> str:
    """The script argument of ``parameter``: ``--parameter`` (a name with its dashes is kept)."""
    return parameter if parameter.startswith("--") else "--" + parameter


class RandomParameterSampling(HyperParameterSampling):
    """Draws every parameter at random (Optuna's ``RandomSampler``); properties may hold a ``seed``."""

    kind = "random"
    properties_allowed = frozenset({"seed"})

    def optuna_sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        """A ``RandomSampler``."""
        return require_optuna().samplers.RandomSampler(seed=self.seed(seed))


class GridParameterSampling(HyperParameterSampling):
    """Visits every combination of the ``choice`` options once (Optuna's ``GridSampler``)."""

    kind = "grid"
    supported = frozenset({"choice"})
    properties_allowed = frozenset({"seed"})

    def _check_parameter(self, parameter: Any, distribution: Any) -> None:
        super()._check_parameter(parameter, distribution)
        options = distribution.options()
        if len(set(map(repr, options))) != len(options):
            raise JobConfigError(
                f"GridParameterSampling's parameter {parameter!r} repeats an option in {distribution}: "
                "a grid visits each point once."
            )

    def grid_size(self) -> int:
        """The number of points of the grid (a sweep runs at most that many trials)."""
        return math.prod(len(dist.options()) for dist in self.parameter_space.values())

    def optuna_sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        """A ``GridSampler`` over the options (a seed shuffles the order of the visits).

        Optuna's ``GridSampler`` ends an ``optimize`` loop by calling ``study.stop()`` when the last
        point is told, which raises outside ``optimize``; a sweep drives its study by ask and tell
        and stops at ``grid_size()`` trials itself, so the sampler here leaves that call out.
        """
        space = {name: dist.options() for name, dist in self.parameter_space.items()}
        return _ask_tell_grid_sampler()(space, seed=self.seed(seed))


@functools.cache
def _ask_tell_grid_sampler() -> type:
    grid_sampler = require_optuna().samplers.GridSampler

    class AskTellGridSampler(grid_sampler):
        """Optuna's ``GridSampler`` without its ``study.stop()`` after the last point."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            """Nothing: the sweep counts its trials."""

    return AskTellGridSampler


class BayesianParameterSampling(HyperParameterSampling):
    """Draws the next trial from what the finished ones scored, with Optuna's ``TPESampler``.

    TPE rather than ``GPSampler``: TPE models categorical and continuous parameters together,
    costs little per ``ask`` and needs nothing beyond Optuna, whereas ``GPSampler`` needs torch,
    is slow to import and to fit as trials accumulate. Optuna's TPE runs random trials first
    (``startup_trials`` of the properties, 10 by default) and, with trials in flight at once,
    lies about the running ones (constant liar) so that concurrent trials differ. As azureml's,
    it takes only ``choice``, ``uniform`` and ``quniform``, and no early termination policy.
    """

    kind = "bayesian"
    supported = frozenset({"choice", "uniform", "quniform"})
    properties_allowed = frozenset({"seed", "startup_trials"})

    def optuna_sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        """A ``TPESampler``."""
        startup = self.properties.get("startup_trials", 10)
        return require_optuna().samplers.TPESampler(
            seed=self.seed(seed), n_startup_trials=startup, constant_liar=True
        )


SAMPLINGS: tuple[type[HyperParameterSampling], ...] = (
    RandomParameterSampling,
    GridParameterSampling,
    BayesianParameterSampling,
)

__all__ = [
    "BayesianParameterSampling",
    "GridParameterSampling",
    "HyperParameterSampling",
    "RandomParameterSampling",
    "argument_name",
]
