"""Job execution on a worker, shared by both runtimes: the worker's data stream and the math."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..compression import compressor_from_code
from ..errors import RunError
from ..methods.base import Job, JobKind
from ..problems.base import Problem

# Every worker's random streams derive from workers.seed and its index alone, so that worker
# i draws the same samples (on the worker) and job times (on the server) in both runtimes.


# A resumed run is a new segment: fresh streams that depend on the segment number, so that
# the continuation is reproducible and independent of what the killed run had drawn.


def _key(worker: int, segment: int) -> tuple[int, ...]:
    return (worker,) if segment == 0 else (worker, segment)


def _worker_stream(seed: int, worker: int, segment: int, index: int) -> np.random.SeedSequence:
    # Child `index` of SeedSequence(seed, spawn_key=key).spawn(2), built directly (the same
    # entropy and spawn key key + (index,), so the same numbers) at a third of the cost.
    return np.random.SeedSequence(seed, spawn_key=(*_key(worker, segment), index))


def data_rng(seed: int, worker: int, segment: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_worker_stream(seed, worker, segment, 0)))


def timing_rng(seed: int, worker: int, segment: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_worker_stream(seed, worker, segment, 1)))


class TimingStreams(dict):
    """Every worker's timing stream (timing_rng), made when first asked for (worker -> Generator).

    A simulator with millions of workers would otherwise spend ~50 us per worker on streams
    before its first event; a made stream is a plain dict hit.
    """

    def __init__(self, seed: int, segment: int = 0):
        super().__init__()
        self.seed, self.segment = seed, segment

    def __missing__(self, worker: int) -> np.random.Generator:
        stream = self[worker] = timing_rng(self.seed, worker, self.segment)
        return stream


def server_seed(seed: int, segment: int = 0) -> np.random.SeedSequence:
    # A spawn key no worker index reaches.
    return np.random.SeedSequence(seed, spawn_key=_key(2**63, segment))


class WorkerContext:
    """What one worker needs to execute jobs: problem, its data shard and random streams."""

    __slots__ = ("worker", "problem", "shard", "data_rng", "check_finite", "full_gradient", "_seed", "_segment")

    def __init__(self, worker: int, problem: Problem, seed: int, shard: np.ndarray | None = None, segment: int = 0,
                 check_finite: bool = True):
        self.worker = worker
        self.problem = problem
        self.shard = shard
        # data_rng is made on first use (__getattr__): a simulated worker that never computes costs no stream.
        self._seed, self._segment = seed, segment
        # A worker rank checks its gradients (its own time); the simulator leaves it to the
        # server's check of the iterate at every snapshot, off the per-event path.
        self.check_finite = check_finite
        self.full_gradient: tuple[int, np.ndarray] | None = None  # (version, grad f there), for LMO_VR jobs

    def __getattr__(self, name: str):
        """Called only while the data_rng slot is unset: make the worker's data stream, then it is a plain slot."""
        if name != "data_rng":
            raise AttributeError(name)
        self.data_rng = stream = data_rng(self._seed, self.worker, self._segment)
        return stream

    def _lmo(self, job: Job, x: np.ndarray, point: Callable[[int], np.ndarray]) -> tuple[np.ndarray, int]:
        """[u, v] of the linear minimisation over the problem's ball for a (variance-reduced) minibatch gradient."""
        problem, rng = self.problem, self.data_rng
        computed = job.batch
        if job.kind == JobKind.LMO:
            gradient = problem.stochastic_grad(x, rng, job.batch, self.shard)
        else:
            anchor = point(job.version2)
            computed = 2 * job.batch
            if self.full_gradient is None or self.full_gradient[0] != job.version2:
                self.full_gradient = (job.version2, problem.full_grad(anchor))
                computed += problem.n_samples
            indices = problem.sample_indices(rng, job.batch, self.shard)
            gradient = problem.grad(x, indices) - problem.grad(anchor, indices) + self.full_gradient[1]
        u, v = problem.lmo(gradient)
        return np.concatenate([u, v]), computed

    def execute(self, job: Job, point: Callable[[int], np.ndarray]) -> tuple[np.ndarray, int]:
        """The job's payload vector and the number of gradients it cost."""
        if job.fail:
            raise RunError(f"worker {self.worker} fails as configured (workers.crash_after)")
        x = point(job.version)
        if job.kind == JobKind.GRAD:
            vector, n_grads = self.problem.stochastic_grad(x, self.data_rng, job.batch, self.shard), job.batch
        elif job.kind == JobKind.GRAD_INDICES:
            if job.indices is None or not len(job.indices):  # a share of a reduction (freya_page's allreduce)
                vector, n_grads = np.zeros(self.problem.dim), 0
            else:
                vector, n_grads = self.problem.grad(x, job.indices), len(job.indices)
        elif job.kind == JobKind.GRAD_DIFF:
            vector = self.problem.grad(x, job.indices) - self.problem.grad(point(job.version2), job.indices)
            n_grads = 2 * len(job.indices)
        elif job.kind == JobKind.COMPRESSED:
            vector = job.batch * self.problem.stochastic_grad(x, self.data_rng, job.batch, self.shard)
            n_grads = job.batch
        elif job.kind in (JobKind.LMO, JobKind.LMO_VR):
            vector, n_grads = self._lmo(job, x, point)
        else:
            raise ValueError(f"unknown job kind {job.kind}")
        if self.check_finite and not np.isfinite(vector).all():
            raise RunError(
                f"worker {self.worker} computed a non-finite gradient (nan or inf) at iteration {job.version}: "
                "the method diverged; try a smaller method.lr"
            )
        if job.kind == JobKind.COMPRESSED:
            compressor = compressor_from_code(job.compressor, job.compress_param)
            return compressor.encode(vector, job.copies, self.data_rng), n_grads
        return vector, n_grads
