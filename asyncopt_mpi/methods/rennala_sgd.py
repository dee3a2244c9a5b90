"""Rennala SGD: minibatch SGD with asynchronous batch collection (Tyurin & Richtarik, NeurIPS 2023; seed 001).

At iteration k the server collects gradients computed at x^k from whoever finishes;
stale ones are dropped and their worker restarted at x^k. After S gradients:
x^{k+1} = x^k - gamma * mean. Workers never wait.
S = max(ceil(sigma2/eps), 1) when both are given, else method.batch.
"""

from __future__ import annotations

from . import register_method
from .base import Job, JobKind, Method, Result, Server, StepAndRestart
from .collect import BatchCollector, batch_from_noise


@register_method
class RennalaSGD(Method):
    name = "rennala_sgd"
    description = "collects S fresh gradients at x^k from whoever finishes (stale ones dropped), then steps"
    paper = "Tyurin & Richtarik, Optimal time complexities of parallel stochastic optimization, NeurIPS 2023"
    params = {"sigma2": 0.0, "eps": 0.0}

    def start(self, server: Server) -> None:
        self.collector = BatchCollector(server, batch_from_noise(self.options, default=self.batch))
        self.collector.reset(server.version)
        for worker in range(server.n_workers):
            server.assign(worker, Job(JobKind.GRAD, server.version))

    def every_result(self, server: Server) -> StepAndRestart:
        """Every result: kept if fresh, a step once S are in, then its worker restarts at the current point."""
        return StepAndRestart(self.lr, Job(JobKind.GRAD, -1), collect=self.collector.size, fresh_only=True)

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        collector = self.collector
        accepted = collector.add(result)
        if collector.full:
            self.step(server, collector)
            collector.reset(server.version)
        server.assign(worker, Job(JobKind.GRAD, server.version))
        return accepted

    def step(self, server: Server, collector: BatchCollector) -> None:
        server.step(collector.sum, self.lr / collector.count, grads_used=collector.count, max_delay=0)
