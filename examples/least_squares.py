"""Plugin problem: least squares on your own data, f(x) = 1/(2m) sum_i (a_i . x - b_i)^2.

The data is a .npz file with a matrix `A` (m x d) and a vector `b` (m); give it as
problem.data. Use it with `--plugin examples/least_squares.py --set problem.name=least_squares
--set problem.data=mydata.npz`, or `plugins = ["examples/least_squares.py"]` under [plugins].
"""

from __future__ import annotations

import numpy as np

import asyncopt_mpi as ao


class LeastSquares(ao.Problem):
    name = "least_squares"
    description = "least squares on a .npz with A (m x d) and b (m), given as problem.data"
    params = {"l2": 0.0}  # own config key: problem.l2, a ridge term l2/2 ||x||^2

    def __init__(self, A: np.ndarray, b: np.ndarray, l2: float = 0.0):
        self.A, self.b, self.l2 = A, b, l2
        self.n_samples, self.dim = A.shape

    @classmethod
    def from_config(cls, config) -> "LeastSquares":
        if not config.data:
            raise ao.ConfigError("problem.data: least_squares needs a .npz file with arrays A and b")
        try:
            with np.load(config.data) as data:
                A, b = np.asarray(data["A"], dtype=float), np.asarray(data["b"], dtype=float)
        except (OSError, ValueError, KeyError) as exc:
            raise ao.DataError(f"{config.data}: expected a .npz with arrays A and b ({exc})") from None
        if A.ndim != 2 or b.shape != (A.shape[0],):
            raise ao.DataError(f"{config.data}: A must be m x d and b of length m, got {A.shape} and {b.shape}")
        return cls(A, b, config.params["l2"])

    def x0(self) -> np.ndarray:
        return np.zeros(self.dim)

    def loss(self, x: np.ndarray) -> float:
        residual = self.A @ x - self.b
        return 0.5 * float(residual @ residual) / self.n_samples + 0.5 * self.l2 * float(x @ x)

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        rows = self.A[idx]
        return rows.T @ (rows @ x - self.b[idx]) / len(idx) + self.l2 * x

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        return self.grad(x, np.arange(self.n_samples))

    def stochastic_grad(self, x, rng, batch=1, shard=None) -> np.ndarray:
        return self.finite_sum_grad(x, rng, batch, shard)  # `batch` rows drawn from the worker's shard

    def compute_f_star(self) -> float:
        d = self.dim
        x_star = np.linalg.solve(self.A.T @ self.A / self.n_samples + self.l2 * np.eye(d), self.A.T @ self.b / self.n_samples)
        return self.loss(x_star)

    def smoothness(self) -> float:
        return float(np.linalg.eigvalsh(self.A.T @ self.A / self.n_samples)[-1]) + self.l2


ao.register_problem(LeastSquares.name, LeastSquares)


def make_data(path: str, samples: int = 200, dim: int = 10, noise: float = 0.1, seed: int = 0) -> str:
    """Write a random least-squares data set (A, b) to `path` (for trying the example)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((samples, dim))
    b = A @ rng.standard_normal(dim) + noise * rng.standard_normal(samples)
    with open(path, "wb") as handle:  # a file object keeps numpy from appending ".npz"
        np.savez(handle, A=A, b=b)
    return path


if __name__ == "__main__":
    import sys

    print(make_data(sys.argv[1] if len(sys.argv) > 1 else "least_squares.npz"))
