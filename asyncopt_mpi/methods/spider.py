"""SPIDER on a finite sum: the path-integrated gradient estimator of Fang et al. (NeurIPS 2018), every batch split over all workers.

Fang, Li, Lin, Zhang, "SPIDER: Near-optimal non-convex optimization via stochastic path-integrated
differential estimator", NeurIPS 2018, Algorithm 1 (SPIDER-SFO), finite-sum case:
- v_k = grad f(x_k), the full gradient over [m], when k mod q = 0;
- otherwise v_k = grad_S(x_k) - grad_S(x_{k-1}) + v_{k-1}, grad_S the mean over S indices drawn
  uniformly (with replacement) from [m];
- x_{k+1} = x_k - lr v_k. SPIDER-SFO caps the step's length at eps/(L n0); the constant step used
  here is SpiderBoost's (Wang et al., NeurIPS 2019), the same estimator with step 1/(2L).
Defaults S = q = ceil(sqrt(m)): Fang et al.'s finite-sum choice S_2 = sqrt(m)/n0, q = n0 sqrt(m)
with n0 = 1.
The paper runs on one machine; here each batch (the m indices of a full gradient, the S of a
difference) is split evenly over the workers and a step waits for all parts, as Soviet PAGE
does (Freya PAGE, seed 001 line 1283). When a batch has fewer indices than there are workers,
the workers that take part are drawn uniformly each step, so who works does not follow speed.
A resumed run starts a new epoch with a full gradient (the estimator is not saved).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import asyncopt_mpi as ao  # written against the public API only, as a plugin would be


@ao.register_method
class Spider(ao.Method):
    name = "spider"
    description = ("SPIDER: full gradient every q steps, otherwise v += mean of S differences "
                   "grad f_j(x_k) - grad f_j(x_{k-1}); every batch split over all workers, a step waits for all parts")
    paper = "Fang, Li, Lin, Zhang, SPIDER, NeurIPS 2018 (constant step: SpiderBoost, Wang et al., NeurIPS 2019)"
    params = {"S": 0, "q": 0}
    trace_columns = ("full",)

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        if problem.n_samples is None:
            raise ao.ConfigError(
                f"method.name: {self.name} needs a finite-sum problem (problem.samples > 0 or a data file)"
            )
        root = math.ceil(math.sqrt(problem.n_samples))
        self.S = self.options["S"] or root
        self.q = self.options["q"] or root

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        for key in ("S", "q"):
            if options.get(key, 0) < 0:
                raise ao.ConfigError(f"method.{key}: must be >= 0 (0: ceil(sqrt(m))), got {options[key]}")

    def start(self, server: ao.Server) -> None:
        self.v = np.zeros(self.problem.dim)
        self.sum = server.vector_sum()
        self.parts: dict[int, int] = {}  # job id -> indices in it, for the batch under way
        self.count = 0  # indices received for the batch under way
        self.k = 0  # steps since start: v_k is a full gradient when k mod q = 0
        self.full = True
        self.collect_full(server, server.version)

    def batch_indices(self, server: ao.Server) -> np.ndarray:
        """The S indices of one difference, uniformly with replacement from [m]."""
        return server.rng.integers(self.problem.n_samples, size=self.S)

    def split(self, server: ao.Server, indices: np.ndarray, version: int, previous: int = -1) -> None:
        """Gradients at `version` (differences with `previous` if >= 0) over `indices`, split evenly over workers."""
        self.sum.clear()
        self.parts.clear()
        self.count = 0
        kind = ao.JobKind.GRAD_INDICES if previous < 0 else ao.JobKind.GRAD_DIFF
        workers = server.rng.permutation(server.n_workers)[: len(indices)].tolist()
        for worker, part in zip(workers, np.array_split(indices, len(workers))):
            job = ao.Job(kind, version, indices=part, version2=previous)
            server.assign(worker, job)
            self.parts[job.job_id] = len(part)

    def collect_full(self, server: ao.Server, version: int) -> None:
        self.split(server, np.arange(self.problem.n_samples), version)

    def collect_difference(self, server: ao.Server, version: int, previous: int) -> None:
        self.split(server, self.batch_indices(server), version, previous)

    def advance(self, server: ao.Server, max_delay: int) -> None:
        """x_{k+1} = x_k - lr v_k, then start collecting v_{k+1}."""
        previous = server.version
        version = server.step(self.v, self.lr, grads_used=self.count, max_delay=max_delay, full=float(self.full))
        self.k += 1
        self.full = self.k % self.q == 0
        if self.full:
            self.collect_full(server, version)
        else:
            self.collect_difference(server, version, previous)

    def on_result(self, server: ao.Server, worker: int, result: ao.Result) -> bool:
        size = self.parts.pop(result.job_id, None)
        if size is None:
            return False  # not part of the batch under way
        self.sum.add(result, size)  # the result is the mean over its indices
        self.count += size
        if not self.parts:
            mean = self.sum.value() / self.count
            if self.full:
                self.v[:] = mean
            else:
                self.v += mean
            self.advance(server, max_delay=0)
        return True
