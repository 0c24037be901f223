"""azureml's parameter expressions: the distributions a sweep samples its hyperparameters from.

Each function returns a frozen :class:`Distribution`, with azureml's semantics::

    choice(0.1, 0.2) / choice([16, 32]) / choice(range(1, 5))   one of the options
    randint(upper)                        an int in [0, upper)
    uniform(min_value, max_value)         a float in [min_value, max_value]
    quniform(min_value, max_value, q)     round(uniform(min_value, max_value) / q) * q
    loguniform(min_value, max_value)      exp(uniform(min_value, max_value)): bounds in log space
    qloguniform(min_value, max_value, q)  round(exp(uniform(min_value, max_value)) / q) * q
    normal(mu, sigma)                     a normal value
    qnormal(mu, sigma, q)                 round(normal(mu, sigma) / q) * q
    lognormal(mu, sigma)                  exp(normal(mu, sigma))
    qlognormal(mu, sigma, q)              round(exp(normal(mu, sigma)) / q) * q

:meth:`Distribution.suggest` asks an Optuna trial for the value. Optuna has no normal
distribution, so a normal one is drawn as a quantile ``u`` in (0, 1) (Optuna parameter
``NAME__u``) mapped through the normal's inverse CDF: a sampler such as TPE then models the
quantile. A quantized value is drawn unquantized (``NAME__raw``) and rounded. Whatever Optuna
stores, :meth:`Distribution.value_of` reads the parameter's value back from a trial (the user
attribute ``param:NAME`` when Optuna's own parameter is not the value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from runhistory.core.errors import JobConfigError
from runhistory.core.extras import require

if TYPE_CHECKING:
    import optuna

# the real value of every parameter, whatever Optuna's own parameter holds
VALUE_ATTR_PREFIX = "param:"
QUANTILE_SUFFIX = "__u"
RAW_SUFFIX = "__raw"
# a quantile of exactly 0 or 1 is an infinite normal value
_QUANTILE_EDGE = 1e-9
_CHOICE_TYPES = (str, int, float, bool, type(None))
# the kinds whose Optuna parameter NAME is the value
_DRAWN_AS_IS = frozenset({"choice", "randint", "uniform", "loguniform"})


def require_optuna() -> ModuleType:
    """The ``optuna`` module, or the one sentence naming ``pip install 'runhistory[hyperdrive]'``."""
    return require("optuna", extra="hyperdrive", feature="a HyperDrive sweep")


@dataclass(frozen=True)
class Distribution:
    """One hyperparameter's distribution: ``kind`` names the expression, ``args`` its arguments."""

    kind: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(repr(arg) for arg in self.args)})"

    def to_json(self) -> dict:
        """``{"kind": ..., "args": [...]}``, as :meth:`from_json` reads it."""
        return {"kind": self.kind, "args": list(self.args)}

    @classmethod
    def from_json(cls, data: dict) -> Distribution:
        """The distribution :meth:`to_json` wrote, checked as the expression checks its arguments."""
        if not isinstance(data, dict) or data.get("kind") not in EXPRESSIONS:
            raise JobConfigError(
                f"a parameter distribution must be {{'kind': one of {sorted(EXPRESSIONS)}, 'args': [...]}}, got {data!r}."
            )
        args = data.get("args", [])
        if not isinstance(args, (list, tuple)):
            raise JobConfigError(f"the args of a {data['kind']} distribution must be a list, got {args!r}.")
        return EXPRESSIONS[data["kind"]](*args)

    def options(self) -> list:
        """The options of a ``choice`` (what a grid visits)."""
        if self.kind != "choice":
            raise JobConfigError(f"{self} has no finite list of options; only choice has.")
        return list(self.args)

    @property
    def stored_as_drawn(self) -> bool:
        """Whether Optuna's parameter ``NAME`` holds the value itself (not a quantile or unrounded)."""
        return self.kind in _DRAWN_AS_IS

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """Ask ``trial`` for parameter ``name``'s value.

        A value that Optuna does not hold as parameter ``name`` (a normal's, a rounded one) is kept
        as the user attribute ``param:NAME``; the others are not, since each attribute is one more
        write to the study's database per trial.
        """
        value = _SUGGESTERS[self.kind](trial, name, *self.args)
        if not self.stored_as_drawn:
            trial.set_user_attr(VALUE_ATTR_PREFIX + name, value)
        return value

    def value_of(self, trial: optuna.trial.FrozenTrial, name: str) -> Any:
        """The value :meth:`suggest` gave parameter ``name`` of a trial, read back from the study."""
        if self.stored_as_drawn:
            return trial.params[name]
        return trial.user_attrs[VALUE_ATTR_PREFIX + name]


