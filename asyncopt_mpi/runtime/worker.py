"""Job execution on a worker, shared by both runtimes: the data and timing streams and the math."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..methods.base import Job, JobKind
from ..problems.base import Problem
from ..timing import TimingModel

# Every worker's random streams derive from workers.seed and its index alone, so that worker
# i draws the same samples and times under MPI and in the simulator.
_DATA_STREAM, _TIMING_STREAM = 0, 1


def worker_seed(seed: int, worker: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(worker,))


def server_seed(seed: int) -> np.random.SeedSequence:
    # A spawn key no worker index reaches.
    return np.random.SeedSequence(seed, spawn_key=(2**63,))


class WorkerContext:
    """What one worker needs to execute jobs: problem, its data shard and random streams."""

    __slots__ = ("worker", "problem", "timing", "shard", "data_rng", "timing_rng")

    def __init__(self, worker: int, problem: Problem, timing: TimingModel, seed: int, shard: np.ndarray | None = None):
        self.worker = worker
        self.problem = problem
        self.timing = timing
        self.shard = shard
        data_seed, timing_seed = worker_seed(seed, worker).spawn(2)
        self.data_rng = np.random.Generator(np.random.PCG64(data_seed))
        self.timing_rng = np.random.Generator(np.random.PCG64(timing_seed))

    def execute(self, job: Job, point: Callable[[int], np.ndarray]) -> tuple[np.ndarray, int]:
        """The job's payload vector and the number of gradients it cost."""
        x = point(job.version)
        if job.kind == JobKind.GRAD:
            return self.problem.stochastic_grad(x, self.data_rng, job.batch, self.shard), job.batch
        if job.kind == JobKind.GRAD_INDICES:
            return self.problem.grad(x, job.indices), len(job.indices)
        raise ValueError(f"unknown job kind {job.kind}")

    def duration(self, n_grads: int, n_floats: int) -> float:
        """Modelled seconds of a job: compute n_grads gradients, then send n_floats."""
        return self.timing.compute_time(self.worker, n_grads, self.timing_rng) + self.timing.comm_time(
            self.worker, n_floats
        )
