"""Asynchronous SGD: every finished gradient is applied at once, x <- x - gamma g (AsGrad, seed 002)."""

from __future__ import annotations

from ..errors import ConfigError
from . import register
from .base import Job, JobKind, Method, Result, Server

ASSIGN_RULES = ("pure",)


@register
class AsyncSGD(Method):
    name = "async_sgd"
    description = "asynchronous SGD; each gradient is applied on arrival and its worker restarts at the new point"
    paper = "Islamov, Safaryan, Alistarh, AsGrad, AISTATS 2024"
    params = {"assign": "pure"}

    @classmethod
    def check_options(cls, options: dict) -> None:
        if options["assign"] not in ASSIGN_RULES:
            raise ConfigError(
                f"method.assign: {options['assign']!r} is not accepted; accepted: {', '.join(ASSIGN_RULES)}"
            )

    def start(self, server: Server) -> None:
        for worker in range(server.n_workers):
            server.assign(worker, Job(JobKind.GRAD, server.version, self.batch))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        version = self.sgd_step(server, result.vector, self.lr, grads_used=result.n_grads, max_delay=result.delay)
        server.assign(worker, Job(JobKind.GRAD, version, self.batch))
        return True