# --- the expressions (azureml's names and argument names) -----------------------------------


def choice(*options: Any) -> Distribution:
    """One of ``options``: ``choice(1, 2, 3)``, ``choice([1, 2, 3])`` or ``choice(range(1, 4))``."""
    if len(options) == 1 and isinstance(options[0], (list, tuple, range)):
        options = tuple(options[0])
    if not options:
        raise JobConfigError("choice needs at least one option, got none.")
    for option in options:
        if not isinstance(option, _CHOICE_TYPES) or _not_finite(option):
            raise JobConfigError(
                f"choice's options must be strings, numbers, booleans or None, got {option!r}."
            )
    return Distribution("choice", tuple(options))


def randint(upper: int) -> Distribution:
    """An int in ``[0, upper)``."""
    if isinstance(upper, bool) or not isinstance(upper, int):
        raise JobConfigError(f"randint's upper must be an int, got {upper!r}.")
    if upper < 1:
        raise JobConfigError(f"randint's upper must be at least 1, got {upper}.")
    return Distribution("randint", (upper,))


def uniform(min_value: float, max_value: float) -> Distribution:
    """A float uniformly in ``[min_value, max_value]``."""
    return Distribution("uniform", _bounds("uniform", min_value, max_value))


def quniform(min_value: float, max_value: float, q: float) -> Distribution:
    """``round(uniform(min_value, max_value) / q) * q``."""
    return Distribution("quniform", (*_bounds("quniform", min_value, max_value), _step("quniform", q)))


def loguniform(min_value: float, max_value: float) -> Distribution:
    """``exp(uniform(min_value, max_value))``: the bounds are logarithms, as in azureml."""
    return Distribution("loguniform", _log_bounds("loguniform", min_value, max_value))


def qloguniform(min_value: float, max_value: float, q: float) -> Distribution:
    """``round(exp(uniform(min_value, max_value)) / q) * q``."""
    bounds = _log_bounds("qloguniform", min_value, max_value)
    return Distribution("qloguniform", (*bounds, _step("qloguniform", q)))


def normal(mu: float, sigma: float) -> Distribution:
    """A value of the normal distribution of mean ``mu`` and standard deviation ``sigma``."""
    return Distribution("normal", _normal_args("normal", mu, sigma))


def qnormal(mu: float, sigma: float, q: float) -> Distribution:
    """``round(normal(mu, sigma) / q) * q``."""
    return Distribution("qnormal", (*_normal_args("qnormal", mu, sigma), _step("qnormal", q)))


def lognormal(mu: float, sigma: float) -> Distribution:
    """``exp(normal(mu, sigma))``."""
    return Distribution("lognormal", _lognormal_args("lognormal", mu, sigma))


def qlognormal(mu: float, sigma: float, q: float) -> Distribution:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    return Distribution("qlognormal", (*_lognormal_args("qlognormal", mu, sigma), _step("qlognormal", q)))


EXPRESSIONS: dict[str, Callable[..., Distribution]] = {
    function.__name__: function
    for function in (choice, randint, uniform, quniform, loguniform, qloguniform,
                     normal, qnormal, lognormal, qlognormal)
}


