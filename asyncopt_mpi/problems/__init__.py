"""The problems a run can optimise, by config name (problem.name): built-ins and plugins, one registry."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from ..errors import ConfigError
from ..registry import Registry
from .base import Problem

# Built-in problem name -> (module in this package, class). A module is imported, and its class registered,
# when its name is first used: a run on the quadratic imports no data readers and no scipy.sparse.
BUILT_IN_CLASSES = {
    "logistic": ("logistic", "LogisticProblem"),
    "matrix_sensing": ("matrix_sensing", "MatrixSensingProblem"),
    "nonconvex_logistic": ("nonconvex_logistic", "NonconvexLogisticProblem"),
    "pnn": ("pnn", "PolynomialNetworkProblem"),
    "quadratic": ("quadratic", "QuadraticProblem"),
}
_EXPORTED_CLASSES = {"LogisticProblem": "logistic", "QuadraticProblem": "quadratic"}  # importable from here


def _register_class(name: str, module: str) -> None:
    register_problem(name, getattr(importlib.import_module(module), BUILT_IN_CLASSES[name][1]))


# name -> a Problem subclass, or a FactoryProblem wrapping a factory; both offer
# `params`, `description` and `from_config(problem_config)`.
PROBLEMS = Registry("problem", __name__, {name: f"{__name__}.{module}" for name, (module, _) in BUILT_IN_CLASSES.items()},
                    _register_class)
ORIGINS = PROBLEMS.origins  # problem name -> "built-in", "plugin SPEC", "entry point ..." or the defining module


def __getattr__(name: str) -> Any:
    """LogisticProblem and QuadraticProblem, imported on first use."""
    if name in _EXPORTED_CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTED_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FactoryProblem:
    """A registered factory `f(problem_config) -> Problem`; its own config keys are `f.params` (if set)."""

    def __init__(self, name: str, factory: Callable[[Any], Problem]):
        self.name = name
        self.factory = factory
        self.params: dict[str, Any] = dict(getattr(factory, "params", {}))
        self.description: str = getattr(factory, "description", "") or (factory.__doc__ or "").strip().split("\n")[0]
        self.__module__ = getattr(factory, "__module__", "?")
        self.__qualname__ = getattr(factory, "__qualname__", repr(factory))

    def from_config(self, config: Any) -> Problem:
        problem = self.factory(config)
        if not isinstance(problem, Problem):
            raise ConfigError(
                f"problem {self.name!r}: its factory {self.__module__}.{self.__qualname__} returned "
                f"{type(problem).__name__}, not an asyncopt_mpi.Problem"
            )
        return problem


def register_problem(name: str, factory: type[Problem] | Callable[[Any], Problem]) -> Any:
    """Make a problem available as problem.name = `name`: a Problem subclass (built with
    `from_config`) or a factory `f(problem_config) -> Problem`. A name already taken is a ConfigError.
    Returns `factory` unchanged."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"register_problem: name {name!r} must be an identifier such as 'my_problem'")
    if isinstance(factory, type):
        if not issubclass(factory, Problem):
            raise ConfigError(f"register_problem({name!r}): {factory!r} is not a subclass of asyncopt_mpi.Problem")
        entry: Any = factory
    elif callable(factory):
        entry = FactoryProblem(name, factory)
    else:
        raise ConfigError(f"register_problem({name!r}): expected a Problem subclass or a factory, got {factory!r}")
    PROBLEMS.add(name, entry, factory)
    return factory


# Common [problem] keys a plugin problem may not use: set but never read, they are refused, as
# built-in problems refuse keys they do not have (problem.dim: see _check_dim).
UNUSED_REFUSED = ("samples", "noise", "noise_type", "data")


class _Reading:
    """A ProblemConfig as a plugin problem's from_config sees it, noting which keys it reads."""

    def __init__(self, config: Any):
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._config, name)


def make_problem(config: Any) -> Problem:
    """Build the problem config.name names from its ProblemConfig.

    A plugin problem that never reads a common key the config sets (e.g. problem.noise) is refused,
    and so is a problem.dim that differs from the dimension the problem has (its own `dim` wins).
    """
    cls = PROBLEMS.get(config.name)
    if cls is None:
        accepted = ", ".join(sorted(PROBLEMS))
        raise ConfigError(f"problem.name: unknown problem {config.name!r}; accepted: {accepted}")
    if PROBLEMS.is_built_in(config.name):
        return cls.from_config(config)
    seen = _Reading(config)
    problem = cls.from_config(seen)
    defaults = type(config)()
    for key in UNUSED_REFUSED:
        if key not in seen.read and getattr(config, key) != getattr(defaults, key):
            raise ConfigError(f"problem.{key}: problem {config.name!r} does not use this key (it reads "
                              f"{', '.join(sorted(seen.read & set(vars(defaults)))) or 'none of the common keys'}); "
                              "remove it")
    if config.dim != defaults.dim and "dim" not in seen.read and getattr(problem, "dim", config.dim) != config.dim:
        raise ConfigError(f"problem.dim = {config.dim}: problem {config.name!r} has dimension {problem.dim} (its own); "
                          f"remove problem.dim or set it to {problem.dim}")
    return problem


__all__ = [
    "BUILT_IN_CLASSES", "ORIGINS", "PROBLEMS", "FactoryProblem", "LogisticProblem", "Problem", "QuadraticProblem", "make_problem",
    "register_problem",
]
