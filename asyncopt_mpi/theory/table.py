"""The rows of `asyncopt theory`: `Inputs`, `Formula` and the FORMULAS and CONDITIONAL_FORMULAS of every paper family.

To add a method, write its time function (in the module of its paper family) and, over `Inputs`
(add a field with a default there if it needs more), one entry in `FORMULAS` (always shown, "-"
where it does not apply) or in `CONDITIONAL_FORMULAS` (shown only for the configs its `applies`
accepts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .asgrad import asgrad_time, koloskova_time
from .convex import (
    accelerated_rennala_sgd_time,
    convex_async_sgd_time,
    convex_lower_bound_time,
    convex_minibatch_sgd_time,
    woodworth_lower_bound_time,
)
from .freya import (
    freya_lower_bound_time,
    freya_page_time,
    hero_gd_time,
    hero_page_time,
    soviet_gd_time,
    soviet_page_time,
)
from .graph import amelie_sgd_time, decentralized_minibatch_time, fragile_sgd_time, graph_lower_bound_time
from .rennala import async_sgd_time, hero_sgd_time, lower_bound_time, malenia_sgd_time, rennala_sgd_time
from .shadowheart import (
    minibatch_sgd_comm_time,
    qsgd_time,
    sgd_comm_lower_bound,
    shadowheart_lower_bound_time,
    shadowheart_time,
)


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
# published rates for async_sgd configs (asgrad.py), Fragile SGD and the one-distribution lower
# bound on a [graph], Shadowheart's lower bound when communication is counted, and the convex
# regime with --convex (convex.py, where eps is a target on f - f*). All up to constants
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
