"""RelaySGD over a spanning tree of the worker graph: every node's model reaches every other once a round, relayed.

Vogels, He, Koloskova, Karimireddy, Lin, Stich & Jaggi, "RelaySum for decentralized deep
learning on heterogeneous data", NeurIPS 2021, Algorithm 1 (RelaySGD, the RelaySum/Model
variant; the authors' code, github epfml/relaysgd, `relaysum_model`). On a spanning tree (here the
shortest-path tree rooted at the pivot, the graph centre by default), node i in round t

    x_i^{t+1/2} = x_i^t - lr g_i(x_i^t)
    sends each tree neighbour j  m_{i->j}^t = x_i^{t+1/2} + sum_{k in N_i \\ j} m_{k->i}^{t-1}
                                 c_{i->j}^t = 1 + sum_{k in N_i \\ j} c_{k->i}^{t-1}
    x_i^{t+1} = (x_i^{t+1/2} + sum_j m_{j->i}^t + (n - 1 - sum_j c_{j->i}^t) x^0) / n

with m^{-1} = 0, c^{-1} = 0 and g_i a stochastic gradient of f_i (worker i's shard; the method
minimises (1/n) sum_i f_i). The models still on their way are stood in for by x^0, as in the
paper. Relaying means node k's half-step model of round s reaches node i at hop distance
d(i, k) in the messages of round s + d(i, k) - 1, d(i, k) hops, one a round, exactly once: a
round's average holds every node at most once, each delayed by its distance. One message of d
floats crosses each tree link each way each round.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import asyncopt_mpi as ao  # written against the public API only, as a plugin would be

RELAY = 6  # message kind: a relayed sum of models, `count` of them


class RelayNode:
    """Node i of RelaySGD on the tree: relays what its other tree neighbours sent last round with its own model."""

    def __init__(self, node: int, x0: np.ndarray, lr: float, batch: int, neighbours: list[int], n_nodes: int,
                 record: ao.PivotRecord):
        self.node = node
        self.x0 = x0.copy()
        self.x = x0.copy()
        self.lr = lr
        self.batch = batch
        self.neighbours = neighbours
        self.n_nodes = n_nodes
        self.record = record
        self.round = 0
        zero = np.zeros_like(self.x0)
        self.previous: dict[int, tuple[np.ndarray, int]] = {j: (zero, 0) for j in neighbours}  # m_{j->i}^{t-1}, c
        self.half: np.ndarray | None = None  # x_i^{t+1/2}; None while computing
        self.inbox: dict[int, dict[int, tuple[np.ndarray, int]]] = {}  # round -> neighbour -> (m, c)

    def start(self, net: ao.Net) -> None:
        net.compute(self.round, self.x, self.batch)

    def on_gradient(self, net: ao.Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        self.half = self.x - self.lr * gradient
        self.record.job_done(net, self.node, self.round)
        relayed = sum((vector for vector, _ in self.previous.values()), np.zeros_like(self.half))
        relayed_count = sum(count for _, count in self.previous.values())
        for neighbour in self.neighbours:
            vector, count = self.previous[neighbour]  # what j sent is not sent back to j
            net.send(ao.Message(RELAY, self.round, neighbour, self.node, self.half + (relayed - vector),
                             count=1 + relayed_count - count))
        self._average(net)

    def on_message(self, net: ao.Net, message: ao.Message) -> None:
        self.inbox.setdefault(message.version, {})[message.origin] = (message.vector.copy(), message.count)
        self.record.message(net, message.origin, message.kind, message.version)
        self._average(net)

    def on_link_free(self, net: ao.Net, to: int) -> None:
        pass

    def _average(self, net: ao.Net) -> None:
        """End the round once this node's half step and every tree neighbour's message are in."""
        got = self.inbox.get(self.round, {})
        if self.half is None or len(got) < len(self.neighbours):
            return
        self.inbox.pop(self.round, None)
        total = self.half.copy()
        count = 1
        for vector, relayed_count in got.values():
            total += vector
            count += relayed_count
        total += (self.n_nodes - count) * self.x0
        self.x = total / self.n_nodes
        self.previous, self.half = got, None
        self.round += 1
        self.record.round_done(net, self.x, self.round)
        net.compute(self.round, self.x, self.batch)


@ao.register_method
class RelaySGD(ao.DecentralizedMethod):
    name = "relay_sgd"
    objective = "worker_mean"  # minimises (1/n) sum_i f_i over the shards (asyncopt_mpi.objective)
    description = ("decentralized, heterogeneous data: on the pivot's spanning tree each node sends each neighbour its "
                   "half step plus what its other neighbours relayed; x = average of the n models (x0 for those on "
                   "the way)")
    paper = ("Vogels, He, Koloskova, Karimireddy, Lin, Stich & Jaggi, RelaySum for decentralized deep learning on "
             "heterogeneous data, NeurIPS 2021")
    node_class = RelayNode

    @classmethod
    def make_nodes(cls, x0: np.ndarray, lr: float, batch: int, plan: ao.Plan,
                   nodes: range | list[int]) -> dict[int, Any]:
        tree, n = plan.tree, plan.graph.n
        record = ao.PivotRecord(n, batch)
        policies = {}
        for node in nodes:
            parent = int(tree.parent[node])
            neighbours = ([parent] if parent >= 0 else []) + [int(child) for child in tree.children[node]]
            policies[node] = cls.node_class(node, x0, lr, batch, neighbours, n, record)
        return policies
