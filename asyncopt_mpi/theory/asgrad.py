"""Asynchronous SGD's published rates in seconds: AsGrad (AISTATS 2024) and Koloskova, Stich & Jaggi (NeurIPS 2022).

AsGrad is Islamov, Safaryan & Alistarh (seed 002); Koloskova et al. is quoted in seed 001 line 661.

Both papers bound iterations T, one iteration being one gradient applied on arrival. With n
workers that each hold one job (tau_C = n, the number of active workers), gradients arrive at
sum_i 1/tau_i per second once every worker is busy, so a time is T(eps) / sum_i 1/tau_i. That
rate is exact for pure assignment (a worker gets the next job itself) and optimistic for random
and shuffle assignment, whose queues can leave a worker idle. A dead worker (tau = inf) adds no
arrivals; an instant one (tau = 0) gives time 0.

The rates hold up to numerical constants, which are taken as 1 (as in every family). L and
Delta = f(x0) - f* are hidden in the printed rates; they are put back where units allow one
place only: a term a/T, (b/T)^(1/2) or (c/T)^(2/3) in E||grad f||^2 units gets L Delta in a, b
and c. T(eps) is the sum over terms of the T at which that term alone equals eps (the rate is
at most eps, up to a constant, exactly when every term is).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import _check, _times

ASGRAD = "Islamov, Safaryan & Alistarh, AsGrad, AISTATS 2024 (seed 002)"
KOLOSKOVA = "Koloskova, Stich & Jaggi, NeurIPS 2022 (seed 001 line 661)"


def _arrivals_per_second(taus: np.ndarray) -> float:
    """sum_i 1/tau_i (1/inf = 0, 1/0 = inf)."""
    with np.errstate(divide="ignore"):
        return float(np.sum(1.0 / taus))


def _seconds(iterations: float, taus: np.ndarray) -> float:
    """T iterations at sum_i 1/tau_i arrivals per second; inf when no worker answers, 0 with an instant one."""
    speed = _arrivals_per_second(taus)
    if speed == 0:
        return 0.0 if iterations == 0 else math.inf
    return float(_times(iterations, 1.0 / speed))


def _check_bounds(G: float, zeta2: float) -> None:
    for name, value in (("G", G), ("zeta2", zeta2)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {value}")


def asgrad_time(
    assign: str, taus: Any, L: float, delta: float, sigma2: float, eps: float, G: float, zeta2: float
) -> float:
    """Asynchronous SGD with AsGrad's assignment rule `assign` (pure, random or shuffle), in seconds.

    Seed 002 ("Theoretical Analysis: Special Cases"), rates of (1/T) sum_t E||grad f(x_t)||^2 with
    tau_C the maximum number of active workers (n here), G the gradient bound, zeta^2 the
    heterogeneity of the workers' functions:
      pure     tau_C/T + (sigma^2/T)^(1/2) + (tau_C G/T)^(2/3) + zeta^2
      random   tau_C/T + (sigma^2/T)^(1/2) + (zeta^2/T)^(1/2) + (tau_C G/T)^(2/3)
      shuffle  n/T + (sigma^2/T)^(1/2) + (sqrt(n) zeta/T)^(2/3) + (tau_C G/T)^(2/3)
    With L Delta put back (module docstring) the terms reach eps at T = tau_C LD/eps,
    s2 LD/eps^2, tau_C G LD/eps^(3/2), z2 LD/eps^2 and sqrt(n) z LD/eps^(3/2). Pure's zeta^2 does
    not shrink with T: eps is reachable only when zeta^2 < eps (else inf).
    """
    taus = _check(taus, L, delta, sigma2, eps)
    _check_bounds(G, zeta2)
    n = taus.size
    LD = L * delta
    tau_c = n  # every worker holds one job, so shuffle's n/T is the others' tau_C/T
    iterations = tau_c * LD / eps + LD * sigma2 / eps**2 + float(_times(tau_c * LD, G)) / eps**1.5
    if assign == "pure":
        if zeta2 >= eps:
            return math.inf
    elif assign == "random":
        iterations += LD * zeta2 / eps**2
    elif assign == "shuffle":
        iterations += math.sqrt(n * zeta2) * LD / eps**1.5
    else:
        raise ValueError(f"assign: one of pure, random, shuffle, got {assign!r}")
    return _seconds(iterations, taus)


def koloskova_time(taus: Any, L: float, delta: float, sigma2: float, eps: float, delay_adaptive: bool) -> float:
    """Asynchronous SGD (Koloskova, Stich & Jaggi 2022): fixed or delay-adaptive step size, in seconds.

    Seed 001 line 661: an eps-stationary point after O(sigma^2 eps^-2 + sqrt(tau_max tau_avg) eps^-1)
    iterations with a fixed step size, O(sigma^2 eps^-2 + tau_avg eps^-1) with their delay-adaptive
    one (L Delta put back on both terms). Delays in the fixed computation model with every worker
    busy, counting the gradient's own step (delay + 1, so that one worker gives SGD's rate):
    worker i's gradient spans tau_i seconds of arrivals, tau_i sum_j 1/tau_j steps, so tau_max =
    max over answering workers of tau_i sum_j 1/tau_j, and tau_avg, weighting each worker by its
    share (1/tau_i)/sum_j 1/tau_j of the arrivals, is the number of answering workers. The
    delay-adaptive time is then the async_sgd row of rennala.py, with dead workers left out of n.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    answering = taus[np.isfinite(taus)]
    if answering.size == 0:
        return math.inf if L * delta > 0 else 0.0
    speed = _arrivals_per_second(taus)
    if math.isinf(speed):
        return 0.0
    tau_avg = float(answering.size)
    tau_max = float(answering.max()) * speed
    delay_term = tau_avg if delay_adaptive else math.sqrt(tau_max * tau_avg)
    iterations = L * delta * (sigma2 / eps**2 + delay_term / eps)
    return _seconds(iterations, taus)
