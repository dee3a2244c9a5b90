"""PAGE-type methods on a finite sum: Freya PAGE (seed 000, Algorithm 1) and its Soviet (all workers, synchronous) and Hero (fastest worker) baselines.

g^0 = full gradient at x^0. Each step: x^{k+1} = x^k - gamma g^k; then with probability p
g^{k+1} = full gradient at x^{k+1}, otherwise g^{k+1} = g^k + (1/S) sum of S differences
grad f_j(x^{k+1}) - grad f_j(x^k). Defaults S = ceil(sqrt(m)), p = S/(m+S). The methods
differ only in how the two kinds of gradient are collected. Freya PAGE's full gradients
follow method.gradient_sampling: "unreceived" (Algorithm 2: from the indices not received
yet) or "permutation" (a project option: from a permutation of [m]); see finite_sum.py.
method.full_gradient says how their sum reaches the server: "per_gradient" (Algorithm 2: each
block's gradient is sent) or "allreduce" (seed 001's note: each worker sums its blocks
locally, then one ring AllReduce, charged by finite_sum.allreduce_floats).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..inputs import shown
from . import register_method
from .base import Method, Result, Server
from .finite_sum import FULL_GRADIENTS, GRADIENT_SAMPLINGS, AllReduceGradient, ComputeBatch, SplitCollect


class PageMethod(Method):
    params = {"S": 0, "p": 0.0, "block": 1}
    trace_columns = ("full",)

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        if problem.n_samples is None:
            raise ConfigError(
                f"method.name: {self.name} needs a finite-sum problem (problem.samples > 0 or a data file)"
            )
        m = problem.n_samples
        self.S = self.options.get("S") or math.ceil(math.sqrt(m))
        self.p = self.options.get("p") or self.S / (m + self.S)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if not 0 <= options.get("p", 0.0) <= 1:
            raise ConfigError(f"method.p: must be in [0, 1] (0: S/(m+S)), got {options['p']}")
        if options.get("S", 0) < 0 or options.get("block", 1) < 1:
            raise ConfigError("method.S must be >= 0 (0: ceil(sqrt(m))) and method.block >= 1")

    def collect_full(self, server: Server, version: int) -> None:
        raise NotImplementedError

    def collect_difference(self, server: Server, version: int, previous: int) -> None:
        raise NotImplementedError

    def start(self, server: Server) -> None:
        self.g = np.zeros(self.problem.dim)
        self.full = True
        self.collect_full(server, server.version)

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        collector = self.collector
        accepted = collector.on_result(server, worker, result)
        if collector.done:
            if self.full:
                self.g[:] = collector.mean()
            else:
                self.g += collector.mean()
            previous = server.version
            version = server.step(self.g, self.lr, grads_used=collector.count, max_delay=0, full=self.full)
            self.full = bool(server.rng.random() < self.p)
            if self.full:
                self.collect_full(server, version)
            else:
                self.collect_difference(server, version, previous)
        return accepted


@register_method
class FreyaPAGE(PageMethod):
    name = "freya_page"
    description = "PAGE whose full gradients come from ComputeGradient and differences from ComputeBatchDifference"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024"
    params = {**PageMethod.params, "gradient_sampling": "unreceived", "full_gradient": "per_gradient"}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        super().check_options(options)
        sampling = options.get("gradient_sampling", "unreceived")
        if sampling not in GRADIENT_SAMPLINGS:
            raise ConfigError(f"method.gradient_sampling: must be one of {', '.join(map(repr, GRADIENT_SAMPLINGS))}, "
                              f"got {shown(sampling)}")
        full_gradient = options.get("full_gradient", "per_gradient")
        if full_gradient not in FULL_GRADIENTS:
            raise ConfigError(f"method.full_gradient: must be one of {', '.join(map(repr, FULL_GRADIENTS))}, "
                              f"got {shown(full_gradient)}")

    def start(self, server: Server) -> None:
        workers, m, dim, block = list(range(server.n_workers)), self.problem.n_samples, self.problem.dim, self.options["block"]
        collector = GRADIENT_SAMPLINGS[self.options["gradient_sampling"]]
        self.gradient = collector(m, dim, block, workers, server.rng)
        if self.options["full_gradient"] == "allreduce":
            self.gradient = AllReduceGradient(self.gradient, dim)
        self.differences = ComputeBatch(self.S, m, dim, block, workers, server.rng)
        super().start(server)

    def collect_full(self, server: Server, version: int) -> None:
        self.collector = self.gradient
        self.gradient.start(server, version)

    def collect_difference(self, server: Server, version: int, previous: int) -> None:
        self.collector = self.differences
        self.differences.start(server, version, previous)


class SynchronousPage(PageMethod):
    """PAGE whose full gradients and batches are split evenly over a set of workers; a step waits for all parts.

    `workers` is the set (all n for the Soviet variants, the fastest one for the Hero ones);
    `batch_indices` draws a step's difference indices (S of them by default).
    """

    params = {"S": 0, "p": 0.0}

    def workers(self, server: Server) -> list[int]:
        raise NotImplementedError

    def batch_indices(self, server: Server) -> np.ndarray:
        return server.rng.integers(self.problem.n_samples, size=self.S)

    def start(self, server: Server) -> None:
        self.collector = SplitCollect(self.problem.dim, self.workers(server), server.rng)
        super().start(server)

    def collect_full(self, server: Server, version: int) -> None:
        self.collector.start(server, np.arange(self.problem.n_samples), version)

    def collect_difference(self, server: Server, version: int, previous: int) -> None:
        self.collector.start(server, self.batch_indices(server), version, previous)


@register_method
class SovietPAGE(SynchronousPage):
    name = "soviet_page"
    description = ("Soviet PAGE: every full gradient and every batch split evenly over all n workers "
                   "(each computes ceil(S/n) differences), a step waits for all of them")
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024 (Table 1 baseline; PAGE: Li et al., ICML 2021)"

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        self.per_worker = -(-self.S // n_workers)  # ceil(S/n) differences per worker and step
        batch = self.per_worker * n_workers
        self.p = self.options.get("p") or batch / (problem.n_samples + batch)  # PAGE's b/(m+b) for the real batch

    def workers(self, server: Server) -> list[int]:
        return list(range(server.n_workers))

    def batch_indices(self, server: Server) -> np.ndarray:
        # Every worker takes part in every step (time tau_n ceil(S/n)), so the batch is n ceil(S/n) >= S.
        return server.rng.integers(self.problem.n_samples, size=self.per_worker * server.n_workers)


@register_method
class MinibatchPAGE(SynchronousPage):
    name = "minibatch_page"
    description = ("PAGE with exactly S differences per step split evenly over the workers; with S < n "
                   "the S workers are drawn uniformly at random each step (not by speed); waits for all parts")
    paper = "Li et al., PAGE, ICML 2021 (synchronous parallel variant of Soviet PAGE)"

    def workers(self, server: Server) -> list[int]:
        return list(range(server.n_workers))

    def start(self, server: Server) -> None:
        self.order = None  # the workers in the order parts go to: by number until the first shuffle
        super().start(server)

    def collect_full(self, server: Server, version: int) -> None:
        self.collector.start(server, np.arange(self.problem.n_samples), version, order=self.order)

    def collect_difference(self, server: Server, version: int, previous: int) -> None:
        # The non-empty parts go to the first workers of the order: shuffle it so that, when S < n,
        # who works is not decided by worker number (and so by speed). Full gradients keep the last order.
        self.order = server.rng.permutation(server.n_workers)
        self.collector.start(server, self.batch_indices(server), version, previous, order=self.order)


@register_method
class HeroPAGE(SynchronousPage):
    name = "hero_page"
    description = "Hero PAGE: PAGE run on the fastest worker only"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024 (Table 1 baseline)"

    def workers(self, server: Server) -> list[int]:
        return [int(np.argmin(server.expected_times))]


@register_method
class HeroGD(HeroPAGE):
    name = "hero_gd"
    description = "Hero GD: gradient descent with full gradients computed by the fastest worker only"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024 (Table 1 baseline)"
    params = {}

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        self.p = 1.0  # every step uses a full gradient


@register_method
class SovietGD(SovietPAGE):
    name = "soviet_gd"
    description = "Soviet GD: gradient descent with every full gradient split evenly over all n workers, waiting for all"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024 (Table 1 baseline)"
    params = {}

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        self.p = 1.0
