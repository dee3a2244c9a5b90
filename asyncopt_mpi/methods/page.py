"""PAGE-type methods on a finite sum: Freya PAGE (seed 000, Algorithm 1) and its synchronous and Hero variants.

g^0 = full gradient at x^0. Each step: x^{k+1} = x^k - gamma g^k; then with probability p
g^{k+1} = full gradient at x^{k+1}, otherwise g^{k+1} = g^k + (1/S) sum of S differences
grad f_j(x^{k+1}) - grad f_j(x^k). Defaults S = ceil(sqrt(m)), p = S/(m+S). The methods
differ only in how the two kinds of gradient are collected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import register
from .base import Method, Result, Server
from .finite_sum import ComputeBatch, ComputeGradient, SplitCollect


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
            version = self.sgd_step(server, self.g, self.lr, grads_used=collector.count, max_delay=0, full=self.full)
            self.full = bool(server.rng.random() < self.p)
            if self.full:
                self.collect_full(server, version)
            else:
                self.collect_difference(server, version, previous)
        return accepted


@register
class FreyaPAGE(PageMethod):
    name = "freya_page"
    description = "PAGE whose full gradients come from ComputeGradient and differences from ComputeBatchDifference"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024"

    def start(self, server: Server) -> None:
        workers, m, dim, block = list(range(server.n_workers)), self.problem.n_samples, self.problem.dim, self.options["block"]
        self.gradient = ComputeGradient(m, dim, block, workers, server.rng)
        self.differences = ComputeBatch(self.S, m, dim, block, workers, server.rng)
        super().start(server)

    def collect_full(self, server: Server, version: int) -> None:
        self.collector = self.gradient
        self.gradient.start(server, version)

    def collect_difference(self, server: Server, version: int, previous: int) -> None:
        self.collector = self.differences
        self.differences.start(server, version, previous)


class SynchronousPage(PageMethod):
    """PAGE whose batches are split evenly over a fixed set of workers and wait for all of them."""

    params = {"S": 0, "p": 0.0}

    def workers(self, server: Server) -> list[int]:
        raise NotImplementedError

    def start(self, server: Server) -> None:
        self.collector = SplitCollect(self.problem.dim, self.workers(server), server.rng)
        super().start(server)

    def collect_full(self, server: Server, version: int) -> None:
        self.collector.start(server, np.arange(self.problem.n_samples), version)

    def collect_difference(self, server: Server, version: int, previous: int) -> None:
        self.collector.start(server, server.rng.integers(self.problem.n_samples, size=self.S), version, previous)


@register
class MinibatchPAGE(SynchronousPage):
    name = "minibatch_page"
    description = "PAGE where every full gradient and every batch of S differences is split over all workers and waits for all"
    paper = "Li et al., PAGE, ICML 2021 (synchronous parallel baseline of Freya PAGE)"

    def workers(self, server: Server) -> list[int]:
        return list(range(server.n_workers))


@register
class SovietPAGE(SynchronousPage):
    name = "soviet_page"
    description = "Hero PAGE: PAGE run on the fastest worker only"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024 (baseline)"

    def workers(self, server: Server) -> list[int]:
        return [int(np.argmin(server.expected_times))]


@register
class HeroGD(SovietPAGE):
    name = "hero_gd"
    description = "gradient descent with full gradients computed by the fastest worker only"
    paper = "Tyurin, Gruntkowska, Richtarik, Freya PAGE, NeurIPS 2024 (baseline)"
    params = {}

    def __init__(self, config, problem, n_workers):
        super().__init__(config, problem, n_workers)
        self.p = 1.0  # every step uses a full gradient
