"""Accelerated Rennala SGD: Rennala's batch collection inside an accelerated outer loop (seed 001; smooth convex).

The outer loop is AC-SA (Lan 2012; Ghadimi & Lan 2012): with alpha_k = 2/(k+1) and
gamma_k = gamma (k+1)/2, the gradient is a Rennala batch of S fresh gradients at
y_k = (1 - alpha_k) x_k + alpha_k z_k; then z_{k+1} = z_k - gamma_k g and
x_{k+1} = (1 - alpha_k) x_k + alpha_k z_{k+1}. Workers compute at y (the published point);
the reported iterate is x. Only the step differs from Rennala SGD.
"""

from __future__ import annotations

import numpy as np

from . import register_method
from .base import Server
from .collect import BatchCollector
from .rennala_sgd import RennalaSGD


@register_method
class AcceleratedRennalaSGD(RennalaSGD):
    name = "accelerated_rennala_sgd"
    description = "AC-SA accelerated SGD whose gradient at each extrapolated point is a Rennala batch (convex problems)"
    paper = "Tyurin & Richtarik, NeurIPS 2023 (accelerated variant); Lan, Math. Program. 2012"

    def start(self, server: Server) -> None:
        self.k = 1
        self.x = np.array(server.x)  # the aggregated iterate (reported)
        self.z = np.array(server.x)  # the gradient-step sequence
        super().start(server)

    def every_result(self, server: Server) -> None:
        """No rule: Rennala's (x -= lr * mean) is not this step, so every result goes through on_result."""
        return None

    def step(self, server: Server, collector: BatchCollector) -> None:
        alpha, gamma = 2.0 / (self.k + 1), self.lr * (self.k + 1) / 2.0
        self.z -= (gamma / collector.count) * collector.sum.value()
        self.x *= 1.0 - alpha
        self.x += alpha * self.z
        self.k += 1
        alpha_next = 2.0 / (self.k + 1)
        y = server.new_point()
        np.multiply(self.x, 1.0 - alpha_next, out=y)
        y += alpha_next * self.z
        server.publish(y, grads_used=collector.count, max_delay=0)

    def iterate(self, server: Server) -> np.ndarray:
        return self.x

    def state_shapes(self) -> dict[str, int]:
        return {"z": self.problem.dim, "k": 1, "point": self.problem.dim}

    def state(self, server: Server) -> dict[str, np.ndarray]:
        return {"z": self.z, "k": np.array([self.k]), "point": server.x}

    def load_state(self, server: Server, state: dict[str, np.ndarray], iterate: np.ndarray) -> None:
        self.x[:] = iterate
        self.z[:] = state["z"]
        self.k = int(state["k"][0])
