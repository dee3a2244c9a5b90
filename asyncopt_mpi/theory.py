"""Time-complexity formulas of the papers, up to constants, and the quantities they depend on.

Setting (Tyurin & Richtarik, "Optimal time complexities of parallel stochastic optimization
methods under a fixed computation model", NeurIPS 2023, Table 1): n workers, worker i needs
tau_i seconds per stochastic gradient (sorted: tau_(1) <= ... <= tau_(n)), f is L-smooth,
Delta = f(x0) - f*, sigma^2 bounds the variance of a stochastic gradient, and the target is
E||grad f(x)||^2 <= eps (nonconvex). Every formula is the paper's up to a constant factor,
so a value is "seconds up to a universal constant", good for comparing methods and worker
pools, not for predicting a run's wall time exactly.

Conventions shared by all formulas:
- tau_i = inf is a worker that never answers; 1/inf = 0 contributes nothing to a sum of
  speeds. A formula that waits for every worker (minibatch, Malenia) is then inf; Rennala
  and the lower bound never pick such a worker; Async SGD keeps its published formula, a
  harmonic mean over all n workers in which the dead worker adds 0 speed but still counts in n.
- tau_i = 0 (an instant worker) is accepted and gives time 0 where it is used.
- 0 * inf is taken as 0: with L * Delta = 0 (x0 already optimal) every time is 0.

Communication (Tyurin, Pozzi, Ilin & Richtarik, "Shadowheart SGD", arXiv 2402.04785, 2024,
Table 1): worker i also needs theta_i seconds per float it sends (h_i = tau_i there), and
compressed methods use RandK (omega = d/K - 1, t_i = K theta_i seconds per compressed vector).
`equilibrium_time` is their t* (Definition 4.2), `shadowheart_plan` the per-round batch sizes,
copies and weights of Algorithm 1, and minibatch_sgd / qsgd / shadowheart_sgd in the table
count communication; theta_i = inf is a worker that cannot send, treated like tau_i = inf.

To add a method, write its time function over `Inputs` (add a field with a default there if it
needs more) and one entry in `FORMULAS` (always shown, "-" where it does not apply) or in
`CONDITIONAL_FORMULAS` (shown only for the configs its `applies` accepts). Formulas of other
families live in theory_async.py (asynchronous SGD's iteration rates) and theory_convex.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import ConfigError
from .theory_async import ASGRAD, KOLOSKOVA, asgrad_time, koloskova_time
from .theory_base import _check, _speed_prefix, _times
from .theory_convex import (
    CONVEX,
    accelerated_rennala_sgd_time,
    convex_async_sgd_time,
    convex_lower_bound_time,
    convex_minibatch_sgd_time,
    woodworth_lower_bound_time,
)
from .theory_graph import amelie_sgd_time, decentralized_minibatch_time, fragile_sgd_time, graph_lower_bound_time

TABLE1 = "Tyurin & Richtarik, NeurIPS 2023, Table 1"
DEFAULT_EPS = 1e-3
SIGMA2_SAMPLES = 200


# ---------------------------------------------------------------- checks and helpers


def _rennala_profile(taus: np.ndarray, sigma2: float, eps: float) -> np.ndarray:
    """(m + sigma2/eps) / S_m for m = 1..n: Rennala's time with m workers divided by L Delta / eps.

    (1/m S_m)^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)) = (L Delta/eps) (m + sigma2/eps) / S_m,
    a form that needs no inf * 0 when S_m is 0 (only dead workers) or inf (an instant worker).
    """
    m = np.arange(1, taus.size + 1, dtype=float)
    with np.errstate(divide="ignore"):
        return (m + sigma2 / eps) / _speed_prefix(taus)


# ---------------------------------------------------------------- the formulas


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


# ---------------------------------------------------------------- communication: QSGD and Shadowheart SGD
#
# Tyurin, Pozzi, Ilin & Richtarik, "Shadowheart SGD: distributed asynchronous SGD with optimal time
# complexity under arbitrary computation and communication heterogeneity" (arXiv 2402.04785, 2024),
# Table 1 (seed 001): h_i seconds per stochastic gradient of worker i, theta_i seconds per float it
# sends, RandK compression (K coordinates, omega = d/K - 1), so one compressed vector takes
# t_i = K theta_i seconds. The server's downlink is free.

SHADOWHEART = "Tyurin, Pozzi, Ilin & Richtarik 2024, Table 1"
_FLOOR_RTOL = 1e-9  # floor(x (1 + _FLOOR_RTOL)): t*/h_i = 3 - 1e-15 is floating noise and counts as 3


def _check_pair(h: Any, t: Any, omega: float, sigma2_over_eps: float) -> tuple[np.ndarray, np.ndarray]:
    """h and t as non-empty 1-D float arrays of one shape; raise ValueError on what the equilibrium does not accept."""
    h, t = np.asarray(h, dtype=float), np.asarray(t, dtype=float)
    for name, value in (("h", h), ("t", t)):
        if value.ndim != 1 or value.size == 0:
            raise ValueError(f"{name}: expected a non-empty 1-D array of seconds, got shape {value.shape}")
        if np.isnan(value).any() or (value < 0).any():
            raise ValueError(f"{name}: every entry must be >= 0 (inf for a worker that never answers), got nan or < 0")
    if h.shape != t.shape:
        raise ValueError(f"h and t: one entry per worker in both, got {h.size} and {t.size}")
    for name, value in (("omega", omega), ("sigma2_over_eps", sigma2_over_eps)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
    return h, t


def _check_theta(theta: Any, n: int) -> np.ndarray:
    """theta (seconds per float, one per worker) as a float array; raise ValueError on nan, < 0 or a wrong length."""
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (n,):
        raise ValueError(
            f"theta: expected one seconds-per-float value for each of the {n} workers, got shape {theta.shape}"
        )
    if np.isnan(theta).any() or (theta < 0).any():
        raise ValueError("theta: every theta_i must be >= 0 (inf for a worker that cannot send), got nan or < 0")
    return theta


def _check_randk(d: int, K: int) -> float:
    """omega = d/K - 1 of RandK (Shadowheart, Def. C.1); raise ValueError unless 1 <= K <= d."""
    if int(d) != d or d < 1:
        raise ValueError(f"d: the dimension must be an integer >= 1, got {d}")
    if int(K) != K or not 1 <= K <= d:
        raise ValueError(f"K: RandK keeps K coordinates, an integer in 1..d = {int(d)}, got {K}")
    return d / K - 1.0


def _prefix_s(alpha: np.ndarray, beta: np.ndarray) -> float:
    """The root s > 0 of s = [sum_i 1/(alpha_i + beta_i/s)]^{-1} over one prefix of workers (all finite).

    alpha_i = 2 t_i omega + 2 h_i sigma2/eps and beta_i = 4 t_i omega h_i sigma2/eps (Shadowheart,
    Def. 4.2). Solved as g(s) = s sum_i 1/(alpha_i + beta_i/s) = 1, i.e. s = RHS(s) multiplied by
    1/RHS(s): each term s^2/(alpha_i s + beta_i) increases with s from 0, so g increases and the
    root is unique. Bracket:
      lower l = max(1/sum_i 1/alpha_i, 1/sqrt(sum_i 1/beta_i)): g(s) <= s sum 1/alpha_i and
        g(s) <= s^2 sum 1/beta_i, so g(l) <= 1;
      upper u = min_i (alpha_i + sqrt(alpha_i^2 + 4 beta_i))/2, the one-worker root of the fastest
        single worker: g(u) >= u^2/(alpha_i u + beta_i) = 1 for that worker.
    A worker with alpha_i = 0 (t_i omega = 0 and h_i sigma2/eps = 0, so beta_i = 0 too) adds an
    infinite term: its exact gradients cost nothing to average, and s = 0.
    """
    if (alpha == 0).any():
        return 0.0
    if not beta.any():  # sigma2/eps = 0 or omega = 0: the terms do not depend on s
        with np.errstate(over="ignore"):  # a subnormal alpha_i: 1/alpha_i = inf and s = 0
            return float(1.0 / np.sum(1.0 / alpha))
    # 1/0 = inf for beta_i = 0; subnormal alpha_i, beta_i overflow their reciprocals to inf, which
    # pushes the bound to 0, kept at the least positive float so that excess(low) needs no 0/0.
    with np.errstate(divide="ignore", over="ignore"):
        low = max(1.0 / np.sum(1.0 / alpha), 1.0 / math.sqrt(np.sum(1.0 / beta)), np.finfo(float).tiny)
        high = float(np.min((alpha + np.sqrt(alpha * alpha + 4.0 * beta)) / 2.0))

        def excess(s: float) -> float:
            return s * float(np.sum(1.0 / (alpha + beta / s))) - 1.0

        if excess(low) >= 0:
            return float(low)
        if excess(high) <= 0:  # rounding at the bracket's edge
            return high
        from scipy.optimize import brentq  # here: scipy.optimize is slow to import

        return float(brentq(excess, low, high, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=200))


def _equilibrium(omega: float, sigma2_over_eps: float, h: Any, t: Any) -> tuple[float, int]:
    """(t*, j*): the equilibrium time and how many workers, in the order of max(h_i, t_i), attain it (0 if none)."""
    h, t = _check_pair(h, t, omega, sigma2_over_eps)
    finite = np.isfinite(h) & np.isfinite(t)  # a worker with h or t = inf never finishes a round
    h, t = h[finite], t[finite]
    if h.size == 0:
        return math.inf, 0
    order = np.argsort(np.maximum(h, t), kind="stable")
    h, t = h[order], t[order]
    c = np.maximum(h, t)
    alpha = 2.0 * t * omega + 2.0 * h * sigma2_over_eps
    beta = 4.0 * t * omega * h * sigma2_over_eps

    solved: dict[int, float] = {}

    def s(j: int) -> float:  # s_j for the j fastest workers (1-based), memoised
        if j not in solved:
            solved[j] = _prefix_s(alpha[:j], beta[:j])
        return solved[j]

    # s_j is non-increasing in j and c_j non-decreasing, so "c_j >= s_j" is false, ..., false,
    # true, ..., true: bisect for the first true j (J = n + 1 when none is true).
    lo, hi = 1, h.size + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if c[mid - 1] >= s(mid):
            hi = mid
        else:
            lo = mid + 1
    # j >= J: max(c_j, s_j) = c_j >= c_J; j < J: max(c_j, s_j) = s_j >= s_{J-1}.
    candidates = []
    if lo <= h.size:
        candidates.append((float(c[lo - 1]), lo))
    if lo >= 2:
        candidates.append((s(lo - 1), lo - 1))
    t_star, j_star = min(candidates)
    return t_star, j_star


def equilibrium_time(omega: float, sigma2_over_eps: float, h: Any, t: Any) -> float:
    """Shadowheart's equilibrium time t*(omega, sigma2/eps, h, t) (seconds of one round).

    Tyurin, Pozzi, Ilin & Richtarik 2024, Definition 4.2: with workers sorted so that
    max(h_pi1, t_pi1) <= ... <= max(h_pin, t_pin) (h_i seconds per stochastic gradient, t_i
    seconds to send ONE compressed vector), s_j is the root s > 0 of
      s = [ sum_{i<=j} 1 / (2 t_i omega + 4 t_i omega h_i (sigma2/eps) / s + 2 h_i sigma2/eps) ]^{-1}
    and t* = min_j max( max(h_pij, t_pij), s_j ).

    Conventions: a worker with h_i or t_i = inf never completes a round and is left out (all of
    them inf gives inf). omega = 0 and/or sigma2/eps = 0 make the terms independent of s, and a
    worker whose term is 1/0 (t_i omega = 0 and h_i sigma2/eps = 0) gives s_j = 0 for every
    prefix that holds it.

    Cost: the right side decreases in s, so each s_j is one bracketed brentq solve (`_prefix_s`),
    vectorised over the workers of the prefix. Adding a worker adds a positive term to the sum,
    which lowers the right side for every s, so s_j is non-increasing in j while max(h, t)_pij is
    non-decreasing: max(c_j, s_j) is least where the two cross. Scanning prefixes could stop
    once max(h, t) of the next worker exceeds the best value so far; bisecting for the crossing
    goes further and needs O(log n) root solves, so n = 10^4 takes milliseconds.
    """
    return _equilibrium(omega, sigma2_over_eps, h, t)[0]


def equilibrium_time_equal(omega: float, sigma2_over_eps: float, h: float, t: float, n: int) -> float:
    """Closed form of `equilibrium_time` for n workers with equal h and t.

    All prefixes share max(h, t) and s_n is the least s_j, so t* = max(h, t, s_n); with equal
    workers the fixed point is the quadratic n s^2 - 2 (t omega + h sigma2/eps) s - 4 t omega h sigma2/eps = 0:
    s = a + sqrt(a^2 + 4 t h omega (sigma2/eps) / n), a = (t omega + h sigma2/eps)/n
    (Tyurin, Pozzi, Ilin & Richtarik 2024, Table 1, equal performance column, up to constants there).
    """
    _check_pair([h], [t], omega, sigma2_over_eps)
    if int(n) != n or n < 1:
        raise ValueError(f"n: the number of workers must be an integer >= 1, got {n}")
    if math.isinf(h) or math.isinf(t):
        return math.inf
    a = (t * omega + h * sigma2_over_eps) / n
    s = a + math.sqrt(a * a + 4.0 * t * h * omega * sigma2_over_eps / n)
    return max(s, h, t)


def _floor_ratio(t_star: float, x: np.ndarray) -> np.ndarray:
    """floor(t*/x_i) with a relative tolerance for floating noise, as floats (x_i = 0 gives inf, x_i = inf gives 0)."""
    with np.errstate(divide="ignore"):
        return np.floor(t_star / x * (1.0 + _FLOOR_RTOL))


def shadowheart_plan(
    t_star: float, omega: float, sigma2_over_eps: float, h: Any, t: Any, dim: int, K: int
) -> dict[str, Any]:
    """What every worker does in one Shadowheart round of t* seconds, and its aggregation weight.

    Tyurin, Pozzi, Ilin & Richtarik 2024, Algorithm 1 and (9): worker i sums
      b_i = floor(t*/h_i) stochastic gradients at x^k into v_i, and sends
      m_i = min(floor(t*/t_i), ceil(dim/K)) independent compressions of v_i
    (t_i = seconds per compressed vector; more than ceil(d/K) RandK copies add nothing a plain
    send would not give). A worker is active when b_i >= 1 and m_i >= 1; an active worker weighs
      w_i = 1/(b_i omega + omega sigma2/eps + m_i sigma2/eps), an inactive one 0.
    With omega = 0 and sigma2/eps = 0 every compressed batch is exactly b_i grad f(x), so the
    server's g = sum_i w_i sum_j C_ij(v_i) / sum_i w_i m_i b_i is the exact gradient for any
    positive weights, and the formula's 1/0 is replaced by w_i = 1 for every active worker.
    The floors carry a relative tolerance of 1e-9 (t*/h_i = 3 - 1e-15 counts as 3), so
    b_i h_i <= t* (1 + 1e-9) and m_i t_i <= t* (1 + 1e-9).

    Needs 0 < t* < inf and h_i > 0 (an instant worker would sum infinitely many gradients);
    h_i or t_i = inf makes worker i inactive. Returns {"b", "m": int arrays, "active": bool
    array, "w": float array, "n_active": int}.
    """
    h, t = _check_pair(h, t, omega, sigma2_over_eps)
    _check_randk(dim, K)
    if not (0 < t_star < math.inf):
        raise ValueError(f"t_star: must be a number in (0, inf), got {t_star}")
    if (h == 0).any():
        raise ValueError("h: a worker with h_i = 0 would sum infinitely many gradients per round; need h_i > 0")
    b = _floor_ratio(t_star, h).astype(np.int64)
    m = np.minimum(_floor_ratio(t_star, t), math.ceil(dim / K)).astype(np.int64)
    active = (b >= 1) & (m >= 1)
    if omega == 0 and sigma2_over_eps == 0:
        w = np.where(active, 1.0, 0.0)
    else:
        with np.errstate(divide="ignore"):
            w = np.where(active, 1.0 / (b * omega + omega * sigma2_over_eps + m * sigma2_over_eps), 0.0)
    return {"b": b, "m": m, "active": active, "w": w, "n_active": int(active.sum())}


def minibatch_sgd_comm_time(
    h: Any, theta: Any, d: int, L: float, delta: float, sigma2: float, eps: float
) -> float:
    """Minibatch SGD sending full vectors: max_i max(h_i, d theta_i) (L Delta/eps + sigma2 L Delta/(n eps^2)).

    Tyurin, Pozzi, Ilin & Richtarik 2024, Table 1, (3). With theta = 0 it is `minibatch_sgd_time`.
    """
    h = _check(h, L, delta, sigma2, eps)
    theta = _check_theta(theta, h.size)
    if int(d) != d or d < 0:
        raise ValueError(f"d: the dimension must be an integer >= 0, got {d}")
    n = h.size
    step = np.max(np.maximum(h, _times(d, theta)))
    return float(_times(step, L * delta / eps * (1.0 + sigma2 / (n * eps))))


def qsgd_time(h: Any, theta: Any, d: int, K: int, L: float, delta: float, sigma2: float, eps: float) -> float:
    """QSGD with RandK: max_i max(h_i, K theta_i) ((omega/n + 1) L Delta/eps + (omega + 1) sigma2 L Delta/(n eps^2)).

    Alistarh et al. 2017, Khaled & Richtarik 2020, as reported in Tyurin, Pozzi, Ilin & Richtarik
    2024, Table 1, (7) (there with K = 1); omega = d/K - 1. Every step waits for the slowest worker.
    """
    h = _check(h, L, delta, sigma2, eps)
    theta = _check_theta(theta, h.size)
    omega = _check_randk(d, K)
    n = h.size
    step = np.max(np.maximum(h, _times(K, theta)))
    work = L * delta / eps * ((omega / n + 1.0) + (omega + 1.0) * sigma2 / (n * eps))
    return float(_times(step, work))


def shadowheart_time(h: Any, theta: Any, d: int, K: int, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Shadowheart SGD with RandK: t*(omega, sigma2/eps, h, K theta) L Delta/eps, omega = d/K - 1.

    Tyurin, Pozzi, Ilin & Richtarik 2024, Corollary 4.4 and Table 1 (there with K = 1, optimal
    up to a constant by their Property 5.2). Robust: a dead worker (h or theta = inf) is left out.
    """
    h = _check(h, L, delta, sigma2, eps)
    theta = _check_theta(theta, h.size)
    omega = _check_randk(d, K)
    t_star = equilibrium_time(omega, sigma2 / eps, h, _times(K, theta))
    return float(_times(t_star, L * delta / eps))


