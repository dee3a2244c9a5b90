"""Choosing the pivot of a worker graph without all-pairs distances: round trips from one node at a time, pruned searches.

A plan needs, for a candidate pivot j, the round trips r_i = dist(i -> j) + dist(j -> i) of
the nodes near j only: t*(s, h, r) depends on the workers whose cost max(r_i, h_i) is at most
t* (`t_star_within`). `best_t_star` bounds t* over clusters of nearby candidates (a cluster's
centre c with round-trip radius rho: r(i, j) >= r(i, c) - rho for every member j), then
evaluates only the members of clusters whose bound does not exceed the best t* found so far;
`best_eccentricity` (the graph centre, minibatch SGD's pivot) prunes with the triangle
inequality around every node it evaluated. Both give the pivot the all-pairs matrix gives
(argmin over graph.round_trips is that reference), ties to the lowest index.

Bit for bit: dist(i -> j) in the all-pairs matrix is a float sum along the path taken from i's
end. One search from j along reversed links sums it from j's end, which is the same number
whenever the order of the terms does not matter: every link time equal (every built-in
topology), or all of them multiples of one power of two with sums below 2^53 (`order_free`).
Otherwise the dist(i -> j) a plan needs are searched from i itself (each i once: on a graph of
small diameter this is every pair again, as before).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .graph import Graph, t_star

BATCH = 256  # nodes searched from in one call (a row of n floats each)
SLACK = 1e-9  # relative slack of bounds and search limits: far above the rounding of a sum of n link times


def order_free(times: np.ndarray, n: int) -> bool:
    """Whether every path sum of these link times is the same float in any order of its terms."""
    if times.size == 0 or np.all(times == times[0]):
        return True
    shift = 0  # times 2^shift are whole numbers
    for time in np.unique(times):
        mantissa, exponent = math.frexp(float(time))
        whole = int(mantissa * 2**53)
        shift = max(shift, 53 - exponent - ((whole & -whole).bit_length() - 1))
    # a round trip adds at most 2n link times: exact while the whole numbers stay below 2^53
    return math.log2(float(times.max())) + shift + math.log2(2 * n) < 53


class RoundTrips:
    """Round trips between one node and the others, each the float the all-pairs matrix holds."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.n = graph.n
        self.forward = graph.matrix()
        self.backward = self.forward.T.tocsr()
        self.symmetric = (self.forward != self.backward).nnz == 0
        self.exact = order_free(self.forward.data, self.n)
        self.rows: dict[int, np.ndarray] = {}  # dist(i -> .) of the nodes searched from (graphs not order-free)

    def _search(self, matrix, sources, limit: float) -> np.ndarray:
        from scipy.sparse.csgraph import dijkstra  # here: runs without a graph never load scipy

        return dijkstra(matrix, directed=True, indices=sources, limit=limit * (1 + SLACK) if limit < math.inf else limit)

    def to(self, j: int, limit: float = math.inf) -> np.ndarray:
        """r[i] = dist(i -> j) + dist(j -> i) where it is at most `limit`; elsewhere a value above `limit`."""
        return self.to_each([j], limit)[0]

    def to_each(self, nodes: list[int] | np.ndarray, limit: float = math.inf) -> np.ndarray:
        """Row k: the round trips to nodes[k] (`to`), one search for all of them."""
        away = self._search(self.forward, nodes, limit).reshape(len(nodes), self.n)  # dist(j -> i), from j's end
        back = away if self.symmetric and self.exact else self._search(self.backward, nodes, limit).reshape(away.shape)
        trips = back + away
        if not self.exact:  # dist(i -> j) summed from i's end, for the nodes that can be within the limit
            for row, j in enumerate(nodes):
                near = np.flatnonzero(trips[row] <= limit * (1 + SLACK))
                trips[row, near] = self._from(near)[:, j] + away[row, near]
        return trips

    def _from(self, sources: np.ndarray) -> np.ndarray:
        """dist(i -> .) for each of `sources`, each searched once per plan."""
        missing = [int(i) for i in sources if int(i) not in self.rows]
        if missing:
            self.rows.update(zip(missing, self._search(self.forward, missing, math.inf)))
        return np.array([self.rows[int(i)] for i in sources]).reshape(len(sources), self.n)

    def t_star_within(self, j: int, s: float, h: np.ndarray, limit: float) -> tuple[float, np.ndarray] | None:
        """graph.t_star(s, h, round trips to j) when it is at most `limit` (None otherwise)."""
        if not self.exact and limit == math.inf:  # first where t* lies, then the exact sums near it
            found = t_star(s, h, self._approximate(j))[0]
            limit = found * (1 + 1e-6) if found < math.inf else limit
        return _t_star_below(s, h, self.to(j, limit), limit)

    def _approximate(self, j: int) -> np.ndarray:
        away = self._search(self.forward, j, math.inf)
        return self._search(self.backward, j, math.inf) + away

    def eccentricity(self, j: int, h: np.ndarray) -> tuple[float, np.ndarray]:
        """(max_i r_i + h_i, r) with r the round trips to j."""
        if self.exact:
            trips = self.to(j)
        else:  # the exact sums of the nodes that can be farthest only
            trips = self._approximate(j)
            far = np.flatnonzero(trips + h >= (trips + h).max() * (1 - SLACK))
            trips[far] = self._from(far)[:, j] + self._search(self.forward, j, math.inf)[far]
        return float((trips + h).max()), trips


