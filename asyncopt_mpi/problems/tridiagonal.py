"""Tridiagonal solves that give scipy.linalg.solve_banded's numbers without importing scipy for small systems.

Importing scipy.linalg costs more CPU than numpy and h5py together, and a quadratic run needs one
small tridiagonal solve (its f*). scipy solves a (1, 1)-banded system with LAPACK's dgtsv;
`solve` repeats dgtsv's operations in the same order (elimination without row interchanges, then
back substitution), so the solution is the same bit for bit (tests/test_startup.py compares
them). Large systems, and any that would need a row interchange, go to scipy itself.
"""

from __future__ import annotations

import sys

import numpy as np

PURE_MAX = 20_000  # unknowns solved here when scipy.linalg is not loaded (a Python loop: ~1 us per unknown)


def solve(bands: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x with A x = rhs, A tridiagonal in solve_banded's (1, 1) layout (upper, main, lower rows); as
    `scipy.linalg.solve_banded((1, 1), bands, rhs)` computes it."""
    n = rhs.size
    if n <= PURE_MAX and "scipy.linalg" not in sys.modules:
        x = dgtsv(bands[0, 1:].tolist(), bands[1].tolist(), bands[2, :-1].tolist(), rhs.tolist())
        if x is not None:
            return np.array(x)
    import scipy.linalg

    return scipy.linalg.solve_banded((1, 1), bands, rhs)


def dgtsv(upper: list[float], main: list[float], lower: list[float], b: list[float]) -> list[float] | None:
    """dgtsv for one right-hand side, None when it would interchange rows or meet a zero pivot."""
    n = len(b)
    for i in range(n - 1):
        if main[i] == 0 or abs(main[i]) < abs(lower[i]):
            return None
        fact = lower[i] / main[i]
        main[i + 1] = main[i + 1] - fact * upper[i]
        b[i + 1] = b[i + 1] - fact * b[i]
    if main[n - 1] == 0:
        return None
    b[n - 1] = b[n - 1] / main[n - 1]
    if n > 1:
        b[n - 2] = (b[n - 2] - upper[n - 2] * b[n - 1]) / main[n - 2]
    for i in range(n - 3, -1, -1):
        # dgtsv subtracts DL(i) * x(i+2) with DL(i) zeroed by the elimination: kept, as it can turn -0.0 into 0.0.
        b[i] = (b[i] - upper[i] * b[i + 1] - 0.0 * b[i + 2]) / main[i]
    return b
