"""The problems a run can optimise, by config name (problem.name)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Problem
from .logistic import LogisticProblem
from .matrix_sensing import MatrixSensingProblem
from .nonconvex_logistic import NonconvexLogisticProblem
from .pnn import PolynomialNetworkProblem
from .quadratic import QuadraticProblem

# A new problem is one module with a Problem subclass and one line here.
PROBLEMS: dict[str, type[Problem]] = {
    QuadraticProblem.name: QuadraticProblem,
    LogisticProblem.name: LogisticProblem,
    NonconvexLogisticProblem.name: NonconvexLogisticProblem,
    MatrixSensingProblem.name: MatrixSensingProblem,
    PolynomialNetworkProblem.name: PolynomialNetworkProblem,
}


def make_problem(config: Any) -> Problem:
    """Build the problem config.name names from its ProblemConfig."""
    cls = PROBLEMS.get(config.name)
    if cls is None:
        accepted = ", ".join(sorted(PROBLEMS))
        raise ConfigError(f"problem.name: unknown problem {config.name!r}; accepted: {accepted}")
    return cls.from_config(config)


__all__ = ["PROBLEMS", "LogisticProblem", "Problem", "QuadraticProblem", "make_problem"]