def choose_pivot(graph: Graph, s: float, h: np.ndarray, rule: str = "tstar") -> int:
    """The pivot: argmin_j t*(s, h, round trips to j) (ties: the lowest index), or the graph centre.

    Found without all-pairs distances; the same node as argmin over graph.round_trips(graph).
    """
    if rule == "center":
        return best_eccentricity(graph, np.zeros(graph.n))
    if rule.isdigit():
        pivot = int(rule)
        if pivot >= graph.n:
            raise ConfigError(f"method.pivot: worker {pivot} does not exist (workers are 0..{graph.n - 1})")
        return pivot
    return best_t_star(graph, s, np.asarray(h, dtype=float))


def best_eccentricity(graph: Graph, h: np.ndarray) -> int:
    """argmin_j max_i (round trip i <-> j + h_i), ties to the lowest index.

    Every evaluated node L bounds the others: r(i, k) >= r(i, L) - r(k, L), so the value at k is at
    least L's value - r(k, L), and at least r(k, L) + h_L (L is one of the i).
    """
    trips_of = RoundTrips(graph)
    lower = np.full(graph.n, -math.inf)
    best, chosen = math.inf, -1
    candidate = 0
    while True:
        value, trips = trips_of.eccentricity(candidate, h)
        if value < best or (value == best and candidate < chosen):
            best, chosen = value, candidate
        lower = np.maximum(lower, np.maximum(value - trips, trips + h[candidate]))
        lower[candidate] = math.inf
        tolerance = SLACK * abs(best) if best < math.inf else 0.0
        open_ = np.flatnonzero(lower <= best + tolerance)
        if not open_.size:
            return chosen
        candidate = int(open_[np.argmin(lower[open_])])


def best_t_star(graph: Graph, s: float, h: np.ndarray) -> int:
    """argmin_j t*(s, h, round trips to j), ties to the lowest index (choose_pivot's "tstar").

    Members of a cluster are evaluated together, one search up to the best t* when their cluster began.
    """
    trips_of = RoundTrips(graph)
    n = graph.n
    first = int(np.argmin(h))
    bound = trips_of.t_star_within(first, s, h, math.inf)[0]  # t* of the fastest node: where to look
    if not bound < math.inf:
        return min(range(n), key=lambda j: (trips_of.t_star_within(j, s, h, math.inf)[0], j))
    clusters = _clusters(trips_of, bound / 3)
    # A cluster's bound: t* with every round trip shortened by its radius (no member can do better, up to
    # the rounding of sums taken in another order: the slack).
    loose = bound * (1 + SLACK)
    widest = max(radius for _, _, radius in clusters)
    bounded = []
    for first_cluster in range(0, len(clusters), BATCH):
        batch = clusters[first_cluster : first_cluster + BATCH]
        for (centre, members, radius), trips in zip(batch, trips_of.to_each([c for c, _, _ in batch], loose + widest)):
            found = _t_star_below(s, h, np.maximum(trips - radius, 0.0), loose)
            bounded.append((math.inf if found is None else found[0], centre, members))
    bounded.sort(key=lambda item: (item[0], item[1]))
    best, chosen = bound, first
    for lowest, centre, members in bounded:
        if lowest > best * (1 + SLACK):
            break
        # each member's own bound, from its round trip to the centre: only those that can win are searched from
        around = trips_of.to(centre, best * (1 + SLACK) + widest)
        members = [j for j in members if _t_star_below(s, h, np.abs(around - around[j]),
                                                       best * (1 + SLACK)) is not None]
        for first_member in range(0, len(members), BATCH):
            batch = members[first_member : first_member + BATCH]
            for j, trips in zip(batch, trips_of.to_each(batch, best)):
                # a later index must do strictly better to win (ties go to the lowest index)
                found = _t_star_below(s, h, trips, best if j < chosen else np.nextafter(best, -math.inf))
                if found is not None:
                    best, chosen = found[0], int(j)
    return chosen


def _clusters(trips_of: RoundTrips, radius: float) -> list[tuple[int, np.ndarray, float]]:
    """Every node in one cluster (centre, members, the largest round trip member <-> centre <= radius)."""
    free = np.ones(trips_of.n, dtype=bool)
    clusters = []
    for centre in range(trips_of.n):
        if not free[centre]:
            continue
        trips = trips_of.to(centre, radius)
        members = np.flatnonzero(free & (trips <= radius))
        free[members] = False
        clusters.append((centre, members, float(trips[members].max())))
    return clusters


def _t_star_below(s: float, h: np.ndarray, trips: np.ndarray, limit: float) -> tuple[float, np.ndarray] | None:
    """graph.t_star(s, h, trips) when it is at most `limit` (None otherwise), from the workers that can count.

    `trips` needs to be exact only where it is at most `limit`. The workers whose cost max(trips, h) is
    at most `limit`, in index order, sort (stably) into the prefix of the full order: same sums, same t*.
    """
    inside = np.flatnonzero(np.maximum(trips, h) <= limit)
    if not inside.size:
        return None
    time, chosen = t_star(s, h[inside], trips[inside])
    return (time, inside[chosen]) if time <= limit else None
