"""The convex regime of Tyurin & Richtarik (NeurIPS 2023, Appendix B; one data distribution), up to constants.

Seed 001 lines 1023-1032 (Tyurin & Richtarik, NeurIPS 2023, Appendix B, as quoted there): f is
convex, grad f is L-Lipschitz, f is M-Lipschitz, ||x0 - x*|| <= R, sigma^2 bounds the variance,
and eps is the target on E[f(x)] - f* (not on the squared gradient norm of the nonconvex rows).
tau_i seconds per stochastic gradient as in rennala.py (inf: a worker that never answers).
The deterministic part of every bound is A = min{sqrt(L) R/sqrt(eps), M^2 R^2/eps^2}: accelerated
steps for smooth f, subgradient steps for Lipschitz f, whichever is fewer (M = inf: smooth only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import _check, _speed_prefix, _times

CONVEX = "Tyurin & Richtarik, NeurIPS 2023, convex regime (seed 001 lines 1023-1032)"


def _check_convex(taus: Any, L: float, R: float, M: float, sigma2: float, eps: float) -> np.ndarray:
    """taus checked as theory's formulas do, and R (finite >= 0) and M (>= 0, inf allowed)."""
    if not (math.isfinite(R) and R >= 0):
        raise ValueError(f"R: the distance ||x0 - x*|| must be a finite number >= 0, got {R}")
    if math.isnan(M) or M < 0:
        raise ValueError(f"M: the Lipschitz constant of f must be >= 0 (inf: not Lipschitz), got {M}")
    return _check(taus, L, 0.0, sigma2, eps)


def deterministic_steps(L: float, R: float, M: float, eps: float) -> float:
    """min{sqrt(L) R/sqrt(eps), M^2 R^2/eps^2}, with 0 * inf = 0 (R = 0 needs no step)."""
    smooth = math.sqrt(L) * R / math.sqrt(eps)
    lipschitz = float(_times(M * M, R * R / eps**2)) if math.isfinite(M) else (0.0 if R == 0 else math.inf)
    return min(smooth, lipschitz)


def convex_minibatch_sgd_time(taus: Any, L: float, R: float, M: float, sigma2: float, eps: float) -> float:
    """Minibatch SGD: tau_n (min{sqrt(L) R/sqrt(eps), M^2 R^2/eps^2} + sigma^2 R^2/(n eps^2)) (seed 001 line 1026)."""
    taus = _check_convex(taus, L, R, M, sigma2, eps)
    work = deterministic_steps(L, R, M, eps) + sigma2 * R * R / (taus.size * eps**2)
    return float(_times(taus.max(), work))


def convex_async_sgd_time(taus: Any, L: float, R: float, M: float, sigma2: float, eps: float) -> float:
    """Asynchronous SGD (Mishchenko et al. 2022): (1/n sum_i 1/tau_i)^-1 (L R^2/eps + sigma^2 R^2/(n eps^2)).

    Seed 001 line 1027; M does not enter (the method is analysed for smooth f only). A dead worker
    adds 0 speed but counts in n, as in rennala.async_sgd_time.
    """
    taus = _check_convex(taus, L, R, M, sigma2, eps)
    n = taus.size
    with np.errstate(divide="ignore"):
        harmonic_mean = n / np.sum(1.0 / taus)
    return float(_times(harmonic_mean, L * R * R / eps + sigma2 * R * R / (n * eps**2)))


def accelerated_rennala_sgd_time(taus: Any, L: float, R: float, M: float, sigma2: float, eps: float) -> float:
    """(Accelerated) Rennala SGD: min_m (1/m sum_{i<=m} 1/tau_(i))^-1 (A + sigma^2 R^2/(m eps^2)).

    Seed 001 line 1028 (Theorems B.9 and B.11), A = deterministic_steps. Computed as
    min_m (m A + sigma^2 R^2/eps^2) / S_m with S_m the speed of the m fastest workers.
    """
    taus = _check_convex(taus, L, R, M, sigma2, eps)
    steps, noise = deterministic_steps(L, R, M, eps), sigma2 * R * R / eps**2
    if steps == 0 and noise == 0:
        return 0.0
    m = np.arange(1, taus.size + 1, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.min((_times(m, steps) + noise) / _speed_prefix(taus)))


def convex_lower_bound_time(taus: Any, L: float, R: float, M: float, sigma2: float, eps: float) -> float:
    """Lower bound in the convex regime (Theorem B.4, seed 001 line 1029): the same expression as
    `accelerated_rennala_sgd_time`, which is why (Accelerated) Rennala SGD is optimal up to constants."""
    return accelerated_rennala_sgd_time(taus, L, R, M, sigma2, eps)


def woodworth_lower_bound_time(taus: Any, L: float, R: float, M: float, sigma2: float, eps: float) -> float:
    """Woodworth et al. 2018's lower bound in this model: tau_1 A + (1/n sum_i 1/tau_i)^-1 sigma^2 R^2/(n eps^2).

    Seed 001 line 1030 (Section M): the fastest worker's deterministic steps plus the whole pool's
    variance term; weaker than Theorem B.4's bound.
    """
    taus = _check_convex(taus, L, R, M, sigma2, eps)
    n = taus.size
    with np.errstate(divide="ignore"):
        harmonic_mean = n / np.sum(1.0 / taus)
    steps = float(_times(taus.min(), deterministic_steps(L, R, M, eps)))
    return steps + float(_times(harmonic_mean, sigma2 * R * R / (n * eps**2)))
