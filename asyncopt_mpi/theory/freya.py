"""Freya PAGE's family: Tyurin, Gruntkowska & Richtarik, "Freya PAGE" (NeurIPS 2024), Table 1 (seeds 000 and 001).

f is a mean of m functions (a finite sum), tau_i seconds per gradient of one f_j, delta0 =
f(x0) - f*. The paper writes delta0/eps "up to smoothness constants"; here it is L delta0/eps,
like the other rows. Freya PAGE, its lower bound and the baselines Hero/Soviet PAGE and GD.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import _check, _speed_prefix, _times

FREYA = "Tyurin, Gruntkowska & Richtarik 2024, Table 1"


def _check_samples(m: Any) -> int:
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ValueError(f"m: the number of functions of the finite sum must be an integer >= 1, got {m}")
    return int(m)


def freya_profile(taus: Any, b: float) -> float:
    """min over j of (sum_{i<=j} 1/tau_(i))^{-1} (b + j): the time to collect b terms with the best j workers.

    The building block of Freya PAGE's time and lower bound (seed 000, Table 1); b = m for a full
    gradient, b = sqrt(m) for a batch. A dead worker (tau = inf) adds no speed; an instant one gives 0.
    """
    taus = np.asarray(taus, dtype=float)
    j = np.arange(1, taus.size + 1, dtype=float)
    with np.errstate(divide="ignore"):
        return float(np.min((b + j) / _speed_prefix(taus)))


def freya_page_time(taus: Any, L: float, delta: float, m: int, eps: float) -> float:
    """Freya PAGE: t(m) + (L delta0/eps) t(sqrt(m)), t(b) = min_j (sum_{i<=j} 1/tau_(i))^{-1} (b + j).

    Seed 000, Table 1 (Theorems 7 and 8); optimal when sqrt(m) >= n.
    """
    taus = _check(taus, L, delta, 0.0, eps)
    m = _check_samples(m)
    return float(freya_profile(taus, m) + _times(L * delta / eps, freya_profile(taus, math.sqrt(m))))


def freya_lower_bound_time(taus: Any, L: float, delta: float, m: int, eps: float) -> float:
    """Lower bound for finite sums: t(m) + (L delta0/(sqrt(m) eps)) t(m) (seed 000, Table 1, Theorem 10)."""
    taus = _check(taus, L, delta, 0.0, eps)
    m = _check_samples(m)
    full = freya_profile(taus, m)
    return float(full + _times(L * delta / (math.sqrt(m) * eps), full))


def hero_page_time(taus: Any, L: float, delta: float, m: int, eps: float) -> float:
    """Hero PAGE (PAGE on the fastest worker): tau_(1) m + tau_(1) (L delta0/eps) sqrt(m) (seed 000, Table 1)."""
    taus = _check(taus, L, delta, 0.0, eps)
    m = _check_samples(m)
    tau = taus.min()
    return float(_times(tau, m) + _times(tau, L * delta / eps * math.sqrt(m)))


def soviet_page_time(taus: Any, L: float, delta: float, m: int, eps: float) -> float:
    """Soviet PAGE (equal split over all n, waits for all): tau_(n) ceil(m/n) + tau_(n) (L delta0/eps) ceil(sqrt(m)/n).

    Seed 000, Table 1 writes tau_n m/n + tau_n (delta0/eps) sqrt(m)/n; the ceilings are what a
    step of `soviet_page` costs (every worker computes at least one term), equal to the paper's
    when n divides m and sqrt(m). A dead worker (tau = inf) makes it inf.
    """
    taus = _check(taus, L, delta, 0.0, eps)
    m = _check_samples(m)
    n, tau = taus.size, taus.max()
    return float(_times(tau, math.ceil(m / n)) + _times(tau, L * delta / eps * math.ceil(math.sqrt(m) / n)))


def hero_gd_time(taus: Any, L: float, delta: float, m: int, eps: float) -> float:
    """Hero GD (gradient descent on the fastest worker): tau_(1) m L delta0/eps (seed 000, Table 1)."""
    taus = _check(taus, L, delta, 0.0, eps)
    m = _check_samples(m)
    return float(_times(taus.min() * m, L * delta / eps))


def soviet_gd_time(taus: Any, L: float, delta: float, m: int, eps: float) -> float:
    """Soviet GD (full gradients split over all n): tau_(n) ceil(m/n) L delta0/eps (seed 000, Table 1: tau_n m/n)."""
    taus = _check(taus, L, delta, 0.0, eps)
    m = _check_samples(m)
    return float(_times(taus.max() * math.ceil(m / taus.size), L * delta / eps))
