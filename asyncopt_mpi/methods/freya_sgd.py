"""Freya SGD: SGD on a finite sum whose batches are collected with ComputeBatch (seed 000).

x^{k+1} = x^k - gamma * mean of the first S sampled gradients grad f_j(x^k) to arrive from
any worker; the rest is cancelled. S = method.S, else ceil(sqrt(m)).
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from . import register_method
from .base import Method, Result, Server
from .finite_sum import ComputeBatch


@register_method
class FreyaSGD(Method):
    name = "freya_sgd"
    description = "SGD on a finite sum; each batch is the first S sampled gradients to arrive (ComputeBatch)"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024"
    params = {"S": 0, "block": 1}

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        if problem.n_samples is None:
            raise ConfigError("method.name: freya_sgd needs a finite-sum problem (problem.samples > 0 or a data file)")
        self.S = self.options["S"] or math.ceil(math.sqrt(problem.n_samples))

    def start(self, server: Server) -> None:
        self.batch_collector = ComputeBatch(
            self.S, self.problem.n_samples, self.problem.dim, self.options["block"], list(range(server.n_workers)),
            server.rng,
        )
        self.batch_collector.start(server, server.version)

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        collector = self.batch_collector
        accepted = collector.on_result(server, worker, result)
        if collector.done:
            version = server.step(collector.sum, self.lr / collector.count, grads_used=collector.count, max_delay=0)
            collector.start(server, version)
        return accepted
