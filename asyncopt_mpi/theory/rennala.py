"""Rennala SGD's family: Tyurin & Richtarik, NeurIPS 2023, Table 1 (seed 001), the compute-only model.

"Optimal time complexities of parallel stochastic optimization methods under a fixed computation
model" (the setting is in the package docstring): Minibatch, Asynchronous, Rennala, Hero and
Malenia SGD, and the lower bound that Rennala SGD attains.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import _check, _speed_prefix, _times

TABLE1 = "Tyurin & Richtarik, NeurIPS 2023, Table 1"


def _rennala_profile(taus: np.ndarray, sigma2: float, eps: float) -> np.ndarray:
    """(m + sigma2/eps) / S_m for m = 1..n: Rennala's time with m workers divided by L Delta / eps.

    (1/m S_m)^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)) = (L Delta/eps) (m + sigma2/eps) / S_m,
    a form that needs no inf * 0 when S_m is 0 (only dead workers) or inf (an instant worker).
    """
    m = np.arange(1, taus.size + 1, dtype=float)
    with np.errstate(divide="ignore"):
        return (m + sigma2 / eps) / _speed_prefix(taus)


def minibatch_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Minibatch SGD: tau_(n) (L Delta/eps + sigma2 L Delta/(n eps^2)).

    Tyurin & Richtarik, NeurIPS 2023, Table 1: every step waits for the slowest worker, so one
    dead worker (tau = inf) makes it inf.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    n = taus.size
    work = L * delta / eps * (1.0 + sigma2 / (n * eps))
    return float(_times(taus.max(), work))


def async_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Asynchronous SGD: (1/n sum_i 1/tau_i)^{-1} (L Delta/eps + sigma2 L Delta/(n eps^2)).

    Cohen et al. 2021, Mishchenko et al. 2022, Koloskova et al. 2022, as reported in Tyurin &
    Richtarik, NeurIPS 2023, Table 1. Kept as published: a dead worker (tau = inf) adds 1/inf = 0
    to the sum of speeds but still counts in n, so it raises the harmonic mean, but the time
    stays finite while one worker answers.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    n = taus.size
    with np.errstate(divide="ignore"):
        harmonic_mean = n / np.sum(1.0 / taus)
    work = L * delta / eps * (1.0 + sigma2 / (n * eps))
    return float(_times(harmonic_mean, work))


def rennala_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Rennala SGD: min over m in 1..n of (1/m sum_{i<=m} 1/tau_(i))^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)).

    Tyurin & Richtarik, NeurIPS 2023, Theorem 7.5 and Table 1. Only the m fastest workers
    matter; a dead worker (tau = inf) is never among the chosen ones while a finite one is left.
    Vectorised over m with a prefix sum of the sorted speeds 1/tau_(i).
    """
    taus = _check(taus, L, delta, sigma2, eps)
    best = _rennala_profile(taus, sigma2, eps).min()
    return float(_times(L * delta / eps, best))


def rennala_optimal_m(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> int:
    """m*: how many of the fastest workers attain the minimum in `rennala_sgd_time` (1-based count).

    Ties go to the smallest m (e.g. sigma2 = 0 with equal workers gives 1). m* depends on L and
    Delta only through the common factor L Delta / eps, so it is computed without it.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    return int(np.argmin(_rennala_profile(taus, sigma2, eps))) + 1


def rennala_batch(sigma2: float, eps: float) -> int:
    """Rennala SGD's batch size S = max(ceil(sigma2/eps), 1) (Tyurin & Richtarik, NeurIPS 2023, Theorem 7.5)."""
    if not (math.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2: must be a finite number >= 0, got {sigma2}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: must be a finite number > 0, got {eps}")
    return max(math.ceil(sigma2 / eps), 1)


def lower_bound_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Lower bound for any method in the fixed computation model (homogeneous data).

    Tyurin & Richtarik, NeurIPS 2023, Theorem 6.4 and Table 1: the same expression as Rennala
    SGD's time, min over m of (1/m sum_{i<=m} 1/tau_(i))^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)),
    which is why Rennala SGD is optimal (up to constants).
    """
    return rennala_sgd_time(taus, L, delta, sigma2, eps)


def hero_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Hero SGD (plain SGD on the fastest worker only): tau_(1) (L Delta/eps + sigma2 L Delta/eps^2).

    SGD's LD/eps + s2 LD/eps^2 iterations, each taking tau_(1) seconds: the single-worker baseline
    of Tyurin & Richtarik, NeurIPS 2023 (introduction) and of Richtarik's talk (seeds/001, "Hero SGD").
    """
    taus = _check(taus, L, delta, sigma2, eps)
    work = L * delta / eps * (1.0 + sigma2 / eps)
    return float(_times(taus.min(), work))


def malenia_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Malenia SGD (heterogeneous data): tau_(n) L Delta/eps + (1/n sum_i tau_i) sigma2 L Delta/(n eps^2).

    Tyurin & Richtarik, NeurIPS 2023, Theorem A.4 (data heterogeneous regime). Every worker's
    data is needed, so a dead worker (tau = inf) makes it inf.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    n = taus.size
    base = L * delta / eps
    return float(_times(taus.max(), base) + _times(taus.mean(), base * sigma2 / (n * eps)))
