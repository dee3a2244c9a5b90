"""What decentralized methods share besides the node interface: routes over direct links, the pivot's record of rounds.

Both are public (`asyncopt_mpi.NeighbourRoutes`, `asyncopt_mpi.PivotRecord`). In a round-based
method (gradient_tracking, relay_sgd) every node runs rounds: one job (a stochastic gradient of
its own f_i) at its model, then one exchange with each neighbour; a node ends round k when its job
and every neighbour's round-k messages are in, so no node runs more than one round ahead of a
neighbour. There is no server in the math: the pivot (the graph centre unless `method.pivot`
names a worker) is only the node whose model the results file follows. It publishes its model
after every round, with the round's gradients, one job at each of the n nodes, as grads_used,
counts those n jobs when its own job of the round is done (grads in /metrics, stop.gradients),
and records every neighbour message that reaches it as an event.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Tree
from .decentralized import Kind, Net


class NeighbourRoutes(Tree):
    """The pivot's tree, except that a message to a graph neighbour takes the direct link (a method's `routes`)."""

    def __init__(self, graph: Graph, root: int):
        super().__init__(graph, root)
        self.links = graph.links

    def next_hop(self, node: int, dest: int) -> int:
        return dest if (node, dest) in self.links else super().next_hop(node, dest)


class PivotRecord:
    """What a node of a round-based method reports when it is the pivot (net.parent < 0); nothing elsewhere.

    One record is shared by all nodes of a run: a round counts one job of `batch` gradients at each
    of the `n_nodes` nodes.
    """

    def __init__(self, n_nodes: int, batch: int):
        self.round_grads = n_nodes * batch

    def job_done(self, net: Net, node: int, version: int) -> None:
        """The node's job of round `version` finished: the round's gradients count."""
        if net.parent < 0:
            net.arrived(node, Kind.GRADS, version, self.round_grads, True)

    def message(self, net: Net, origin: int, kind: int, version: int) -> None:
        """A neighbour's message of round `version` reached the node: an /events row."""
        if net.parent < 0:
            net.arrived(origin, kind, version, 0, True)

    def round_done(self, net: Net, x: np.ndarray, version: int) -> None:
        """The node ended round `version - 1` at x: the file's next step."""
        if net.parent < 0:
            net.publish(x, version, self.round_grads)