# --- argument checks -------------------------------------------------------------------------


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _number(function: str, argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or _not_finite(value):
        raise JobConfigError(f"{function}'s {argument} must be a finite number, got {value!r}.")
    return value


def _bounds(function: str, min_value: Any, max_value: Any) -> tuple[float, float]:
    low = _number(function, "min_value", min_value)
    high = _number(function, "max_value", max_value)
    if low >= high:
        raise JobConfigError(
            f"{function}'s min_value must be less than its max_value, got {min_value!r} and {max_value!r}."
        )
    return low, high


def _log_bounds(function: str, min_value: Any, max_value: Any) -> tuple[float, float]:
    low, high = _bounds(function, min_value, max_value)
    # the bounds are logarithms: exp of either must be a positive finite float
    if not -700 <= low or not high <= 700:
        raise JobConfigError(
            f"{function}'s bounds are natural logarithms and must lie in [-700, 700], "
            f"got {min_value!r} and {max_value!r}."
        )
    return low, high


def _step(function: str, q: Any) -> float:
    if _number(function, "q", q) <= 0:
        raise JobConfigError(f"{function}'s q must be greater than 0, got {q!r}.")
    return q


def _normal_args(function: str, mu: Any, sigma: Any) -> tuple[float, float]:
    _number(function, "mu", mu)
    if _number(function, "sigma", sigma) <= 0:
        raise JobConfigError(f"{function}'s sigma must be greater than 0, got {sigma!r}.")
    return mu, sigma


def _lognormal_args(function: str, mu: Any, sigma: Any) -> tuple[float, float]:
    _normal_args(function, mu, sigma)
    # the widest quantile drawn is about 6 sigmas out: its exp must stay a finite float
    if abs(mu) + 6.5 * sigma > 700:
        raise JobConfigError(
            f"{function}'s mu and sigma are those of the value's logarithm and give values beyond "
            f"a float (|mu| + 6.5 sigma must be at most 700), got {mu!r} and {sigma!r}."
        )
    return mu, sigma


# --- suggesting through an Optuna trial ------------------------------------------------------


def _quantize(value: float, q: float) -> float:
    """``round(value / q) * q``, rounded to ``q``'s decimals so that 0.1 * 3 reads 0.3."""
    decimals = max(0, -Decimal(repr(float(q))).as_tuple().exponent)
    return round(round(value / q) * q, decimals)


def _normal_value(trial: optuna.Trial, name: str, mu: float, sigma: float) -> float:
    quantile = trial.suggest_float(name + QUANTILE_SUFFIX, _QUANTILE_EDGE, 1 - _QUANTILE_EDGE)
    return NormalDist(mu, sigma).inv_cdf(quantile)


def _suggest_choice(trial: optuna.Trial, name: str, *options: Any) -> Any:
    return trial.suggest_categorical(name, list(options))


def _suggest_randint(trial: optuna.Trial, name: str, upper: int) -> int:
    return trial.suggest_int(name, 0, upper - 1)


def _suggest_uniform(trial: optuna.Trial, name: str, low: float, high: float) -> float:
    return trial.suggest_float(name, low, high)


def _suggest_quniform(trial: optuna.Trial, name: str, low: float, high: float, q: float) -> float:
    return _quantize(trial.suggest_float(name + RAW_SUFFIX, low, high), q)


def _suggest_loguniform(trial: optuna.Trial, name: str, low: float, high: float) -> float:
    # exp(uniform(low, high)) is exactly Optuna's log-uniform over [e^low, e^high]
    return trial.suggest_float(name, math.exp(low), math.exp(high), log=True)


def _suggest_qloguniform(trial: optuna.Trial, name: str, low: float, high: float, q: float) -> float:
    raw = trial.suggest_float(name + RAW_SUFFIX, math.exp(low), math.exp(high), log=True)
    return _quantize(raw, q)


def _suggest_normal(trial: optuna.Trial, name: str, mu: float, sigma: float) -> float:
    return _normal_value(trial, name, mu, sigma)


def _suggest_qnormal(trial: optuna.Trial, name: str, mu: float, sigma: float, q: float) -> float:
    return _quantize(_normal_value(trial, name, mu, sigma), q)


def _suggest_lognormal(trial: optuna.Trial, name: str, mu: float, sigma: float) -> float:
    return math.exp(_normal_value(trial, name, mu, sigma))


def _suggest_qlognormal(trial: optuna.Trial, name: str, mu: float, sigma: float, q: float) -> float:
    return _quantize(math.exp(_normal_value(trial, name, mu, sigma)), q)


_SUGGESTERS: dict[str, Callable[..., Any]] = {
    "choice": _suggest_choice,
    "randint": _suggest_randint,
    "uniform": _suggest_uniform,
    "quniform": _suggest_quniform,
    "loguniform": _suggest_loguniform,
    "qloguniform": _suggest_qloguniform,
    "normal": _suggest_normal,
    "qnormal": _suggest_qnormal,
    "lognormal": _suggest_lognormal,
    "qlognormal": _suggest_qlognormal,
}

__all__ = ["Distribution", "require_optuna", *EXPRESSIONS]
