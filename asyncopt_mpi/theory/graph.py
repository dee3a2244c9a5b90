"""Workers on a graph (decentralized): Tyurin & Richtarik, NeurIPS 2024 (arXiv 2405.16218), seeds 001 and 004.

Minibatch SGD on the graph, Amelie SGD (heterogeneous data), Fragile SGD and the lower bounds, up to constants.

h_i seconds per stochastic gradient of worker i (rennala.py's tau_i), rho_{i->j} the shortest-path
time of a message from worker i to worker j (`graph.Graph.distances`), L Delta / eps as in rennala.py.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .base import _check, _times


def _check_distances(distances: Any, n: int) -> np.ndarray:
    distances = np.asarray(distances, dtype=float)
    if distances.shape != (n, n):
        raise ValueError(f"distances: expected an {n} x {n} matrix of link times, got shape {distances.shape}")
    if np.isnan(distances).any() or (distances < 0).any():
        raise ValueError("distances: every rho_{i->j} must be >= 0 (inf for no path), got nan or < 0")
    return distances


def decentralized_minibatch_time(h: Any, distances: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Minibatch SGD on a worker graph: (LD/eps) (1 + sigma2/(n eps)) max{max_{i,j} rho_{i->j}, max_i h_i}.

    Seed 001, "Decentralized setup: Amelie SGD" table (Tyurin & Richtarik, NeurIPS 2024); rho_{i->j} is
    the shortest-path time from i to j.
    """
    h = _check(h, L, delta, sigma2, eps)
    rho = _check_distances(distances, h.size)
    step = max(float(rho.max()), float(h.max()))
    return float(_times(step, L * delta / eps * (1.0 + sigma2 / (h.size * eps))))


def amelie_sgd_time(h: Any, distances: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Amelie SGD and the lower bound (heterogeneous data on a graph): (LD/eps) max{max rho, max h_i, (sigma2/(n eps)) mean(h)}.

    Seed 001, "Decentralized setup: Amelie SGD" table (Thm. 7 and Cor. 2): optimal up to a constant.
    """
    h = _check(h, L, delta, sigma2, eps)
    rho = _check_distances(distances, h.size)
    step = max(float(rho.max()), float(h.max()), float(_times(sigma2 / (h.size * eps), h.mean())))
    return float(_times(step, L * delta / eps))


def _best_pivot_t_star(h: np.ndarray, links_to_pivot: Callable[[int], np.ndarray], sigma2_over_eps: float) -> float:
    """min over pivots j of graph.t_star(sigma2/eps, h, links_to_pivot(j)): the round time at the best pivot."""
    from ..graph import t_star  # asyncopt_mpi/graph.py imports scipy.sparse; theory is imported by light commands

    return min(t_star(sigma2_over_eps, h, links_to_pivot(j))[0] for j in range(h.size))


def graph_lower_bound_time(h: Any, distances: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Lower bound on a worker graph when every worker samples one distribution: min_j t*(sigma2/eps, h, rho_{.->j}) LD/eps.

    Tyurin & Richtarik, NeurIPS 2024 (arXiv 2405.16218), named in seed 001 lines 504-508; its
    abstract (line 1388) states lower bounds for the homogeneous setup that Fragile SGD matches
    up to a logarithmic factor; the formula itself is not legible in the seed. t*(s, h, r) =
    min_k max{max(r, h) of the k-th worker sorted by it, s (sum_{i<=k} 1/h_i)^-1} is the paper's
    equilibrium time as `graph.t_star` computes it, with r_i = rho_{i->j} the shortest time from
    worker i to the pivot j. Up to constants and that logarithmic factor.
    """
    h = _check(h, L, delta, sigma2, eps)
    rho = _check_distances(distances, h.size)
    best = _best_pivot_t_star(h, lambda j: rho[:, j], sigma2 / eps)
    return float(_times(best, L * delta / eps))


def fragile_sgd_time(h: Any, distances: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Fragile SGD: min_j t*(sigma2/eps, h, rho_{.->j} + rho_{j->.}) LD/eps, round trips to the pivot j.

    Same source as `graph_lower_bound_time` (seed 001 lines 504-508, 547: "nearly" optimal, 1388);
    the round trip (the point down to worker i, its gradients back up) is what Fragile waits for,
    and it is the rule `methods/decentralized.make_plan` picks its pivot and workers by. For
    symmetric links it is at most twice the lower bound. Up to constants and a logarithmic factor.
    """
    h = _check(h, L, delta, sigma2, eps)
    rho = _check_distances(distances, h.size)
    best = _best_pivot_t_star(h, lambda j: rho[:, j] + rho[j, :], sigma2 / eps)
    return float(_times(best, L * delta / eps))
