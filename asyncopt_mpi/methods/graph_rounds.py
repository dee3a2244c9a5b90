"""What the synchronous decentralized baselines (gradient_tracking, relay_sgd) share: the method class and the pivot's record.

Every node runs rounds: one job (a stochastic gradient of its own f_i) at its model, then one
exchange with each neighbour; a node ends round k when its job and every neighbour's round-k
messages are in, so no node runs more than one round ahead of a neighbour. There is no server in
the math: the pivot (the graph centre unless `method.pivot` names a worker) is only the node whose
model the results file follows. It publishes its model after every round, with the round's
gradients, one job at each of the n nodes, as grads_used, counts those n jobs when its own job of
the round is done (grads in /metrics, stop.gradients), and records every neighbour message that
reaches it as an event.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np

from ..errors import ConfigError
from .decentralized import DecentralizedMethod, Kind, Net, Plan


class RoundKind(IntEnum):
    """What a message of a round carries (the numbers continue decentralized.Kind's)."""

    MODEL = 4  # gradient_tracking: x_j - lr y_j
    TRACKER = 5  # gradient_tracking: y_j
    RELAY = 6  # relay_sgd: a relayed sum of models, `count` of them


class RoundMethod(DecentralizedMethod):
    """A decentralized method whose nodes run synchronous rounds; subclasses build the nodes."""

    objective = "worker_mean"  # minimises (1/n) sum_i f_i over the shards (asyncopt_mpi.objective)
    params = {"pivot": "center"}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        rule = str(options["pivot"])
        if rule != "center" and not rule.isdigit():
            raise ConfigError(f"method.pivot: {rule!r} is not accepted; accepted: center or a worker index "
                              "(the node whose model the file records)")

    @classmethod
    def make_nodes(cls, x0: np.ndarray, lr: float, batch: int, plan: Plan, nodes: range | list[int]) -> dict[int, Any]:
        raise NotImplementedError


class PivotRecord:
    """What a round node reports when it is the pivot (net.parent < 0); nothing elsewhere."""

    def __init__(self, n_nodes: int, batch: int):
        self.round_grads = n_nodes * batch

    def job_done(self, net: Net, node: int, version: int) -> None:
        if net.parent < 0:
            net.arrived(node, Kind.GRADS, version, self.round_grads, True)

    def message(self, net: Net, origin: int, kind: int, version: int) -> None:
        if net.parent < 0:
            net.arrived(origin, kind, version, 0, True)

    def round_done(self, net: Net, x: np.ndarray, version: int) -> None:
        if net.parent < 0:
            net.publish(x, version, self.round_grads)
