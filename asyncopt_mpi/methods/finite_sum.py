"""Gradient collection for finite sums: Freya PAGE's ComputeGradient and ComputeBatchDifference (seed 000).

A collector hands out jobs, takes results, and says when it is done; methods combine them.
- ComputeGradient(x) (seed 001 lines 1323-1337, Algorithm 2): every worker gets a block
  drawn uniformly from [m]; a result is kept if its block is not received yet (M), and its
  worker gets a block drawn uniformly from those not received ([m] minus M), so a block
  still in flight can be handed out again (the later result is dropped); when all m are in, work
  still running is cancelled. Blocks are the fixed groups of `block` consecutive indices
  (block = 1: single indices, as in the paper), as the authors' code does:
  AsynchronousPageMiniBatchSGD._calculate_full_gradient ("rennala_page_master", their Freya
  PAGE) in code/distributed_optimization_library/asynchronous/algorithm.py of
  github.com/k3nfalt/optimal-decentralized-optimization draws from the groups not received.
- PermutedComputeGradient (method.gradient_sampling = "permutation", a project option):
  blocks come from a permutation of [m], so no index is handed out twice until all m have
  been handed out once; then missing ones are handed out again, so a slow worker cannot
  hold the collection up. A result is kept if all its indices are still missing.
- ComputeBatch(S, x[, y]): each worker computes blocks of uniformly sampled indices (their
  gradients, or gradient differences at x and y, which cost two gradients each); the first
  S arrivals from anyone count; the rest is cancelled.
- SplitCollect: the synchronous counterpart: given indices split evenly over the workers,
  done when all of them answered (minibatch PAGE; with one worker, Hero/Soviet PAGE).
- AllReduceGradient (method.full_gradient = "allreduce"): seed 001 line 1353, "the workers can
  aggregate grad f_p locally, and the algorithm can call AllReduce once to collect all
  calculated gradients". Blocks are handed out as by the collector it wraps, but a block's
  gradient stays on its worker (its job is charged no upload); once all m are in, every worker
  takes part in one AllReduce of its local sum, charged by the ring cost model of
  `allreduce_floats`. The runtimes emulate communication by the durations they draw, so the
  block vectors still travel with their results and the server adds the accepted ones: the
  same sum as the reduction's, and the same numbers as with per_gradient.
A collection starts every worker with one server.assign_many call and one index draw.
Sums live in a server-owned VectorSum, so the runtime decides when their math runs.
"""

from __future__ import annotations

import numpy as np

from .base import Job, JobKind, Result, Server
from .vectors import VectorSum


class Collector:
    def __init__(self, dim: int, workers: list[int], rng: np.random.Generator):
        self.workers = list(workers)
        self.worker_array = np.asarray(self.workers, dtype=np.int64)
        self.rng = rng
        self.sum: VectorSum | None = None  # the server's, from the first collection on
        self.count = 0
        self.done = True
        self.jobs: dict[int, tuple[int, np.ndarray]] = {}  # job id -> (worker, indices)
        # The jobs of one assign_many call: row i went to workers[i] with indices[i]; out[i] until it returns.
        self.group_ids: np.ndarray | None = None
        self.group_indices: np.ndarray | None = None
        self.group_out: np.ndarray | None = None
        # Floats a gradient job's upload is charged for: -1 its vector; 0 when it stays on the worker (AllReduce).
        self.upload = -1

    def _grad_job(self, version: int, indices: np.ndarray | None = None) -> Job:
        return Job(JobKind.GRAD_INDICES, version, indices=indices, upload=self.upload)

    def _begin(self, server: Server) -> None:
        if self.sum is None:
            self.sum = server.vector_sum()
        else:
            self.sum.clear()
        self.count = 0
        self.done = False
        self.jobs.clear()
        self.group_ids = None

    def _give(self, server: Server, worker: int, job: Job) -> None:
        server.assign(worker, job)
        self.jobs[job.job_id] = (worker, job.indices)

    def _give_all(self, server: Server, job: Job, indices: np.ndarray) -> None:
        """Row i of `indices` to the i-th worker, in one call."""
        self.group_ids = server.assign_many(self.workers, job, indices)
        self.group_indices = indices
        self.group_out = self.group_ids >= 0

    def _take(self, job_id: int) -> tuple[int, np.ndarray] | None:
        """(worker, indices) of a job of this collection that just returned, or None (an earlier one's)."""
        entry = self.jobs.pop(job_id, None)
        if entry is None and self.group_ids is not None:
            row = job_id - int(self.group_ids[0])
            if 0 <= row < len(self.group_ids) and self.group_ids[row] == job_id and self.group_out[row]:
                self.group_out[row] = False
                entry = (self.workers[row], self.group_indices[row])
        return entry

    def _finish(self, server: Server) -> None:
        """Done: abandon the work still running for this collection (one call for all its workers).

        A worker has at most one job of a collection out (it gets the next one for its result), so the
        workers listed are distinct without a sort."""
        self.done = True
        running = np.fromiter((worker for worker, _ in self.jobs.values()), dtype=np.int64, count=len(self.jobs))
        if self.group_ids is not None:
            running = np.concatenate([self.worker_array[self.group_out], running])
        server.cancel_many(running)
        self.jobs.clear()
        self.group_ids = None

    def mean(self) -> np.ndarray:
        return self.sum.value() / self.count


