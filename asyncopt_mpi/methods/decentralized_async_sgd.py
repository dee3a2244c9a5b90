"""Asynchronous decentralized SGD over the worker graph: local steps as gradients complete, pairwise gossip on every edge.

Even, Koloskova & Massoulie, "Asynchronous SGD on graphs: a unified framework for asynchronous
decentralized and federated optimization", AISTATS 2024. This module follows the paper's
asynchronous decentralized instance of its framework, asynchronous gossip with local SGD: node
i computes stochastic gradients g_i of its own f_i (worker i's shard; the method minimises
(1/n) sum_i f_i), each at its model when the computation starts, and applies each as it
completes to its model as it is then,

    x_i <- x_i - lr g_i(x_i at the computation's start),

starting the next one at once: no rounds and no waiting, so a fast node takes more local steps
than a slow one. Independently, the graph's edges gossip, x_i, x_j <- (x_i + x_j) / 2, each
exchange paying the edge's rho.

Where the paper is silent, the project's choices:
- A pairwise average is atomic at both nodes, as in the paper's x_i, x_j <- (x_i + x_j) / 2: a
  node is in one exchange at a time. Node i starts an exchange with one of its higher-numbered
  neighbours j (in turn) by offering its model s_i; j, unless it waits for a share itself,
  answers at once with d = (s_i - x_j) / 2, adds d to x_j and sends d back; i subtracts d from
  x_i. Offers that reach a node while it waits for a share are answered, in order, when the
  share is in. The two changes are exact negatives of each other, so an exchange leaves
  x_i + x_j unchanged even when local steps land at i while it is on the way (i then keeps
  them on top of the average; without them both end at (s_i + x_j) / 2). Since a node only
  waits for a higher-numbered one, waits never form a cycle. An exchange is two messages of d
  floats, one each way, so it takes the link's rho twice. (Letting a node average with all its
  neighbours at once from one snapshot, x_i += sum_j (s_j - s_i) / 2, gives s_i the weight
  1 - deg(i) / 2 and diverges on a mesh, as tried.)
- Every node starts its next exchange as soon as the last one is done, over the direct link:
  gossip and computation overlap. A link with rho = 0 would gossip infinitely often in no time,
  so every link must take some time.
- The file follows the pivot's model (the graph centre unless `method.pivot` names a worker):
  it publishes after each of its local steps (grads_used: its job's gradients) and after each
  of its exchanges (grads_used 0). The pivot's /metrics grads and stop.gradients count the
  pivot's own gradients; /workers/grads holds every node's.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np

import asyncopt_mpi as ao  # written against the public API only, as a plugin would be


class GossipKind(IntEnum):
    """What a gossip message carries (7 and 8: the numbers asyncopt_mpi.MessageKind leaves to this method)."""

    OFFER = 7  # initiator -> responder: the initiator's model; `version` numbers the initiator's exchanges
    SHARE = 8  # responder -> initiator: d = (offered - x_responder) / 2, which the responder added to its model


class AsyncGossipNode:
    """Node i: steps on every finished gradient, averages its model with one neighbour after another."""

    def __init__(self, node: int, x0: np.ndarray, lr: float, batch: int, neighbours: list[int]):
        self.node = node
        self.x = x0.copy()
        self.lr = lr
        self.batch = batch
        self.neighbours = neighbours
        self.higher = [j for j in neighbours if j > node]  # the edges this node starts exchanges on
        self.version = 0  # how often the model changed (what the pivot publishes)
        self.local_steps = 0
        self.exchanges = 0  # exchanges this node started
        self.waiting = -1  # the neighbour whose share this node waits for (-1: none)
        self.offers: list[ao.Message] = []  # offers that came while waiting, answered in order afterwards

    def start(self, net: ao.Net) -> None:
        self._offer(net)
        net.compute(self.local_steps, self.x, self.batch)

    def on_gradient(self, net: ao.Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        self.x -= self.lr * gradient
        self.local_steps += 1
        self.version += 1
        if net.parent < 0:
            net.arrived(self.node, ao.MessageKind.GRADS, version, n_grads, True)
            net.publish(self.x, self.version, n_grads)
        net.compute(self.local_steps, self.x, self.batch)

    def on_message(self, net: ao.Net, message: ao.Message) -> None:
        if message.kind == GossipKind.OFFER and self.waiting >= 0:
            message.vector = message.vector.copy()
            self.offers.append(message)
            return
        if message.kind == GossipKind.OFFER:
            self._answer(net, message)
            return
        self._gossip(net, message, (self.node, message.version), -message.vector)  # the share: x_i -= d
        self.waiting = -1
        while self.offers:
            self._answer(net, self.offers.pop(0))
        self._offer(net)

    def on_link_free(self, net: ao.Net, to: int) -> None:
        pass

    def _answer(self, net: ao.Net, offer: ao.Message) -> None:
        share = 0.5 * (offer.vector - self.x)
        self._gossip(net, offer, (offer.origin, offer.version), share)
        net.send(ao.Message(GossipKind.SHARE, offer.version, offer.origin, self.node, share))

    def _offer(self, net: ao.Net) -> None:
        """Start the next exchange, with the higher neighbours in turn (none: this node only answers)."""
        if not self.higher:
            return
        self.waiting = self.higher[self.exchanges % len(self.higher)]
        net.send(ao.Message(GossipKind.OFFER, self.exchanges, self.waiting, self.node, self.x))
        self.exchanges += 1

    def _gossip(self, net: ao.Net, message: ao.Message, exchange: tuple[int, int], change: np.ndarray) -> None:
        """Add this end's half of exchange (initiator, number), which `message` brought, to the model."""
        self.x += change
        self.version += 1
        if net.parent < 0:
            net.arrived(message.origin, message.kind, exchange[1], 0, True)
            net.publish(self.x, self.version, 0)


@ao.register_method
class DecentralizedAsyncSGD(ao.DecentralizedMethod):
    name = "decentralized_async_sgd"
    objective = "worker_mean"  # minimises (1/n) sum_i f_i over the shards (asyncopt_mpi.objective)
    description = ("decentralized, heterogeneous data, no rounds: each node steps with each gradient as it completes "
                   "and every graph edge averages its two models pairwise, back to back")
    paper = ("Even, Koloskova & Massoulie, Asynchronous SGD on graphs: a unified framework for asynchronous "
             "decentralized and federated optimization, AISTATS 2024")
    routes = ao.NeighbourRoutes
    node_class = AsyncGossipNode

    @classmethod
    def make_nodes(cls, x0: np.ndarray, lr: float, batch: int, plan: ao.Plan,
                   nodes: range | list[int]) -> dict[int, Any]:
        graph = plan.graph
        instant = sorted(link for link, rho in graph.links.items() if rho <= 0)
        if instant:
            raise ao.ConfigError(f"graph: decentralized_async_sgd gossips back to back, so every link must take time; "
                              f"link {instant[0][0]} -> {instant[0][1]} has rho = 0 (set graph.rho > 0)")
        return {node: cls.node_class(node, x0, lr, batch, graph.neighbours(node)) for node in nodes}
