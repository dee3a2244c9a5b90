"""Worker graphs for decentralized methods: topologies, per-link times, shortest paths, the pivot and its tree.

Nodes are workers 0..n-1. A directed link i -> j takes rho_{i->j} seconds per message
(`graph.rho` scales every link). Methods move vectors only along the shortest-path
spanning tree rooted at the pivot (Tyurin & Richtarik, NeurIPS 2024: Fragile/Amelie SGD),
so every message crosses graph edges one at a time.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # scipy.sparse is imported where a graph is built: runs without a graph never load it
    from scipy.sparse import csr_matrix

from .errors import ConfigError, DataError
from .inputs import TABLE_MAX_BYTES, clip, read_input, shown

TOPOLOGIES = ("line", "ring", "star", "mesh", "torus", "edges")


class GraphKeys(Protocol):
    """The [graph] keys a graph is built from (config.GraphConfig has them; this module imports no config)."""

    topology: str
    rho: float
    edges: str


def mesh_shape(n: int) -> tuple[int, int]:
    """rows x cols = n with rows <= cols as close as possible (a 10 x 10 mesh for 100 workers)."""
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows, n // rows


def _undirected_edges(topology: str, n: int) -> list[tuple[int, int]]:
    if topology == "line":
        return [(i, i + 1) for i in range(n - 1)]
    if topology == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(i, i + 1) for i in range(n - 1)]
    if topology == "star":
        return [(0, i) for i in range(1, n)]
    rows, cols = mesh_shape(n)
    wrap = topology == "torus"
    edges = []
    for r in range(rows):
        for c in range(cols):
            node = r * cols + c
            if c + 1 < cols or (wrap and cols > 2):
                edges.append((node, r * cols + (c + 1) % cols))
            if r + 1 < rows or (wrap and rows > 2):
                edges.append((node, ((r + 1) % rows) * cols + c))
    return edges


def read_edges(path: str, n: int) -> dict[tuple[int, int], float]:
    """An edge-list file: lines `i j [time]` (0-based workers; time 1 if absent; `#` comments).

    A line gives the link i -> j; j -> i gets the same time unless a line of its own gives it.
    The file is a regular file of at most 16 MB (inputs.TABLE_MAX_BYTES).
    """
    text = read_input(path, "graph.edges: edge-list file", TABLE_MAX_BYTES).decode("utf-8", errors="replace")
    name = clip(path)
    given: dict[tuple[int, int], float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            if len(fields) not in (2, 3):
                raise ValueError("expected `i j [time]`")
            i, j = int(fields[0]), int(fields[1])
            time = float(fields[2]) if len(fields) == 3 else 1.0
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise ValueError(f"workers must be distinct and in 0..{n - 1}")
            if not time >= 0 or math.isinf(time):
                raise ValueError("the time must be finite and >= 0")
        except ValueError as exc:
            raise DataError(f"{name}:{number}: {clip(str(exc))}: {shown(line.strip())}") from None
        given[(i, j)] = time
    if not given:
        raise DataError(f"{name}: no edges")
    links = dict(given)
    for (i, j), time in given.items():
        links.setdefault((j, i), time)
    return links


@dataclass
class Graph:
    """Directed links with times; `tree_*` describe the spanning tree rooted at the pivot once chosen."""

    n: int
    links: dict[tuple[int, int], float]  # (i, j) -> rho_{i->j}
    topology: str

    @classmethod
    def from_config(cls, config: GraphKeys, n: int) -> "Graph":
        if config.topology not in TOPOLOGIES:
            raise ConfigError(f"graph.topology: {config.topology!r} is not accepted; accepted: {', '.join(TOPOLOGIES)}")
        if config.topology == "edges":
            if not config.edges:
                raise ConfigError("graph.edges: required with graph.topology = \"edges\" (a file of `i j [time]` lines)")
            links = {edge: config.rho * time for edge, time in read_edges(config.edges, n).items()}
        else:
            links = {}
            for i, j in _undirected_edges(config.topology, n):
                links[(i, j)] = links[(j, i)] = config.rho
        graph = cls(n, links, config.topology)
        from scipy.sparse.csgraph import connected_components

        if n > 1 and connected_components(graph.matrix(), directed=True, connection="strong")[0] != 1:
            raise ConfigError(f"graph: the {config.topology} graph on {n} workers is not connected")
        return graph

    def matrix(self) -> csr_matrix:
        """Link times as a sparse matrix; zero-time links are stored as a tiny positive time."""
        from scipy.sparse import csr_matrix

        if not self.links:
            return csr_matrix((self.n, self.n))
        rows, cols = zip(*self.links.keys())
        data = np.maximum(np.asarray(list(self.links.values()), dtype=float), 1e-300)
        return csr_matrix((data, (rows, cols)), shape=(self.n, self.n))

    def neighbours(self, node: int) -> list[int]:
        return sorted({j for i, j in self.links if i == node} | {i for i, j in self.links if j == node})

    def distances(self) -> np.ndarray:
        """dist[i, j]: the shortest time from i to j along directed links."""
        from scipy.sparse.csgraph import dijkstra

        return dijkstra(self.matrix(), directed=True)


def t_star(s: float, h: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray]:
    """t*(s, h, r) = min_k max{max(r, h) of the k-th worker, s / sum_{i<=k} 1/h} over workers sorted by max(r, h).

    Returns the time and the workers of the minimising prefix (those the method uses).
    """
    cost = np.maximum(r, h)
    order = np.argsort(cost, kind="stable")
    with np.errstate(divide="ignore"):
        rates = np.cumsum(1.0 / h[order])
        batch_time = np.where(rates > 0, s / np.where(rates > 0, rates, 1.0), np.inf)
    values = np.maximum(cost[order], batch_time)
    best = int(np.argmin(values))
    return float(values[best]), np.sort(order[: best + 1])


def round_trips(graph: Graph, distances: np.ndarray | None = None) -> np.ndarray:
    """trip[i, j] = dist(i -> j) + dist(j -> i): every pair (n x n floats; plans search without it: pivots.py)."""
    dist = graph.distances() if distances is None else distances
    return dist + dist.T


class Tree:
    """The shortest-path spanning tree rooted at the pivot (round-trip times as edge weights).

    `next_hop(i, dest)` routes along the tree: up to the parent, or down to the child whose
    subtree holds dest (a binary search over the children: a hop costs O(log degree)).
    """

    def __init__(self, graph: Graph, root: int):
        from scipy.sparse.csgraph import dijkstra

        weights = _round_trip_links(graph)
        _, predecessors = dijkstra(weights, directed=True, indices=root, return_predecessors=True)
        self.root = root
        self.n = graph.n
        self.parent = np.where(predecessors < 0, -1, predecessors).astype(int)
        self.parent[root] = -1
        if (self.parent[np.arange(self.n) != root] < 0).any():
            raise ConfigError("graph: some workers cannot reach the pivot and back")
        self.children: list[list[int]] = [[] for _ in range(self.n)]
        for node, parent in enumerate(self.parent.tolist()):
            if parent >= 0:
                self.children[parent].append(node)
        # Euler-tour intervals: dest is in node's subtree iff enter[node] <= enter[dest] < leave[node].
        self.enter = np.zeros(self.n, dtype=int)
        self.leave = np.zeros(self.n, dtype=int)
        self.depth = np.zeros(self.n, dtype=int)
        clock, stack = 0, [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                self.leave[node] = clock
                continue
            self.enter[node] = clock
            clock += 1
            stack.append((node, True))
            for child in reversed(self.children[node]):
                self.depth[child] = self.depth[node] + 1
                stack.append((child, False))
        # Python lists for routing (a hop reads a few entries); children's enter times increase along each list.
        self._enter, self._leave, self._parent = self.enter.tolist(), self.leave.tolist(), self.parent.tolist()
        self._child_enter = [[self._enter[child] for child in children] for children in self.children]

    def contains(self, node: int, dest: int) -> bool:
        return self._enter[node] <= self._enter[dest] < self._leave[node]

    def next_hop(self, node: int, dest: int) -> int:
        if node == dest:
            return node
        enter = self._enter[dest]
        if not self._enter[node] <= enter < self._leave[node]:
            return self._parent[node]
        return self.children[node][bisect_right(self._child_enter[node], enter) - 1]

    def path(self, source: int, dest: int) -> list[int]:
        """Nodes a message from source to dest visits, both ends included."""
        nodes = [source]
        while nodes[-1] != dest:
            nodes.append(self.next_hop(nodes[-1], dest))
        return nodes


def _round_trip_links(graph: Graph) -> csr_matrix:
    """Link i -> j weighted by rho_{i->j} + rho_{j->i} where both links exist (a tiny positive time for 0)."""
    from scipy.sparse import csr_matrix

    if not graph.links:
        return csr_matrix((graph.n, graph.n))
    pairs = np.array(list(graph.links.keys()), dtype=np.int64).reshape(-1, 2)
    times = np.fromiter(graph.links.values(), dtype=float, count=len(graph.links))
    keys = pairs[:, 0] * graph.n + pairs[:, 1]
    order = np.argsort(keys)
    back_keys = pairs[:, 1] * graph.n + pairs[:, 0]
    where = np.minimum(np.searchsorted(keys[order], back_keys), len(keys) - 1)
    found = keys[order][where] == back_keys
    both = np.flatnonzero(found)
    weights = np.maximum(times[both] + times[order][where[both]], 1e-300)
    return csr_matrix((weights, (pairs[both, 0], pairs[both, 1])), shape=(graph.n, graph.n))
