"""Stochastic Frank-Wolfe over a nuclear-norm ball: SFW-dist, SFW-asyn and SVRF-asyn (Zhang et al., seed 003).

Every step is X <- (1 - eta) X + eta theta u v^T with eta = 2/(k+2) and (u, v) from the linear
minimisation oracle of a minibatch gradient, so X stays in the ball.
- sfw_dist: each iteration every worker computes a share of the minibatch gradient (a
  rows x cols matrix on the wire), the server averages, runs the oracle and broadcasts X.
- sfw_asyn: a worker computes a minibatch gradient at its copy of X and its leading singular
  pair and sends only (u, v). The server drops it if its delay exceeds max_staleness, else
  steps; the worker is sent the steps it has not seen as rank-one deltas (O(rows + cols)
  each) and rebuilds X, instead of receiving X.
- svrf_asyn: the same with the variance-reduced gradient g_S(X) - g_S(W) + grad f(W) of an
  anchor W renewed every `epoch` steps (each worker computes grad f(W) once per anchor);
  the step size restarts with each epoch, as in SVRF (Hazan & Luo 2016).
Batch sizes grow as in the seed's Theorem 1: b_k = min(max_batch, ceil(batch (k+1)^2 / tau)),
tau = max_staleness (default 2n) for the asynchronous methods and 1 for sfw_dist. A 1-SVD
costs `svd_cost` gradients of compute time (the seed's appendix D takes ten): the worker's in
the asynchronous methods; sfw_dist's master SVD is one draw on the master
(`server.master_time`), which every worker's next job waits for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import register_method
from .base import Job, JobKind, Method, Result, Server


class FrankWolfe(Method):
    params = {"max_batch": 1000}

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        if not hasattr(problem, "lmo") or not hasattr(problem, "shape"):
            raise ConfigError(f"method.name: {self.name} needs a problem over a nuclear-norm ball "
                              "(matrix_sensing or pnn)")
        self.rows, self.cols = problem.shape

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if options["max_batch"] < 1 or options.get("max_staleness", 1) < 0 or options.get("epoch", 1) < 1:
            raise ConfigError("method.max_batch and method.epoch must be >= 1, method.max_staleness >= 0")

    def batch_size(self, k: int, divisor: int = 1) -> int:
        """batch (k+1)^2, divided by the staleness tolerance for the asynchronous methods, at most max_batch."""
        return int(min(self.options["max_batch"], math.ceil(self.batch * (k + 1) ** 2 / max(divisor, 1))))

    def staleness(self) -> int:
        """max_staleness, or 2n by default: with n workers a fresh update is typically n steps old."""
        return self.options["max_staleness"] or 2 * self.n_workers

    def fw_step(self, server: Server, u: np.ndarray, v: np.ndarray, eta: float, delta: bool, **trace: Any) -> int:
        """Publish (1 - eta) X + eta theta u v^T; with `delta`, workers may rebuild it from (u, v)."""
        weight = eta * self.problem.radius
        x_next = server.new_point()
        np.multiply(server.x, 1.0 - eta, out=x_next)
        x_next.reshape(self.rows, self.cols)[...] += weight * np.outer(u, v)  # the same arithmetic as apply_delta
        step = np.concatenate([[1.0 - eta, weight], u, v]) if delta else None
        return server.publish(x_next, delta=step, **trace)

    def split(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return vector[: self.rows], vector[self.rows :]


@register_method
class SFWDist(FrankWolfe):
    name = "sfw_dist"
    description = "synchronous stochastic Frank-Wolfe: workers send minibatch gradient matrices, the server broadcasts X"
    paper = "Zhang, Lin, Zhang, Baraniuk, SFW-asyn (Algorithm 1: SFW-dist), 2020"
    params = {"max_batch": 1000, "svd_cost": 10}

    def start(self, server: Server) -> None:
        self.sum = np.zeros(self.problem.dim)
        self.k = 0
        self.round(server)

    def round(self, server: Server) -> None:
        share = math.ceil(self.batch_size(self.k) / server.n_workers)
        self.sum[:] = 0.0
        self.count = 0
        self.waiting = set(range(server.n_workers))
        # The master's 1-SVD of the previous round: one draw on the master, which every worker of
        # this round waits for (not a cost added to each worker's own random job time).
        wait = server.master_time(self.options["svd_cost"]) if self.k else 0.0
        for worker in range(server.n_workers):
            server.assign(worker, Job(JobKind.GRAD, server.version, share, wait=wait))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        self.sum += result.n_grads * result.vector
        self.count += result.n_grads
        self.waiting.discard(worker)
        if not self.waiting:
            u, v = self.problem.lmo(self.sum / self.count)
            self.fw_step(server, u, v, 2.0 / (self.k + 2), delta=False, grads_used=self.count, max_delay=0)
            self.k += 1
            self.round(server)
        return True


@register_method
class SFWAsyn(FrankWolfe):
    name = "sfw_asyn"
    description = "asynchronous stochastic Frank-Wolfe: workers send (u, v) of their minibatch gradient; rank-one updates back"
    paper = "Zhang, Lin, Zhang, Baraniuk, SFW-asyn (Algorithm 3), 2020"
    params = {"max_batch": 1000, "max_staleness": 0, "svd_cost": 10}

    def start(self, server: Server) -> None:
        for worker in range(server.n_workers):
            self.give(server, worker)

    def give(self, server: Server, worker: int) -> None:
        batch = self.batch_size(server.version, self.staleness())
        server.assign(worker, Job(JobKind.LMO, server.version, batch, extra_grads=self.options["svd_cost"]))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        accepted = result.delay <= self.staleness()
        if accepted:
            u, v = self.split(result.vector)
            k = server.version
            self.fw_step(server, u, v, 2.0 / (k + 2), delta=True, grads_used=result.n_grads, max_delay=result.delay)
        self.give(server, worker)
        return accepted


@register_method
class SVRFAsyn(FrankWolfe):
    name = "svrf_asyn"
    description = "asynchronous variance-reduced Frank-Wolfe: (u, v) of g_S(X) - g_S(W) + grad f(W), anchor W per epoch"
    paper = "Zhang, Lin, Zhang, Baraniuk, SFW-asyn (Algorithm 5: SVRF-asyn), 2020; Hazan & Luo, ICML 2016"
    params = {"max_batch": 1000, "max_staleness": 0, "epoch": 50, "svd_cost": 10}

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        if problem.n_samples is None:
            raise ConfigError("method.name: svrf_asyn needs a finite-sum problem (its anchor gradient is a full pass)")

    def start(self, server: Server) -> None:
        self.anchor = server.version
        server.pin(self.anchor)
        self.inner = 0
        self.worker_anchor = [-1] * server.n_workers  # the anchor each worker has the full gradient of
        for worker in range(server.n_workers):
            self.give(server, worker)

    def give(self, server: Server, worker: int) -> None:
        fresh = self.worker_anchor[worker] != self.anchor
        self.worker_anchor[worker] = self.anchor
        server.assign(worker, Job(
            JobKind.LMO_VR, server.version, self.batch_size(self.inner, self.staleness()),
            version2=self.anchor, extra_grads=self.options["svd_cost"] + (self.problem.n_samples if fresh else 0),
        ))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        # A result from before the current anchor used the old W: its correction term is stale.
        accepted = result.delay <= self.staleness() and result.version >= self.anchor
        if accepted:
            u, v = self.split(result.vector)
            self.fw_step(server, u, v, 2.0 / (self.inner + 2), delta=True, grads_used=result.n_grads,
                         max_delay=result.delay)
            self.inner += 1
            if self.inner == self.options["epoch"]:
                server.unpin(self.anchor)
                self.anchor = server.version
                server.pin(self.anchor)
                self.inner = 0
        self.give(server, worker)
        return accepted
