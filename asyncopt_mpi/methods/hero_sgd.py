"""Hero SGD: plain SGD on the single fastest worker (the baseline of Tyurin & Richtarik, NeurIPS 2023)."""

from __future__ import annotations

import numpy as np

from . import register_method
from .base import Job, JobKind, Method, Result, Server


@register_method
class HeroSGD(Method):
    name = "hero_sgd"
    description = "SGD on the fastest worker only (smallest expected time per gradient); the others idle"
    paper = "Tyurin & Richtarik, NeurIPS 2023 (baseline)"

    def start(self, server: Server) -> None:
        self.hero = int(np.argmin(server.expected_times))
        server.assign(self.hero, Job(JobKind.GRAD, server.version, self.batch))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        version = server.step(result, self.lr, grads_used=result.n_grads, max_delay=result.delay)
        server.assign(self.hero, Job(JobKind.GRAD, version, self.batch))
        return True
