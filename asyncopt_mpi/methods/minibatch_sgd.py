"""Minibatch SGD: every worker computes `batch` gradients at x^k; the server waits for all n."""

from __future__ import annotations

import numpy as np

from . import register_method
from .base import Job, JobKind, Method, Result, Server


@register_method
class MinibatchSGD(Method):
    name = "minibatch_sgd"
    description = "synchronous minibatch SGD; each step waits for the slowest worker"
    paper = "baseline (e.g. Tyurin & Richtarik, NeurIPS 2023, Sec. 1)"

    def start(self, server: Server) -> None:
        self.sum = server.vector_sum()
        self.grads = 0
        self.answered = 0
        self._assign_all(server)

    def _assign_all(self, server: Server) -> None:
        for worker in range(server.n_workers):
            server.assign(worker, Job(JobKind.GRAD, server.version, self.batch))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        # Results carry a batch mean; weight by the batch so the step uses the mean of all gradients.
        self.sum.add(result, result.n_grads)
        self.grads += result.n_grads
        self.answered += 1
        if self.answered == server.n_workers:
            server.step(self.sum, self.lr / self.grads, grads_used=self.grads, max_delay=0)
            self.sum.clear()
            self.grads = 0
            self.answered = 0
            self._assign_all(server)
        return True