class ComputeGradient(Collector):
    """Algorithm 2's full gradient: each new block is drawn uniformly from the blocks not received yet."""

    def __init__(self, n_samples: int, dim: int, block: int, workers: list[int], rng: np.random.Generator):
        super().__init__(dim, workers, rng)
        self.n_samples = n_samples
        self.block = block
        self.n_blocks = -(-n_samples // block)  # block b holds indices [b * block, (b + 1) * block) within [m]
        self.offsets = np.arange(block)

    def start(self, server: Server, version: int) -> None:
        self._begin(server)
        self.version = version
        # The first `left` entries of `unreceived` are the blocks not received; `position` finds a
        # block in it, so receiving one is a swap with the last of them (the authors' bookkeeping).
        self.unreceived = list(range(self.n_blocks))
        self.position = list(range(self.n_blocks))
        self.left = self.n_blocks
        drawn = self.rng.integers(self.n_blocks, size=len(self.workers))  # from all of [m]: M is empty
        if self.n_samples % self.block == 0:  # equal blocks: every worker in one call
            self._give_all(server, self._grad_job(version), drawn[:, None] * self.block + self.offsets)
            return
        for worker, block in zip(self.workers, drawn.tolist()):
            self._give_block(server, worker, block)

    def _give_block(self, server: Server, worker: int, block: int) -> None:
        indices = np.arange(block * self.block, min((block + 1) * self.block, self.n_samples))
        self._give(server, worker, self._grad_job(self.version, indices))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        entry = self._take(result.job_id)
        if entry is None:
            return False  # work for an earlier collection
        indices = entry[1]
        block, position, unreceived = int(indices[0]) // self.block, self.position, self.unreceived
        where = position[block]
        accepted = where < self.left
        if accepted:
            self.sum.add(result, len(indices))  # the result is the mean over its indices
            self.count += len(indices)
            self.left -= 1
            last = unreceived[self.left]
            unreceived[where], unreceived[self.left] = last, block
            position[last], position[block] = where, self.left
        if self.left == 0:
            self._finish(server)
        else:
            self._give_block(server, worker, unreceived[int(self.rng.integers(self.left))])
        return accepted


class PermutedComputeGradient(Collector):
    """The full gradient with blocks taken from a permutation of [m] (method.gradient_sampling = "permutation")."""

    def __init__(self, n_samples: int, dim: int, block: int, workers: list[int], rng: np.random.Generator):
        super().__init__(dim, workers, rng)
        self.n_samples = n_samples
        self.block = block
        self.collected = np.zeros(n_samples, dtype=bool)
        self.missing: np.ndarray | None = None  # indices not collected yet (kept while none is added)

    def start(self, server: Server, version: int) -> None:
        self._begin(server)
        self.version = version
        self.collected[:] = False
        self.missing = None
        self.order = self.rng.permutation(self.n_samples)
        first = len(self.workers) * self.block
        if first <= self.n_samples:  # every worker gets a fresh block: one call
            self.handed_out = first
            self._give_all(server, self._grad_job(version), self.order[:first].reshape(len(self.workers), self.block))
            return
        self.handed_out = 0
        for worker in self.workers:
            self._give_block(server, worker)

    def _give_block(self, server: Server, worker: int) -> None:
        if self.handed_out < self.n_samples:
            indices = self.order[self.handed_out : self.handed_out + self.block]
            self.handed_out += len(indices)
        else:
            if self.missing is None:  # recomputed only after the collected set changed
                self.missing = np.flatnonzero(~self.collected)
            missing = self.missing
            indices = self.rng.choice(missing, size=min(self.block, missing.size), replace=False)
        self._give(server, worker, self._grad_job(self.version, indices))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        entry = self._take(result.job_id)
        if entry is None:
            return False  # work for an earlier collection
        indices = entry[1]
        accepted = not self.collected[indices].any()
        if accepted:
            self.sum.add(result, len(indices))  # the result is the mean over its indices
            self.collected[indices] = True
            self.missing = None
            self.count += len(indices)
        if self.count == self.n_samples:
            self._finish(server)
        else:
            self._give_block(server, worker)
        return accepted


# method.gradient_sampling: how ComputeGradient picks the next block.
GRADIENT_SAMPLINGS: dict[str, type[Collector]] = {"unreceived": ComputeGradient, "permutation": PermutedComputeGradient}


def allreduce_floats(n_workers: int, dim: int) -> int:
    """Floats each worker sends in a ring AllReduce of a dim-vector among the n workers and the server.

    The ring over p = n + 1 ranks (MPI_Allreduce over all of them: the server needs the sum)
    cuts the vector into p chunks of ceil(d/p) floats and takes 2(p - 1) steps, a
    reduce-scatter then an allgather, in each of which every rank sends one chunk to the next:
    2(p - 1) ceil(d/p) floats a worker, about 2 d (Patarasuk and Yuan, "Bandwidth optimal
    all-reduce algorithms for clusters of workstations", JPDC 69(2), 2009; Thakur, Rabenseifner
    and Gropp, "Optimization of collective communication operations in MPICH", IJHPCA 19(1),
    2005: the 2 (p-1)/p n beta term). At theta_i seconds per float, worker i's part lasts
    theta_i times that, and the reduction ends with the slowest link, as the ring's steps do.
    The per-message latency and the additions are not modelled (the timing model has neither);
    the server's own sends are free, as its broadcasts are.
    """
    ranks = n_workers + 1
    return 2 * (ranks - 1) * -(-dim // ranks)


class AllReduceGradient:
    """A full-gradient collector whose blocks stay on the workers, summed by one AllReduce at the end."""

    def __init__(self, blocks: Collector, dim: int):
        blocks.upload = 0  # a block's gradient is added to its worker's local sum, not sent
        self.blocks = blocks
        self.workers = blocks.workers
        self.share_floats = allreduce_floats(len(self.workers), dim)
        self.reduction: set[int] = set()  # job ids of the reduction's shares still running
        self.done = True

    @property
    def count(self) -> int:
        return self.blocks.count

    def mean(self) -> np.ndarray:
        return self.blocks.mean()

    def start(self, server: Server, version: int) -> None:
        self.done = False
        self.reduction.clear()
        self.blocks.start(server, version)

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        if result.job_id in self.reduction:
            self.reduction.discard(result.job_id)
            self.done = not self.reduction  # the sum exists once the slowest share is through
            return True
        accepted = self.blocks.on_result(server, worker, result)
        if self.blocks.done:  # all m are in (running blocks cancelled): every worker joins the reduction
            # A share computes nothing (no indices) and is charged share_floats of upload.
            share = Job(JobKind.GRAD_INDICES, self.blocks.version, upload=self.share_floats)
            no_indices = np.empty((len(self.workers), 0), dtype=np.int64)
            ids = server.assign_many(self.workers, share, no_indices)
            self.reduction = set(ids[ids >= 0].tolist())  # none once the run stops: no step then
        return accepted


# method.full_gradient: how the full gradient's sum reaches the server.
FULL_GRADIENTS = ("per_gradient", "allreduce")


class ComputeBatch(Collector):
    def __init__(self, size: int, n_samples: int, dim: int, block: int, workers: list[int], rng: np.random.Generator):
        super().__init__(dim, workers, rng)
        self.size = size
        self.n_samples = n_samples
        self.block = block

    def start(self, server: Server, version: int, previous: int = -1) -> None:
        """Collect gradients at `version`, or differences between `version` and `previous`."""
        self._begin(server)
        self.version, self.previous = version, previous
        self.kind = JobKind.GRAD_INDICES if previous < 0 else JobKind.GRAD_DIFF
        indices = self.rng.integers(self.n_samples, size=(len(self.workers), self.block))  # one draw for all
        self._give_all(server, Job(self.kind, version, version2=previous), indices)

    def _give_sample(self, server: Server, worker: int) -> None:
        indices = self.rng.integers(self.n_samples, size=self.block)
        self._give(server, worker, Job(self.kind, self.version, indices=indices, version2=self.previous))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        entry = self._take(result.job_id)
        if entry is None:
            return False
        self.sum.add(result, len(entry[1]))
        self.count += len(entry[1])
        if self.count >= self.size:
            self._finish(server)
        else:
            self._give_sample(server, worker)
        return True


class SplitCollect(Collector):
    def start(self, server: Server, indices: np.ndarray, version: int, previous: int = -1,
              order: np.ndarray | None = None) -> None:
        """Split `indices` evenly over the workers (taken in `order` if given); done when every part is in.

        The parts are np.array_split's (the first len % n one index longer), cut only for the workers
        that get a nonempty one: with fewer indices than workers the others are not looked at."""
        self._begin(server)
        kind = JobKind.GRAD_INDICES if previous < 0 else JobKind.GRAD_DIFF
        workers = self.workers if order is None else order
        size, longer = divmod(len(indices), len(workers))
        busy = len(workers) if size else longer
        start = 0
        for rank, worker in enumerate(np.asarray(workers[:busy]).tolist()):
            stop = start + size + (rank < longer)
            self._give(server, worker, Job(kind, version, indices=indices[start:stop], version2=previous))
            start = stop

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        entry = self._take(result.job_id)
        if entry is None:
            return False
        self.sum.add(result, len(entry[1]))
        self.count += len(entry[1])
        self.done = not self.jobs
        return True
