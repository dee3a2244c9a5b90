"""Matrix sensing over a nuclear-norm ball: recover a low-rank X* from y_i = <A_i, X*> + noise (SFW-asyn, seed 003).

Set-up of the seed: X* = U V^T with U, V entries uniform on [0, 1]; sensing matrices A_i with
standard normal entries; responses y_i = <A_i, X*> + noise * N(0, 1);
f(X) = (1/2m) sum_i (<A_i, X> - y_i)^2 over {||X||_* <= theta}, theta = ||X*||_* by default.
X is rows x cols with rows = problem.dim and cols = problem.cols (default: square).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from .matrix import MatrixProblem

F_STAR_ITERATIONS = 3000


class MatrixSensingProblem(MatrixProblem):
    name: ClassVar[str] = "matrix_sensing"
    description: ClassVar[str] = "recover a low-rank matrix from Gaussian linear measurements (nuclear-norm ball)"
    params: ClassVar[dict[str, Any]] = {"cols": 0, "rank": 3, "radius": 0.0}

    def __init__(self, rows: int, cols: int, rank: int, samples: int, noise: float, radius: float, seed: int):
        if rows < 2 or cols < 2:
            raise ConfigError(f"problem.dim and problem.cols must be >= 2 (matrix rows and columns), got {rows} x {cols}")
        if not 1 <= rank <= min(rows, cols):
            raise ConfigError(f"problem.rank: must be between 1 and min(rows, cols) = {min(rows, cols)}, got {rank}")
        self.shape = (rows, cols)
        self.dim = rows * cols
        # Enough measurements to identify a rank-r matrix (r (rows + cols) degrees of freedom), with room.
        self.n_samples = samples or 5 * rank * (rows + cols)
        rng = np.random.default_rng(seed)
        self.truth = (rng.uniform(0.0, 1.0, (rows, rank)) @ rng.uniform(0.0, 1.0, (rank, cols))).ravel()
        self.sensing = rng.standard_normal((self.n_samples, self.dim))
        self.responses = self.sensing @ self.truth + noise * rng.standard_normal(self.n_samples)
        self.noise = noise
        self.radius = radius or float(np.linalg.svd(self.truth.reshape(self.shape), compute_uv=False).sum())
        self._f_star: float | None = None

    @classmethod
    def memory_estimate(cls, config: Any) -> tuple[int, int]:
        """The sensing matrix: measurements x (rows * cols) numbers."""
        p = config.params
        rows = max(int(config.dim), 0)
        cols = max(int(p.get("cols", 0) or rows), 0)
        samples = int(config.samples or 5 * int(p.get("rank", 3)) * (rows + cols))
        return 8 * max(samples, 0) * rows * cols, rows * cols

    @classmethod
    def from_config(cls, config: Any) -> "MatrixSensingProblem":
        p = config.params
        return cls(config.dim, p["cols"] or config.dim, p["rank"], config.samples, config.noise, p["radius"], config.seed)

    def loss(self, x: np.ndarray) -> float:
        residual = self.sensing @ x - self.responses
        return float(0.5 * residual @ residual / self.n_samples)

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        rows = self.sensing[idx]
        return rows.T @ (rows @ x - self.responses[idx]) / len(idx)

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        return self.sensing.T @ (self.sensing @ x - self.responses) / self.n_samples

    stochastic_grad = MatrixProblem.finite_sum_grad

    def smoothness(self) -> float:
        return float(np.linalg.norm(self.sensing, 2) ** 2 / self.n_samples)

    def relative_error(self, x: np.ndarray) -> float:
        """||X - X*||_F / ||X*||_F."""
        return float(np.linalg.norm(x - self.truth) / np.linalg.norm(self.truth))

    def compute_f_star(self) -> float:
        """min f over the ball by accelerated projected gradient (FISTA); 0 without noise when X* is feasible."""
        if self._f_star is None and self.noise == 0 and self.nuclear_norm(self.truth) <= self.radius * (1 + 1e-12):
            self._f_star = 0.0  # X* is feasible and fits every measurement
        if self._f_star is None:
            step = 1.0 / self.smoothness()
            x = y = self.x0()
            momentum = 1.0
            for _ in range(F_STAR_ITERATIONS):
                x_next = self.project(y - step * self.full_grad(y))
                if np.linalg.norm(x_next - x) <= 1e-12 * max(1.0, np.linalg.norm(x)):
                    x = x_next
                    break
                momentum_next = (1 + math.sqrt(1 + 4 * momentum * momentum)) / 2
                y = x_next + ((momentum - 1) / momentum_next) * (x_next - x)
                x, momentum = x_next, momentum_next
            self._f_star = min(self.loss(x), self.loss(self.project(self.truth)))
        return self._f_star