def shadowheart_lower_bound_time(
    h: Any, theta: Any, d: int, K: int, L: float, delta: float, sigma2: float, eps: float
) -> float:
    """Lower bound for centralized methods that send RandK compressions: the same t* LD/eps as `shadowheart_time`.

    Tyurin, Pozzi, Ilin & Richtarik 2024, Section 7, as seed 001 line 1162 states it: Shadowheart
    SGD's time is the optimal time complexity in the family of centralized methods with
    compression (up to constants), so no such method with this omega = d/K - 1 is faster.
    """
    return shadowheart_time(h, theta, d, K, L, delta, sigma2, eps)


# ---------------------------------------------------------------- finite sums: Freya PAGE and its baselines
#
# Tyurin, Gruntkowska & Richtarik, "Freya PAGE" (NeurIPS 2024), Table 1 (seeds 000 and 001): f is a
# mean of m functions, tau_i seconds per gradient of one f_j, delta0 = f(x0) - f*. The paper writes
# delta0/eps "up to smoothness constants"; here it is L delta0/eps, like the other rows.

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


# ---------------------------------------------------------------- communication-aware lower bound (graph formulas: theory_graph.py)


def sgd_comm_lower_bound(h: Any, theta: Any, d: int, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Rennala and Async SGD sending d floats: >= min_j max{h_pj, d theta_pj, (sigma2/eps) (sum_{i<=j} 1/h_pi)^-1} LD/eps.

    Shadowheart (Tyurin, Pozzi, Ilin & Richtarik 2024), Table 1, footnote (a): their Theorem N.5
    with omega = 0 and d theta_i in place of the send time; p sorts max{h_i, d theta_i}. A lower
    bound on those two methods' time, not an upper one.
    """
    h = _check(h, L, delta, sigma2, eps)
    theta = _check_theta(theta, h.size)
    if int(d) != d or d < 1:
        raise ValueError(f"d: the dimension must be an integer >= 1, got {d}")
    send = _times(d, theta)
    cost = np.maximum(h, send)
    order = np.argsort(cost, kind="stable")
    with np.errstate(divide="ignore"):
        speed = np.cumsum(1.0 / h[order])
        collect = np.where(speed == np.inf, 0.0, _times(sigma2 / eps, 1.0 / speed))
    best = float(np.min(np.maximum(cost[order], collect)))
    return float(_times(best, L * delta / eps))


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Inputs:
    """Everything a formula may depend on; a new formula needing more adds a field with a default.

    theta: seconds per sent float of each worker (None: zeros, free communication); dim: the
    problem's dimension d (0: unknown, the rows that need it are nan); K: RandK's K; m: the
    finite sum's number of functions (0: none); distances: rho_{i->j} of a worker graph; the
    rest feed the rows of CONDITIONAL_FORMULAS.
    """

    taus: np.ndarray
    L: float
    delta: float
    sigma2: float
    eps: float
    theta: np.ndarray | None = None
    dim: int = 0
    K: int = 1
    m: int = 0  # functions of a finite sum (0: not a finite sum, those rows are nan)
    distances: np.ndarray | None = None  # shortest-path link times of a worker graph (None: no graph, nan)
    method: str = ""  # the config's method (the async_sgd rows apply to it only)
    G: float = math.nan  # AsGrad's gradient bound (nan: unknown, those rows are nan)
    zeta2: float = math.nan  # heterogeneity of the workers' functions (0: one distribution; nan: unknown)
    convex: bool = False  # the convex rows apply (asyncopt theory --convex)
    R: float = math.nan  # ||x0 - x*|| for the convex rows
    M: float = math.inf  # Lipschitz constant of f for the convex rows (inf: not Lipschitz, smooth rates only)

    def __post_init__(self) -> None:
        if self.theta is None:
            object.__setattr__(self, "theta", np.zeros(np.shape(self.taus)))


@dataclass(frozen=True)
class Formula:
    """One row of the table: a time function over Inputs and the formula as printed."""

    time: Callable[[Inputs], float]
    text: str
    bound: str = "lower_bound"  # the row a time is divided by in the "x bound" column
    applies: Callable[[Inputs], bool] | None = None  # CONDITIONAL_FORMULAS: shown only where this holds


def _standard(fn: Callable[..., float]) -> Callable[[Inputs], float]:
    return lambda q: fn(q.taus, q.L, q.delta, q.sigma2, q.eps)


def _with_comm(fn: Callable[..., float]) -> Callable[[Inputs], float]:
    """A formula over (h, theta, d, K, L, Delta, sigma2, eps); nan while the dimension is unknown (dim = 0)."""
    return lambda q: math.nan if q.dim == 0 else fn(q.taus, q.theta, q.dim, q.K, q.L, q.delta, q.sigma2, q.eps)


def _finite_sum(fn: Callable[..., float]) -> Callable[[Inputs], float]:
    """A formula over (taus, L, delta0, m, eps); nan unless the problem is a finite sum (m > 0)."""
    return lambda q: math.nan if q.m == 0 else fn(q.taus, q.L, q.delta, q.m, q.eps)


def _on_graph(fn: Callable[..., float]) -> Callable[[Inputs], float]:
    """A formula over (h, distances, L, Delta, sigma2, eps); nan without a worker graph."""
    return lambda q: math.nan if q.distances is None else fn(q.taus, q.distances, q.L, q.delta, q.sigma2, q.eps)


def _sgd_comm(q: Inputs) -> float:
    return math.nan if q.dim == 0 else sgd_comm_lower_bound(q.taus, q.theta, q.dim, q.L, q.delta, q.sigma2, q.eps)


def _minibatch_comm(q: Inputs) -> float:
    return minibatch_sgd_comm_time(q.taus, q.theta, q.dim, q.L, q.delta, q.sigma2, q.eps)


# Row order is table order; lower_bound stays last. The finite-sum rows (freya_page ...
# freya_lower_bound, seed 000) are nan unless the problem is a finite sum and are compared with
# freya_lower_bound; the graph rows (seed 001, decentralized, heterogeneous data) are nan without
# [graph] and compared with amelie_sgd; sgd_comm_bound is a lower bound for Rennala/Async SGD
# when they send d floats. Only minibatch_sgd, qsgd, shadowheart_sgd and sgd_comm_bound
# count communication (theta_i seconds per float, w = omega = d/K - 1 of RandK); the other rows
# are those of the compute-only model, so with theta > 0 they are lower bounds for their methods
# (Shadowheart, Table 1, footnote (a)), and lower_bound is the compute-only one.
FORMULAS: dict[str, Formula] = {
    "minibatch_sgd": Formula(_minibatch_comm, "max_i max(tau_i, d theta_i) (LD/eps + s2 LD/(n eps^2))"),
    "qsgd": Formula(
        _with_comm(qsgd_time), "max_i max(tau_i, K theta_i) ((w/n + 1) LD/eps + (w + 1) s2 LD/(n eps^2))"
    ),
    "async_sgd": Formula(_standard(async_sgd_time), "(1/n sum_i 1/tau_i)^-1 (LD/eps + s2 LD/(n eps^2))"),
    "rennala_sgd": Formula(
        _standard(rennala_sgd_time), "min_m (1/m sum_{i<=m} 1/tau_(i))^-1 (LD/eps + s2 LD/(m eps^2))"
    ),
    "shadowheart_sgd": Formula(_with_comm(shadowheart_time), "t*(w, s2/eps, tau, K theta) LD/eps (Def. 4.2)"),
    "malenia_sgd": Formula(_standard(malenia_sgd_time), "tau_(n) LD/eps + (1/n sum_i tau_i) s2 LD/(n eps^2)"),
    "hero_sgd": Formula(_standard(hero_sgd_time), "tau_(1) (LD/eps + s2 LD/eps^2)"),
    "sgd_comm_bound": Formula(
        _sgd_comm, ">= rennala/async sending d floats: min_j max{tau_pj, d theta_pj, s2/eps (sum_{i<=j} 1/tau_pi)^-1} LD/eps"
    ),
    "freya_page": Formula(
        _finite_sum(freya_page_time), "t(m) + LD/eps t(sqrt m), t(b) = min_j (sum_{i<=j} 1/tau_(i))^-1 (b + j)",
        "freya_lower_bound",
    ),
    "hero_page": Formula(_finite_sum(hero_page_time), "tau_(1) m + tau_(1) LD/eps sqrt(m)", "freya_lower_bound"),
    "soviet_page": Formula(
        _finite_sum(soviet_page_time), "tau_(n) ceil(m/n) + tau_(n) LD/eps ceil(sqrt(m)/n)", "freya_lower_bound"
    ),
    "hero_gd": Formula(_finite_sum(hero_gd_time), "tau_(1) m LD/eps", "freya_lower_bound"),
    "soviet_gd": Formula(_finite_sum(soviet_gd_time), "tau_(n) ceil(m/n) LD/eps", "freya_lower_bound"),
    "freya_lower_bound": Formula(
        _finite_sum(freya_lower_bound_time), "t(m) + LD/(sqrt(m) eps) t(m) (finite sums, Theorem 10)", "freya_lower_bound"
    ),
    "graph_minibatch_sgd": Formula(
        _on_graph(decentralized_minibatch_time), "(1 + s2/(n eps)) max{max rho_ij, max tau_i} LD/eps", "amelie_sgd"
    ),
    "amelie_sgd": Formula(
        _on_graph(amelie_sgd_time), "max{max rho_ij, max tau_i, s2/(n eps) mean(tau)} LD/eps (= its lower bound)",
        "amelie_sgd",
    ),
    "lower_bound": Formula(_standard(lower_bound_time), "= rennala_sgd (Theorem 6.4)"),
}


def _asgrad(assign: str) -> Callable[[Inputs], float]:
    """AsGrad's rate for one assignment rule; nan while G or zeta2 is unknown."""
    return lambda q: (math.nan if math.isnan(q.G) or math.isnan(q.zeta2)
                      else asgrad_time(assign, q.taus, q.L, q.delta, q.sigma2, q.eps, q.G, q.zeta2))


def _koloskova(delay_adaptive: bool) -> Callable[[Inputs], float]:
    return lambda q: koloskova_time(q.taus, q.L, q.delta, q.sigma2, q.eps, delay_adaptive)


def _convex(fn: Callable[..., float]) -> Callable[[Inputs], float]:
    """A formula over (taus, L, R, M, sigma2, eps); nan while R is unknown."""
    return lambda q: math.nan if math.isnan(q.R) else fn(q.taus, q.L, q.R, q.M, q.sigma2, q.eps)


def _is_async_sgd(q: Inputs) -> bool:
    return q.method == "async_sgd"


def _on_a_graph(q: Inputs) -> bool:
    return q.distances is not None


def _with_communication(q: Inputs) -> bool:
    return q.method == "shadowheart_sgd" or bool(np.max(q.theta) > 0)


def _is_convex(q: Inputs) -> bool:
    return q.convex


_A = "A = min{sqrt(L) R/sqrt(eps), M^2 R^2/eps^2}"

# Rows shown only for the configs they apply to, after the rows of FORMULAS: asynchronous SGD's
# published rates for async_sgd configs (theory_async), Fragile SGD and the one-distribution lower
# bound on a [graph], Shadowheart's lower bound when communication is counted, and the convex
# regime with --convex (theory_convex, where eps is a target on f - f*). All up to constants
# (taken as 1), as the seeds state them.
CONDITIONAL_FORMULAS: dict[str, Formula] = {
    "asgrad_pure": Formula(
        _asgrad("pure"), "(n LD/eps + s2 LD/eps^2 + n G LD/eps^1.5) / sum_i 1/tau_i, inf if z2 >= eps (AsGrad)",
        applies=_is_async_sgd,
    ),
    "asgrad_random": Formula(
        _asgrad("random"), "(n LD/eps + (s2 + z2) LD/eps^2 + n G LD/eps^1.5) / sum_i 1/tau_i (AsGrad)",
        applies=_is_async_sgd,
    ),
    "asgrad_shuffle": Formula(
        _asgrad("shuffle"), "(n LD/eps + s2 LD/eps^2 + (n G + sqrt(n z2)) LD/eps^1.5) / sum_i 1/tau_i (AsGrad)",
        applies=_is_async_sgd,
    ),
    "koloskova_fixed_lr": Formula(
        _koloskova(False),
        "(s2/eps + sqrt(tau_max tau_avg)) LD/eps / sum_i 1/tau_i, tau_max = max tau_i sum_j 1/tau_j, tau_avg = n",
        applies=_is_async_sgd,
    ),
    "koloskova_delay_adaptive": Formula(
        _koloskova(True), "(s2/eps + n) LD/eps / sum_i 1/tau_i, n answering workers (Koloskova et al.)",
        applies=_is_async_sgd,
    ),
    "fragile_sgd": Formula(
        _on_graph(fragile_sgd_time), "min_j t*(s2/eps, tau, rho_{.->j} + rho_{j->.}) LD/eps (round trips; up to log n)",
        "graph_lower_bound", _on_a_graph,
    ),
    "graph_lower_bound": Formula(
        _on_graph(graph_lower_bound_time),
        "min_j t*(s2/eps, tau, rho_{.->j}) LD/eps, t*(s, h, r) = min_k max{max(r, h)_(k), s/sum_{i<=k} 1/h_(i)}",
        "graph_lower_bound", _on_a_graph,
    ),
    "shadowheart_lower_bound": Formula(
        _with_comm(shadowheart_lower_bound_time),
        "= shadowheart_sgd: no method sending RandK compressions is faster (Sec. 7)",
        "shadowheart_lower_bound", _with_communication,
    ),
    "convex_minibatch_sgd": Formula(
        _convex(convex_minibatch_sgd_time), f"tau_(n) (A + s2 R^2/(n eps^2)), {_A}", "convex_lower_bound", _is_convex
    ),
    "convex_async_sgd": Formula(
        _convex(convex_async_sgd_time), "(1/n sum_i 1/tau_i)^-1 (L R^2/eps + s2 R^2/(n eps^2)) (Mishchenko et al.)",
        "convex_lower_bound", _is_convex,
    ),
    "accelerated_rennala_sgd": Formula(
        _convex(accelerated_rennala_sgd_time), "min_m (1/m sum_{i<=m} 1/tau_(i))^-1 (A + s2 R^2/(m eps^2)) (Thm B.9, B.11)",
        "convex_lower_bound", _is_convex,
    ),
    "convex_lower_bound": Formula(
        _convex(convex_lower_bound_time), "= accelerated_rennala_sgd (Theorem B.4)", "convex_lower_bound", _is_convex
    ),
    "woodworth_lower_bound": Formula(
        _convex(woodworth_lower_bound_time), "tau_(1) A + (1/n sum_i 1/tau_i)^-1 s2 R^2/(n eps^2) (Woodworth et al.)",
        "convex_lower_bound", _is_convex,
    ),
}


def estimate_sigma2(problem: Any, x: np.ndarray, rng: np.random.Generator, samples: int = SIGMA2_SAMPLES) -> float:
    """Monte-Carlo estimate of sigma^2 = E||g - grad f(x)||^2, g = problem.stochastic_grad(x, rng, 1).

    The variance bound of Tyurin & Richtarik's Assumption 7.3, measured at one point only
    (theory_table uses x0), so it is an estimate of the bound, not the bound itself.
    """
    if samples < 1:
        raise ValueError(f"samples: must be >= 1, got {samples}")
    exact = problem.full_grad(x)
    total = 0.0
    for _ in range(samples):
        diff = problem.stochastic_grad(x, rng, 1) - exact
        total += float(diff @ diff)
    return total / samples


def heterogeneity_at(problem: Any, x: np.ndarray, workers: Any, n: int) -> float:
    """zeta^2 = (1/n) sum_i ||grad f_i(x) - mean_j grad f_j(x)||^2, f_i the mean over worker i's shard.

    AsGrad's heterogeneity bound (seed 002), measured at one point as `estimate_sigma2` is; 0 when
    every worker samples the whole data (workers.data_split = iid). Shards as the runs build them.
    """
    from .problems.splits import shard_indices

    shards = shard_indices(problem.n_samples, n, workers.data_split, labels=problem.labels(),
                           alpha=workers.dirichlet_alpha, seed=workers.seed)
    if all(shard is None for shard in shards):
        return 0.0
    grads = np.array([problem.grad(x, shard) for shard in shards])
    spread = grads - grads.mean(axis=0)
    return float(np.mean(np.sum(spread * spread, axis=1)))


def theory_table(
    config: Any, eps: float | None = None, sigma2: float | None = None, convex: bool = False
) -> dict[str, Any]:
    """FORMULAS and the CONDITIONAL_FORMULAS that apply, for a run config; raise ConfigError on what is missing.

    Returns {"inputs": {...}, "method": config's method, "rows": [{method, time, formula, ratio}],
    "rennala_m_star": int, "rennala_S": int, "shadowheart": {t_star, active, omega, sigma2_over_eps}};
    ratio is time / lower bound (nan when undefined). Communication: theta_i from the config's
    workers (TimingModel.comm_per_float), d from the problem, K = method.K (1 when the method has
    none), and Shadowheart's sigma2/eps is sigma2 / eps. AsGrad's G is ||grad f(x0)|| (async_sgd
    configs only) and zeta2 the spread of the workers' gradients at x0 (`heterogeneity_at`, 0 when
    every worker samples the whole data); `convex` adds the convex rows, with R = ||x0 - x*||
    from the problem's minimizer and M = inf (smooth rates).
    """
    from .problems import make_problem
    from .timing import TimingModel

    n = config.workers.n
    if n is None:
        raise ConfigError("workers.n: required by asyncopt theory (the number of workers)")
    # The method's own sigma2/eps (those that set Rennala's S) are used when no value is given.
    method_eps = config.method.params.get("eps", 0.0)
    if eps is not None:
        eps_source = "given"
    elif method_eps > 0:
        eps, eps_source = method_eps, "method.eps"
    else:
        eps, eps_source = DEFAULT_EPS, "default"
    if sigma2 is None and config.method.params.get("sigma2", 0.0) > 0:
        sigma2 = config.method.params["sigma2"]
    if not (math.isfinite(eps) and eps > 0):
        raise ConfigError(f"eps: the target eps must be a number > 0, got {eps}")
    if sigma2 is not None and not (math.isfinite(sigma2) and sigma2 >= 0):
        raise ConfigError(f"sigma2: must be a number >= 0, got {sigma2}")

    timing = TimingModel(config.workers, n)
    taus = timing.expected_compute()
    theta = np.asarray(timing.comm_per_float, dtype=float)
    problem = make_problem(config.problem)
    x0 = problem.x0()
    R = _distance_to_minimizer(problem, config.problem.name, x0) if convex else math.nan
    L = float(problem.smoothness())
    if not (math.isfinite(L) and L >= 0):
        raise ConfigError(f"problem.name: problem {config.problem.name!r} gives no smoothness constant L (got {L})")
    f_star = float(problem.compute_f_star())
    delta = float(problem.loss(x0)) - f_star
    if not math.isfinite(delta):
        raise ConfigError(f"problem.name: problem {config.problem.name!r} gives no f* for Delta = f(x0) - f* (got {f_star})")
    delta = max(delta, 0.0)  # f* from a solver may sit a rounding error above f(x0)
    if sigma2 is not None:
        sigma2_source = "given"
    else:
        rng = np.random.default_rng(config.problem.seed)
        sigma2, sigma2_source = estimate_sigma2(problem, x0, rng), f"estimated at x0 from {SIGMA2_SAMPLES} samples"

    dim = int(problem.dim)
    K = config.method.params.get("K", 1)
    if isinstance(K, bool) or not isinstance(K, (int, float)) or int(K) != K or not 1 <= K <= dim:
        raise ConfigError(
            f"method.K: RandK keeps K coordinates, an integer in 1..{dim} (the problem's dimension), got {K}"
        )
    K = int(K)

    m = int(problem.n_samples or 0)
    distances = None
    if getattr(config, "graph", None) is not None and config.graph.topology != "none":
        from .graph import Graph

        distances = Graph.from_config(config.graph, n).distances()
    method = config.method.name
    G, zeta2 = math.nan, math.nan  # needed by the async_sgd rows only
    if method == "async_sgd":
        G, zeta2 = float(np.linalg.norm(problem.full_grad(x0))), heterogeneity_at(problem, x0, config.workers, n)
    q = Inputs(taus=taus, L=L, delta=delta, sigma2=float(sigma2), eps=float(eps), theta=theta, dim=dim, K=K,
               m=m, distances=distances, method=method, G=G, zeta2=zeta2, convex=convex, R=R)
    shown = {**FORMULAS, **{name: f for name, f in CONDITIONAL_FORMULAS.items() if f.applies(q)}}
    times = {name: float(formula.time(q)) for name, formula in shown.items()}
    omega = dim / K - 1.0
    t_star, _ = _equilibrium(omega, q.sigma2 / q.eps, taus, _times(K, theta))
    shadowheart = {
        "t_star": t_star,
        "active": _active_count(t_star, taus, _times(K, theta), dim, K),
        "omega": omega,
        "sigma2_over_eps": q.sigma2 / q.eps,
    }
    rows = [
        {"method": name, "time": times[name], "formula": formula.text, "ratio": _ratio(times[name], times[formula.bound])}
        for name, formula in shown.items()
    ]
    return {
        "inputs": {
            "n": int(n),
            "L": L,
            "delta": delta,
            "sigma2": q.sigma2,
            "eps": q.eps,
            "tau_min": float(taus.min()),
            "tau_max": float(taus.max()),
            "theta_min": float(theta.min()),
            "theta_max": float(theta.max()),
            "dim": dim,
            "K": K,
            "m": m,
            "graph": config.graph.topology if distances is not None else "none",
            "G": G,
            "zeta2": zeta2,
            "convex": convex,
            "R": R,
            "eps_source": eps_source,
            "sigma2_source": sigma2_source,
            "problem": config.problem.name,
        },
        "method": config.method.name,
        "rows": rows,
        "rennala_m_star": rennala_optimal_m(q.taus, q.L, q.delta, q.sigma2, q.eps),
        "rennala_S": rennala_batch(q.sigma2, q.eps),
        "shadowheart": shadowheart,
    }


def _distance_to_minimizer(problem: Any, name: str, x0: np.ndarray) -> float:
    """R = ||x0 - x*|| for the convex rows; ConfigError when the problem has no minimizer to give x*."""
    x_star = problem.minimizer() if hasattr(problem, "minimizer") else None
    if x_star is None:
        raise ConfigError(f"--convex: problem {name!r} gives no minimizer x*, needed for R = ||x0 - x*||")
    return float(np.linalg.norm(x0 - x_star))


def _active_count(t_star: float, h: np.ndarray, t: np.ndarray, dim: int, K: int) -> int:
    """How many workers do at least one gradient and one send in a round of t* (as `shadowheart_plan`).

    Counted directly so that the table also covers what the plan refuses (t* = 0 or inf, h_i = 0):
    with t* = 0 or inf no round is planned and the count is 0.
    """
    if not (0 < t_star < math.inf):
        return 0
    b = _floor_ratio(t_star, h)
    m = np.minimum(_floor_ratio(t_star, t), math.ceil(dim / K))
    return int(np.sum((b >= 1) & (m >= 1)))


def _ratio(time: float, bound: float) -> float:
    """time / bound; nan when the bound is 0 or inf (the ratio is undefined)."""
    if bound == 0 or math.isinf(bound):
        return math.nan
    return time / bound


# ---------------------------------------------------------------- output


def _jsonable(value: Any) -> Any:
    """JSON has no inf or nan: +-inf becomes the string "inf" / "-inf", nan becomes null."""
    if isinstance(value, dict):
        return {key: _jsonable(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def table_json(table: dict[str, Any]) -> str:
    """The table as strict JSON (inf as the string "inf", nan as null)."""
    return json.dumps(_jsonable(table), indent=2, allow_nan=False)


def _g4(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def format_table(table: dict[str, Any]) -> str:
    """Inputs line, then one aligned row per method: time (s, 4 significant digits), ratio to the lower bound, formula."""
    q = table["inputs"]
    lines = [
        f"{q['problem']}: n={q['n']} L={q['L']:.4g} Delta={q['delta']:.4g} "
        f"sigma2={q['sigma2']:.4g} ({q['sigma2_source']}) eps={q['eps']:.4g} ({q['eps_source']}) "
        f"tau=[{q['tau_min']:.4g}, {q['tau_max']:.4g}] s",
        f"rennala: m*={table['rennala_m_star']} fastest workers, S={table['rennala_S']}; "
        f"times up to constants ({TABLE1}); LD = L Delta, s2 = sigma2",
    ]
    if q.get("m", 0) > 0:
        lines.append(
            f"finite sum: m={q['m']}; freya_page ... freya_lower_bound ({FREYA}) are compared with freya_lower_bound"
        )
    if q.get("graph", "none") != "none":
        lines.append(
            f"graph: {q['graph']}; rho_ij = shortest-path link times; graph_minibatch_sgd and amelie_sgd (data "
            "heterogeneous) are compared with amelie_sgd, fragile_sgd with graph_lower_bound (one distribution)"
        )
    if table["method"] == "async_sgd":
        lines.append(
            f"async_sgd: G={_g4(q['G'])} (||grad f(x0)||), z2={_g4(q['zeta2'])} (at x0); asgrad_* ({ASGRAD}) and "
            f"koloskova_* ({KOLOSKOVA}): iterations at sum_i 1/tau_i per second, tau_C = n"
        )
    if q.get("convex"):
        lines.append(
            f"convex ({CONVEX}): R={q['R']:.4g} (||x0 - x*||), M=inf, eps is a target on f - f*; "
            "compared with convex_lower_bound"
        )
    lines.append("- : the row does not apply (no finite sum, no graph, or an unknown dimension)")
    if any(row["method"] in CONDITIONAL_FORMULAS for row in table["rows"]):
        lines.append("rows after lower_bound apply to this config only; their papers state them up to constants, "
                     "taken as 1")
    if q.get("theta_max", 0.0) > 0:
        sh = table["shadowheart"]
        lines.append(
            f"comm: theta=[{q['theta_min']:.4g}, {q['theta_max']:.4g}] s/float, d={q['dim']}, K={q['K']}, "
            f"w=d/K-1={sh['omega']:.4g}; rows without theta ignore communication"
        )
        lines.append(
            f"shadowheart: t*={sh['t_star']:.4g} s, {sh['active']} of {q['n']} workers active ({SHADOWHEART})"
        )
    header = ("method", "time [s]", "x bound", "formula")
    cells = [
        (
            row["method"] + (" *" if row["method"] == table.get("method") else ""),
            _g4(row["time"]),
            _g4(row["ratio"]),
            row["formula"],
        )
        for row in table["rows"]
    ]
    widths = [max(len(c[k]) for c in [header, *cells]) for k in range(3)]
    for cell in [header, *cells]:
        lines.append(
            f"{cell[0]:<{widths[0]}}  {cell[1]:>{widths[1]}}  {cell[2]:>{widths[2]}}  {cell[3]}".rstrip()
        )
    if any(row["method"] == table.get("method") for row in table["rows"]):
        lines.append("* the config's method")
    return "\n".join(lines)
