"""Ringmaster ASGD: asynchronous SGD that ignores gradients with delay >= R (Maranjyan, Tyurin, Richtarik, 2025).

A gradient computed R or more updates ago is discarded and its worker restarted at the
current point, which bounds the staleness of every applied gradient by R - 1.
R = max(1, ceil(sigma2/eps)) when both are given, else method.R, else the number of workers.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from . import register_method
from .base import Job, JobKind, Method, Result, Server
from .collect import batch_from_noise


@register_method
class RingmasterASGD(Method):
    name = "ringmaster_asgd"
    description = "asynchronous SGD that discards gradients with delay >= R and restarts their worker"
    paper = "Maranjyan, Tyurin, Richtarik, Ringmaster ASGD, ICML 2025"
    params = {"R": 0, "sigma2": 0.0, "eps": 0.0}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if options["R"] < 0:
            raise ConfigError(f"method.R: must be >= 1 (0: from sigma2/eps or the number of workers), got {options['R']}")

    def start(self, server: Server) -> None:
        self.threshold = self.options["R"] or batch_from_noise(self.options, default=server.n_workers)
        for worker in range(server.n_workers):
            server.assign(worker, Job(JobKind.GRAD, server.version, self.batch))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        accepted = result.delay < self.threshold
        if accepted:
            server.step(result, self.lr, grads_used=result.n_grads, max_delay=result.delay)
        server.assign(worker, Job(JobKind.GRAD, server.version, self.batch))
        return accepted
