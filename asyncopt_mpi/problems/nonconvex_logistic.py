"""Binary logistic regression with the nonconvex regulariser of AsGrad (Islamov, Safaryan, Alistarh, AISTATS 2024).

f(x) = (1/m) sum_i log(1 + exp(-y_i a_i^T x)) + lam * sum_j x_j^2 / (1 + x_j^2) (+ l2/2 ||x||^2,
off by default). The regulariser is bounded and nonconvex, so f has stationary points that
need not be minima; that is the setting of AsGrad's experiments.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from .data import Features
from .logistic import LogisticProblem

# max over t of |d^2/dt^2 t^2/(1 + t^2)| = |2(1 - 3t^2)/(1 + t^2)^3|, reached at t = 0.
REGULARISER_CURVATURE = 2.0


class NonconvexLogisticProblem(LogisticProblem):
    """Mean binary logistic loss plus lam * sum_j x_j^2/(1 + x_j^2) (and the inherited optional l2)."""

    name: ClassVar[str] = "nonconvex_logistic"
    params: ClassVar[dict[str, Any]] = {**LogisticProblem.params, "lam": 0.1}
    description: ClassVar[str] = "binary logistic regression + lam * sum x_j^2/(1+x_j^2), nonconvex (AsGrad)"

    def __init__(
        self,
        X: Features,
        y: np.ndarray,
        classes: int = 0,
        l2: float = 0.0,
        bias: bool = False,
        source: str = "data",
        lam: float = 0.1,
    ) -> None:
        check_lam(lam)
        super().__init__(X, y, classes=classes, l2=l2, bias=bias, source=source)
        if self.classes != 2:
            raise ConfigError(
                f"problem.classes: {self.name} is binary only, but the problem has {self.classes} classes "
                f"(set problem.classes = 2 or 0 with two-label data, or use problem.name = logistic)"
            )
        self.lam = float(lam)

    @classmethod
    def from_config(cls, config: Any) -> "NonconvexLogisticProblem":
        """As LogisticProblem.from_config, plus problem.lam."""
        lam = config.params["lam"]
        check_lam(lam)  # before loading any data
        # The parent builds cls(...) without lam (so with the default); set the configured one
        # before anything (smoothness, f*) that depends on it is computed and cached.
        problem = super().from_config(config)
        problem.lam = float(lam)
        return problem

    # -- regulariser hooks

    def _reg_loss(self, x: np.ndarray) -> float:
        squares = x * x
        return super()._reg_loss(x) + self.lam * float(np.sum(squares / (1.0 + squares)))

    def _reg_grad(self, x: np.ndarray) -> np.ndarray:
        return super()._reg_grad(x) + self.lam * 2.0 * x / (1.0 + x * x) ** 2

    def _reg_smoothness(self) -> float:
        # The regulariser is separable, so its Hessian is diagonal with entries in [-lam/2, 2 lam].
        return super()._reg_smoothness() + REGULARISER_CURVATURE * self.lam

    def compute_f_star(self) -> float:
        """f at the stationary point L-BFGS-B reaches from x0 (the problem is nonconvex).

        This is a reference value, not necessarily the global minimum: loss - f* can be
        negative if a method finds a better point. It never exceeds f(x0).
        """
        return super().compute_f_star()

    def _f_star_settings(self) -> dict[str, float]:
        return {"lam": self.lam}


def check_lam(lam: float) -> None:
    """Reject a regulariser weight that is not a finite number >= 0."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not (math.isfinite(lam) and lam >= 0):
        raise ConfigError(f"problem.lam must be a finite number >= 0, got {lam!r}")
