"""Asynchronous batch collection at one point: Rennala SGD's rule (Tyurin & Richtarik, NeurIPS 2023).

Gradients count only if they were computed at the point being collected for; a stale one
is dropped. Shared by rennala_sgd and accelerated_rennala_sgd.
"""

from __future__ import annotations

import numpy as np

from .base import Result, Server


class BatchCollector:
    """Sums the fresh gradients at x^version (a server-owned VectorSum) until `size` are in."""

    def __init__(self, server: Server, size: int):
        self.size = size
        self.sum = server.vector_sum()
        self.count = 0
        self.version = 0

    def reset(self, version: int) -> None:
        """Start collecting for point `version`."""
        self.sum.clear()
        self.count = 0
        self.version = version

    def add(self, result: Result) -> bool:
        """Take a result if it was computed at the collected point; False (dropped) otherwise."""
        if result.version != self.version:
            return False
        self.sum.add(result, result.n_grads)  # results carry batch means
        self.count += result.n_grads
        return True

    @property
    def full(self) -> bool:
        return self.count >= self.size

    def mean(self) -> np.ndarray:
        return self.sum.value() / self.count


def batch_from_noise(options: dict, default: int, floor: int = 1) -> int:
    """S = max(ceil(sigma2/eps), floor) when both are given (> 0), else max(default, floor)."""
    sigma2, eps = options.get("sigma2", 0.0), options.get("eps", 0.0)
    if sigma2 > 0 and eps > 0:
        return max(int(np.ceil(sigma2 / eps)), floor)
    return max(int(default), floor)
