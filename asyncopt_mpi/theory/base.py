"""Input checks and building blocks shared by the time formulas of every paper family.

Conventions (the package docstring has them in full): tau_i = inf is a worker that never
answers (1/inf = 0 speed), tau_i = 0 an instant one, and 0 * inf is taken as 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _check(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> np.ndarray:
    """taus as a non-empty 1-D float array; raise ValueError on values the formulas do not accept."""
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"taus: expected a non-empty 1-D array of seconds per gradient, got shape {taus.shape}")
    if np.isnan(taus).any() or (taus < 0).any():
        raise ValueError("taus: every tau_i must be >= 0 (inf for a worker that never answers), got nan or < 0")
    for name, value in (("L", L), ("delta", delta), ("sigma2", sigma2)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: must be a finite number > 0, got {eps}")
    return taus


def _times(a: Any, b: Any) -> Any:
    """a * b with 0 * inf = 0 (both non-negative)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where((a == 0) | (b == 0), 0.0, a * b)


def _speed_prefix(taus: np.ndarray) -> np.ndarray:
    """S_m = sum_{i<=m} 1/tau_(i) for m = 1..n (workers sorted fastest first; 1/inf = 0, 1/0 = inf)."""
    with np.errstate(divide="ignore"):
        return np.cumsum(1.0 / np.sort(taus))
