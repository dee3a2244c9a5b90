"""Asynchronous SGD: every finished gradient is applied at once, x <- x - gamma g.

Job assignment rules pure, random and shuffle follow AsGrad (Islamov, Safaryan, Alistarh,
AISTATS 2024, seed 002); `delay_adaptive` uses gamma_t = gamma if delay <= tau_C else
min(gamma, 1/(4 L delay)) (Koloskova, Stich, Jaggi, NeurIPS 2022). Two rules drop old gradients:
`max_delay` counts server iterations (steps taken since the job's point was published);
`max_arrival_delay` counts arrivals (results that reached the server, used or dropped, between
the job's assignment and its own arrival), the rule of the Freya PAGE / Rennala authors'
simulator, whose threshold is n there (0 here means n; -1, the default, turns it off).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from . import register_method
from .assignment import ASSIGN_RULES, Assignment
from .base import Job, JobKind, Method, Result, Server, StepAndRestart


@register_method
class AsyncSGD(Method):
    name = "async_sgd"
    description = "asynchronous SGD; each gradient is applied on arrival, a worker chosen by `assign` gets the next job"
    paper = "Islamov, Safaryan, Alistarh, AsGrad, AISTATS 2024; Koloskova et al., NeurIPS 2022"
    params = {"assign": "pure", "delay_adaptive": False, "tau_c": 0, "L": 0.0, "max_delay": -1, "max_arrival_delay": -1}
    trace_columns = ("lr",)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if options["assign"] not in ASSIGN_RULES:
            raise ConfigError(
                f"method.assign: {options['assign']!r} is not accepted; accepted: {', '.join(ASSIGN_RULES)}"
            )
        if options.get("max_arrival_delay", -1) < -1:
            raise ConfigError(f"method.max_arrival_delay: -1 (off), 0 (n) or a count >= 1, got {options['max_arrival_delay']}")
        if options["tau_c"] < 0:
            raise ConfigError(f"method.tau_c: must be >= 0 (0: the number of workers), got {options['tau_c']}")

    def start(self, server: Server) -> None:
        self.assignment = Assignment(self.options["assign"], server.n_workers, server.rng)
        self.tau_c = self.options["tau_c"] or server.n_workers
        smoothness = self.options["L"] or self.problem.smoothness()
        self.inverse_4l = 1.0 / (4.0 * smoothness) if smoothness > 0 else float("inf")
        cap = self.options["max_arrival_delay"]
        self.arrival_cap = server.n_workers if cap == 0 else cap  # -1: off
        self.arrivals = 0  # results received so far (used or dropped)
        self.assigned_at: dict[int, int] = {}  # job id -> arrivals when it was assigned
        for worker in range(server.n_workers):
            self.give(server, worker)

    def give(self, server: Server, worker: int) -> None:
        job = Job(JobKind.GRAD, server.version, self.batch)
        server.assign(worker, job)
        if self.arrival_cap >= 0 and job.job_id >= 0:
            self.assigned_at[job.job_id] = self.arrivals

    def every_result(self, server: Server) -> StepAndRestart | None:
        """Pure assignment with a fixed step and no staleness rule: every result is a step and a restart."""
        options = self.options
        if options["assign"] != "pure" or options["delay_adaptive"] or options["max_delay"] >= 0 or self.arrival_cap >= 0:
            return None
        return StepAndRestart(self.lr, Job(JobKind.GRAD, -1, self.batch), {"lr": self.lr})

    def step_size(self, delay: int) -> float:
        if not self.options["delay_adaptive"] or delay <= self.tau_c:
            return self.lr
        return min(self.lr, self.inverse_4l / delay)

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        max_delay = self.options["max_delay"]
        accepted = max_delay < 0 or result.delay <= max_delay
        if self.arrival_cap >= 0:
            waited = self.arrivals - self.assigned_at.pop(result.job_id, self.arrivals)
            accepted = accepted and waited <= self.arrival_cap
        self.arrivals += 1
        if accepted:
            lr = self.step_size(result.delay)
            server.step(result, lr, grads_used=result.n_grads, max_delay=result.delay, lr=lr)
        self.give(server, self.assignment.next(worker))
        return accepted
