"""Problems over matrices in a nuclear-norm ball {||X||_* <= theta}, for Frank-Wolfe methods (seed 003).

The variable X (rows x cols) is stored flattened in C order, like every point. The linear
minimisation oracle over the ball is a rank-one vertex: for a gradient G with leading
singular pair (u1, v1), argmin over ||S||_* <= theta of <S, G> is -theta u1 v1^T, returned as
(u, v) = (-u1, v1) so that the vertex is theta u v^T.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg

from .base import Problem

# Below this size a dense SVD is cheaper and exact; above it, Lanczos (ARPACK) for one pair.
DENSE_SVD_ENTRIES = 40_000


class MatrixProblem(Problem):
    shape: tuple[int, int]
    radius: float

    def as_matrix(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(self.shape)

    def x0(self) -> np.ndarray:
        return np.zeros(self.dim)

    def lmo(self, gradient: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) with theta u v^T = argmin over ||S||_* <= theta of <S, G> (unit u and v)."""
        u1, v1 = leading_singular_pair(self.as_matrix(gradient))
        return -u1, v1

    def vertex(self, gradient: np.ndarray) -> np.ndarray:
        u, v = self.lmo(gradient)
        return self.radius * np.outer(u, v).ravel()

    def nuclear_norm(self, x: np.ndarray) -> float:
        return float(np.linalg.svd(self.as_matrix(x), compute_uv=False).sum())

    def project(self, x: np.ndarray) -> np.ndarray:
        """Euclidean projection onto the ball (singular values projected onto the l1 ball of radius theta)."""
        u, s, vt = np.linalg.svd(self.as_matrix(x), full_matrices=False)
        if s.sum() <= self.radius:
            return x.copy()
        # Project s onto {s >= 0, sum s <= theta} (Duchi et al. 2008).
        ordered = np.sort(s)[::-1]
        cumulative = np.cumsum(ordered)
        k = np.arange(1, len(s) + 1)
        rho = np.flatnonzero(ordered - (cumulative - self.radius) / k > 0)[-1]
        shift = (cumulative[rho] - self.radius) / (rho + 1)
        return ((u * np.maximum(s - shift, 0)) @ vt).ravel()


def leading_singular_pair(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit (u, v) with matrix v = sigma_max u (the top singular pair), deterministic sign."""
    u = vt = None
    if matrix.size > DENSE_SVD_ENTRIES and min(matrix.shape) >= 3:
        start = np.ones(min(matrix.shape))  # a fixed start vector keeps runs reproducible
        try:
            u, _, vt = scipy.sparse.linalg.svds(matrix, k=1, v0=start, tol=1e-10)
        except scipy.sparse.linalg.ArpackError:
            pass  # the start vector in the null space (e.g. a zero minibatch gradient): the exact SVD below
    if u is None:
        u, _, vt = np.linalg.svd(matrix, full_matrices=False)
    u1, v1 = u[:, 0], vt[0]
    sign = 1.0 if u1[np.argmax(np.abs(u1))] >= 0 else -1.0
    return sign * u1, sign * v1
