"""Malenia SGD: heterogeneous data, each worker samples its own shard (Tyurin & Richtarik, NeurIPS 2023; seed 001).

The server keeps per-worker sums g_i and counts B_i of gradients at x^k and collects until
every worker contributed and (1/n sum_i 1/B_i)^{-1} >= S/n; then
x^{k+1} = x^k - gamma (1/n) sum_i g_i/B_i, so every worker's data weighs the same however
fast it is. S = max(ceil(sigma2/eps), n) when both are given, else max(method.batch, n).
"""

from __future__ import annotations

import numpy as np

from . import register_method
from .base import Job, JobKind, Method, Result, Server
from .collect import batch_from_noise


@register_method
class MaleniaSGD(Method):
    name = "malenia_sgd"
    objective = "worker_mean"  # minimises (1/n) sum_i f_i over the shards (asyncopt_mpi.objective)
    description = "per-worker sums at x^k until the harmonic mean of counts reaches S/n; step with (1/n) sum g_i/B_i"
    paper = "Tyurin & Richtarik, Optimal time complexities of parallel stochastic optimization, NeurIPS 2023"
    params = {"sigma2": 0.0, "eps": 0.0}

    def start(self, server: Server) -> None:
        n = server.n_workers
        self.S = batch_from_noise(self.options, default=self.batch, floor=n)
        self.sums = np.zeros((n, self.problem.dim))
        self.counts = [0] * n  # B_i as Python ints: one result's bookkeeping stays off numpy scalars
        self.inverse_count_sum = 0.0  # sum over contributing workers of 1/B_i, kept incrementally
        self.contributors = 0
        self.version = server.version
        for worker in range(n):
            server.assign(worker, Job(JobKind.GRAD, server.version))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        accepted = result.version == self.version
        if accepted:
            n_grads = result.n_grads
            count = self.counts[worker]
            if count:
                self.inverse_count_sum -= 1.0 / count
            else:
                self.contributors += 1
            count += n_grads
            self.counts[worker] = count
            self.inverse_count_sum += 1.0 / count
            # 1 * vector is the vector itself (the product is exact): one allocation less per result
            self.sums[worker] += result.vector if n_grads == 1 else n_grads * result.vector
            n = server.n_workers
            # (1/n sum 1/B_i)^{-1} >= S/n  <=>  n^2 >= S * sum 1/B_i
            if self.contributors == n and n * n >= self.S * self.inverse_count_sum:
                counts = np.array(self.counts, dtype=np.int64)
                direction = (self.sums / counts[:, None]).mean(axis=0)
                server.step(direction, self.lr, grads_used=int(counts.sum()), max_delay=0)
                self.sums[:] = 0.0
                self.counts = [0] * n
                self.inverse_count_sum = 0.0
                self.contributors = 0
                self.version = server.version
        server.assign(worker, Job(JobKind.GRAD, server.version))
        return accepted
