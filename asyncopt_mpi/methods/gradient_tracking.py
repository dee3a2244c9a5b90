"""Stochastic Gradient Tracking over the worker graph: every node gossips its model and a tracker of the mean gradient.

Pu & Nedic, "Distributed stochastic gradient tracking methods", Mathematical Programming 187
(2021), algorithm DSGT; Koloskova, Lin & Stich, "An improved analysis of gradient tracking for
decentralized machine learning", NeurIPS 2021, Algorithm 1 (the same recursion). Node i
keeps x_i and a tracker y_i, with y_i^0 = g_i(x_i^0), and in round k

    x_i^{k+1} = sum_j W_ij (x_j^k - lr y_j^k)
    y_i^{k+1} = sum_j W_ij y_j^k + g_i(x_i^{k+1}) - g_i(x_i^k)

where g_i is a stochastic gradient of f_i (worker i's shard; the method minimises
(1/n) sum_i f_i) and W the Metropolis-Hastings weights of the graph, W_ij = 1 / (1 + max(deg i,
deg j)) for neighbours, W_ii = 1 - sum_j W_ij (symmetric, doubly stochastic). Because the columns
of W sum to one, sum_i y_i^k = sum_i g_i(x_i^k) after every round: the trackers' mean is the mean
of the latest local gradients. A node sends its graph neighbours two vectors a round, x_i - lr y_i
and y_i (two messages of d floats, each taking the link's rho: both papers multiply both by W, and
the RelaySGD authors' gradient tracking, github epfml/relaysgd, gossips them in two exchanges),
over the direct link even where the pivot's tree would route otherwise.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np

import asyncopt_mpi as ao  # written against the public API only, as a plugin would be


class TrackingKind(IntEnum):
    """What a message of a round carries (4 and 5: the numbers asyncopt_mpi.MessageKind leaves to this method)."""

    MODEL = 4  # x_j - lr y_j
    TRACKER = 5  # y_j


def metropolis_weights(graph: ao.Graph) -> list[dict[int, float]]:
    """W_ij = 1 / (1 + max(deg i, deg j)) for every neighbour j of every node i (W_ii is the rest)."""
    adjacent: list[set[int]] = [set() for _ in range(graph.n)]
    for i, j in graph.links:
        adjacent[i].add(j)
        adjacent[j].add(i)
    degree = [len(nodes) for nodes in adjacent]
    return [{j: 1.0 / (1 + max(degree[i], degree[j])) for j in sorted(adjacent[i])} for i in range(graph.n)]


class GradientTrackingNode:
    """Node i of DSGT: sends (x_i - lr y_i, y_i) to its neighbours, mixes theirs with W, then computes."""

    def __init__(self, node: int, x0: np.ndarray, lr: float, batch: int, weights: dict[int, float],
                 record: ao.PivotRecord):
        self.node = node
        self.x = x0.copy()
        self.lr = lr
        self.batch = batch
        self.weights = weights
        self.self_weight = 1.0 - sum(weights.values())
        self.record = record
        self.round = 0
        self.y: np.ndarray | None = None  # y_i^k (None until the first gradient)
        self.gradient: np.ndarray | None = None  # g_i(x_i^k)
        self.mixed_y: np.ndarray | None = None  # sum_j W_ij y_j^{k-1}, waiting for g_i(x_i^k)
        self.sent: tuple[np.ndarray, np.ndarray] | None = None  # this round's (x_i - lr y_i, y_i); None while computing
        self.inbox: dict[int, dict[tuple[int, int], np.ndarray]] = {}  # round -> (neighbour, kind) -> vector

    def start(self, net: ao.Net) -> None:
        net.compute(self.round, self.x, self.batch)

    def on_gradient(self, net: ao.Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        gradient = gradient.copy()
        self.y = gradient.copy() if self.mixed_y is None else self.mixed_y + gradient - self.gradient
        self.gradient = gradient
        self.record.job_done(net, self.node, self.round)
        self.sent = (self.x - self.lr * self.y, self.y)
        for neighbour in self.weights:
            net.send(ao.Message(TrackingKind.MODEL, self.round, neighbour, self.node, self.sent[0]))
            net.send(ao.Message(TrackingKind.TRACKER, self.round, neighbour, self.node, self.sent[1]))
        self._mix(net)

    def on_message(self, net: ao.Net, message: ao.Message) -> None:
        self.inbox.setdefault(message.version, {})[(message.origin, message.kind)] = message.vector.copy()
        self.record.message(net, message.origin, message.kind, message.version)
        self._mix(net)

    def on_link_free(self, net: ao.Net, to: int) -> None:
        pass

    def _mix(self, net: ao.Net) -> None:
        """End the round once this node's vectors and both of every neighbour's are in."""
        got = self.inbox.get(self.round, {})
        if self.sent is None or len(got) < 2 * len(self.weights):
            return
        self.inbox.pop(self.round, None)  # a node without neighbours has none
        model, tracker = self.sent
        x = self.self_weight * model
        mixed_y = self.self_weight * tracker
        for neighbour, weight in self.weights.items():
            x += weight * got[(neighbour, TrackingKind.MODEL)]
            mixed_y += weight * got[(neighbour, TrackingKind.TRACKER)]
        self.x, self.mixed_y, self.sent = x, mixed_y, None
        self.round += 1
        self.record.round_done(net, self.x, self.round)
        net.compute(self.round, self.x, self.batch)


@ao.register_method
class GradientTracking(ao.DecentralizedMethod):
    name = "gradient_tracking"
    objective = "worker_mean"  # minimises (1/n) sum_i f_i over the shards (asyncopt_mpi.objective)
    description = ("decentralized, heterogeneous data: each round every node mixes x_j - lr y_j and the trackers y_j of "
                   "its graph neighbours with Metropolis weights and adds its gradient change to its tracker")
    paper = ("Pu & Nedic, Distributed stochastic gradient tracking methods, Math. Programming 2021; Koloskova, Lin & "
             "Stich, An improved analysis of gradient tracking for decentralized machine learning, NeurIPS 2021")
    routes = ao.NeighbourRoutes
    node_class = GradientTrackingNode

    @classmethod
    def make_nodes(cls, x0: np.ndarray, lr: float, batch: int, plan: ao.Plan,
                   nodes: range | list[int]) -> dict[int, Any]:
        weights = metropolis_weights(plan.graph)
        record = ao.PivotRecord(plan.graph.n, batch)
        return {node: cls.node_class(node, x0, lr, batch, weights[node], record) for node in nodes}
