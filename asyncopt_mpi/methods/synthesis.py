"""SYNTHESIS on a finite sum: SPIDER's estimator with synchronous full gradients and asynchronous differences (Liu et al., 2022).

Liu, Zhang, Liu, "SYNTHESIS: A Semi-Asynchronous Path-Integrated Stochastic Gradient Method for
Distributed Learning in Computing Clusters", MobiHoc 2022 (arXiv 2208.08425). What the sources say:
- seed 001, Table 1 (line 1284) and its notes (a), (b): SYNTHESIS computes full gradients (line 3
  of its Algorithm 3) "assuming that it can be done for free and not explaining how", and its
  rates (Theorems 1 and 3) depend on a bound Delta on the delays, set by the slowest worker;
- the paper's abstract: a semi-asynchronous path-integrated (SPIDER-type) method; in the
  distributed-memory setting O(sqrt(m) eps^-2 (Delta + 1) + m) gradients, Delta the largest delay.
The rule run here (the SPIDER recursion of spider.py, made semi-asynchronous):
- synchronous part: when k mod q = 0, v_k = grad f(x_k), the full gradient;
- asynchronous part: a free worker is given S indices drawn uniformly from [m] and the pair of
  consecutive points it holds, (x_j, x_{j-1}), j the current iteration; its answer is applied on
  arrival at iteration k = j + tau_k (tau_k its delay):
  v_k = v_{k-1} + grad_S(x_{k - tau_k}) - grad_S(x_{k - tau_k - 1});
- x_{k+1} = x_k - lr v_k after every full gradient and every arrival.
With one worker (no delays) this is SPIDER with the same batches. The project's choices, where
the sources above are silent (the paper's full text is not among them): the full gradient is
split evenly over all workers and waits for all (the paper takes it as free; Freya PAGE's note
(a)), and at the start of an epoch the differences still running are abandoned, so every
difference applied was taken within its own epoch. Defaults S = q = ceil(sqrt(m)) as SPIDER's.
"""

from __future__ import annotations

import numpy as np

import asyncopt_mpi as ao  # written against the public API only, as a plugin would be


@ao.register_method
class Synthesis(ao.method_class("spider")):  # registered before this module loads (methods/__init__.py)
    name = "synthesis"
    description = ("SYNTHESIS: SPIDER whose full gradients (every q steps) wait for all workers and whose "
                   "differences of S terms at (x_j, x_{j-1}) are applied on arrival, delayed")
    paper = "Liu, Zhang, Liu, SYNTHESIS, MobiHoc 2022 (Table 1 baseline of Freya PAGE, NeurIPS 2024)"

    def collect_full(self, server: ao.Server, version: int) -> None:
        server.cancel_many(np.arange(server.n_workers))  # the epoch's barrier: running differences are abandoned
        self.free = np.arange(server.n_workers)  # every worker gets a difference once the full gradient is in
        super().collect_full(server, version)

    def give_differences(
        self, server: ao.Server, workers: np.ndarray, version: int, previous: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each of `workers` computes the mean over S fresh indices of grad f_j(x_version) - grad f_j(x_previous).

        Returns the job ids and the indices (row i: workers[i]'s) of the jobs given.
        """
        indices = server.rng.integers(self.problem.n_samples, size=(len(workers), self.S))
        return server.assign_many(workers, ao.Job(ao.JobKind.GRAD_DIFF, version, version2=previous), indices), indices

    def collect_difference(self, server: ao.Server, version: int, previous: int) -> None:
        self.give_differences(server, self.free, version, previous)

    def on_result(self, server: ao.Server, worker: int, result: ao.Result) -> bool:
        if self.full:
            return super().on_result(server, worker, result)
        self.v += result.vector  # the difference at (x_{k - tau_k}, x_{k - tau_k - 1})
        self.count = self.S
        self.free = [worker]
        self.advance(server, max_delay=result.delay)
        return True
