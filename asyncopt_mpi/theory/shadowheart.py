"""Shadowheart SGD's family: Tyurin, Pozzi, Ilin & Richtarik, "Shadowheart SGD" (arXiv 2402.04785, 2024).

"Shadowheart SGD: distributed asynchronous SGD with optimal time complexity under arbitrary
computation and communication heterogeneity", Table 1 (seed 001): h_i seconds per stochastic
gradient of worker i (tau_i of the compute-only rows), theta_i seconds per float it sends, RandK
compression (K coordinates, omega = d/K - 1), so one compressed vector takes t_i = K theta_i
seconds. The server's downlink is free.
`equilibrium_time` is their t* (Definition 4.2), `shadowheart_plan` the per-round batch sizes,
copies and weights of Algorithm 1; Minibatch SGD sending full vectors, QSGD, Shadowheart SGD
and the lower bounds of Section 7 and of footnote (a) count communication. theta_i = inf is a
worker that cannot send, treated like tau_i = inf.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import _check, _times

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
