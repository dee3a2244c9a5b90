"""Asynchronous SGD: every finished gradient is applied at once, x <- x - gamma g.

Job assignment rules pure, random and shuffle follow AsGrad (Islamov, Safaryan, Alistarh,
AISTATS 2024, seed 002); `delay_adaptive` uses gamma_t = gamma if delay <= tau_C else
min(gamma, 1/(4 L delay)) (Koloskova, Stich, Jaggi, NeurIPS 2022); `max_delay` drops older
gradients.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from . import register_method
from .assignment import ASSIGN_RULES, Assignment
from .base import Job, JobKind, Method, Result, Server


@register_method
class AsyncSGD(Method):
    name = "async_sgd"
    description = "asynchronous SGD; each gradient is applied on arrival, a worker chosen by `assign` gets the next job"
    paper = "Islamov, Safaryan, Alistarh, AsGrad, AISTATS 2024; Koloskova et al., NeurIPS 2022"
    params = {"assign": "pure", "delay_adaptive": False, "tau_c": 0, "L": 0.0, "max_delay": -1}
    trace_columns = ("lr",)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if options["assign"] not in ASSIGN_RULES:
            raise ConfigError(
                f"method.assign: {options['assign']!r} is not accepted; accepted: {', '.join(ASSIGN_RULES)}"
            )
        if options["tau_c"] < 0:
            raise ConfigError(f"method.tau_c: must be >= 0 (0: the number of workers), got {options['tau_c']}")

    def start(self, server: Server) -> None:
        self.assignment = Assignment(self.options["assign"], server.n_workers, server.rng)
        self.tau_c = self.options["tau_c"] or server.n_workers
        smoothness = self.options["L"] or self.problem.smoothness()
        self.inverse_4l = 1.0 / (4.0 * smoothness) if smoothness > 0 else float("inf")
        for worker in range(server.n_workers):
            server.assign(worker, Job(JobKind.GRAD, server.version, self.batch))

    def step_size(self, delay: int) -> float:
        if not self.options["delay_adaptive"] or delay <= self.tau_c:
            return self.lr
        return min(self.lr, self.inverse_4l / delay)

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        max_delay = self.options["max_delay"]
        accepted = max_delay < 0 or result.delay <= max_delay
        if accepted:
            lr = self.step_size(result.delay)
            server.step(result, lr, grads_used=result.n_grads, max_delay=result.delay, lr=lr)
        server.assign(self.assignment.next(worker), Job(JobKind.GRAD, server.version, self.batch))
        return accepted
