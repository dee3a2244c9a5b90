"""Virtual-clock runtime: a heap of job completion times driving the same methods and worker code.

Each worker runs one job at a time (later ones queue) for the duration the server drew
when it assigned the job. Ties are broken by a sequence number, so a run is bit-for-bit
reproducible. The per-event path touches scalars only:

- A job holds references to the points it needs (Python's own reference counting keeps
  them alive), so there is no per-version bookkeeping beyond the current, previous and
  pinned points.
- A result's vector is computed when the method first reads it (SimResult). The worker's
  random draws are made when the job completes, in the same order as before, so the
  streams do not depend on what the method reads: a dropped result costs its draw only.
- When the problem states its stochastic gradient as the full gradient changed by a few
  draws (Problem.noise_model: additive normal noise, zero_last's one factor), or as the
  gradient of a few sampled terms of a finite sum (SampledTerms: logistic regression's row
  indices, drawn from every sample), the draws are made at completion into a ring of rows,
  and `server.step(result, ...)` and `VectorSum.add(result, ...)` are deferred: their math
  runs later in blocks (one batched gradient of many points with its noise applied, one
  cumulative sum for many steps; cache-sized chunks of a block when the points are long), with
  the same floating-point operations in the same order, hence the same numbers. Anything
  that reads a point (server.x, a snapshot, an eager job) runs the pending blocks first.
"""

from __future__ import annotations

import heapq
import math
import weakref
from collections import deque

import numpy as np

from ...methods.base import Job, JobKind, Result
from ...methods.vectors import VectorSum, as_vector
from ...problems.base import Problem, SampledTerms
from ...problems.noise import GradientNoise
from ..points import DELTA_LOG
from ..server import FLOAT_BYTES, ServerCore, StopReason
from .collector import fewer_collections
from .compressed_blocks import CompressedBlocks
from .job_groups import JobGroup
from .batch_runs import BatchRuns
from .runs import CHUNK_FLOATS, RuleRuns, StepAndRestartRuns
from ..worker import WorkerContext

BLOCK = 1024  # deferred steps or sum terms computed in one block at most
GROUPS_ENABLED = True  # tests turn job groups off to compare with one entry per job
NOISE_BYTES = 32 * 2**20  # the ring of noise draws made at completion and not yet used (rows of dim floats)
_GRAD, _GRAD_INDICES, _GRAD_DIFF = JobKind.GRAD, JobKind.GRAD_INDICES, JobKind.GRAD_DIFF
_COMPRESSED = JobKind.COMPRESSED
_EAGER, _EXECUTE = -2, -3  # SimResult modes besides a noise row >= 0 (or -1: noise-free gradient)
_INDICES = -4  # a deferred term of a job's own indices: (point, _INDICES, indices, weight, second point or None)


class PendingPoint:
    """A published version whose vector a deferred block has not computed yet (then `x` is set)."""

    __slots__ = ("x",)

    def __init__(self):
        self.x = None


class SimPoints:
    """The simulator's point versions: the current, the previous and pinned ones (jobs hold their own).

    Offers what ServerCore uses of runtime.points.PointStore. A version is an array or a
    PendingPoint; `materialise` (the simulator's flush) computes pending ones on demand.
    """

    def __init__(self, x0: np.ndarray, version: int, materialise):
        x0 = np.array(x0, dtype=float)
        x0.flags.writeable = False
        self.dim = x0.size
        self.current = version
        self.previous: int | None = None
        self.deltas: dict[int, np.ndarray] = {}
        self.fingerprints: dict[int, float] = {}
        self.live: dict[int, np.ndarray | PendingPoint] = {version: x0}
        self.pins: dict[int, int] = {}
        self.materialise = materialise

    def __len__(self) -> int:
        return len(self.live)

    def get(self, version: int) -> np.ndarray:
        point = self.live[version]
        if type(point) is PendingPoint:
            if point.x is None:
                self.materialise()
            return point.x
        return point

    def new_buffer(self) -> np.ndarray:
        return np.empty(self.dim)

    def publish(self, x: np.ndarray, delta: np.ndarray | None = None) -> int:
        """Make x (which the store now owns, unless read-only or not float64) the current point."""
        if x.shape != (self.dim,):
            raise ValueError(f"published point has shape {x.shape}, expected ({self.dim},)")
        if not x.flags.writeable or x.dtype != np.float64:
            x = np.array(x, dtype=float)
        x.flags.writeable = False
        version = self.advance(x)
        if delta is not None:
            self.deltas[version] = np.array(delta, dtype=float)
            self.fingerprints[version] = float(x @ x)
            self.deltas.pop(version - DELTA_LOG, None)
            self.fingerprints.pop(version - DELTA_LOG, None)
        return version

    def advance(self, point: np.ndarray | PendingPoint) -> int:
        version = self.current + 1
        live = self.live
        live[version] = point
        dropped = self.previous
        if dropped is not None and dropped not in self.pins:
            del live[dropped]
        self.previous, self.current = self.current, version
        return version

    def advance_live(self, count: int) -> list[tuple[int, PendingPoint]]:
        """`count` advances at once: pending points only for the versions that stay live (the last
        two, and pinned ones), returned with their versions for the caller to compute."""
        live, pins = self.live, self.pins
        last = self.current + count
        for version in ([self.previous] if count == 1 else [self.previous, self.current]):
            if version is not None and version not in pins:
                live.pop(version, None)
        made = [(version, PendingPoint()) for version in range(max(self.current + 1, last - 1), last + 1)]
        live.update(made)
        self.previous, self.current = last - 1, last
        return made

    def delta_floats(self, base: int, version: int) -> int:
        """Floats of the delta chain from base to version (0 if some delta is not kept)."""
        steps = range(base + 1, version + 1)
        if not base < version or any(step not in self.deltas for step in steps):
            return 0
        return sum(self.deltas[step].size for step in steps)

    def acquire(self, version: int) -> None:
        if version not in self.live:
            raise KeyError(version)
        self.pins[version] = self.pins.get(version, 0) + 1

    def release(self, version: int) -> None:
        count = self.pins[version] - 1
        if count:
            self.pins[version] = count
            return
        del self.pins[version]
        if version != self.current and version != self.previous:
            self.live.pop(version, None)


class SimResult(Result):
    """A result whose vector is computed on first access (see the module docstring)."""

    __slots__ = ("_vector", "_sim", "_entry", "_row", "_noise")

    def __init__(self, kind, job_id, worker, version, n_grads, duration, sim, entry, row, noise=None, vector=None):
        self.kind = kind
        self.job_id = job_id
        self.worker = worker
        self.version = version
        self.n_grads = n_grads
        self.duration = duration
        self.delay = 0
        self._sim = sim
        self._entry = entry
        self._row = row
        self._noise = noise  # the GradientNoise of a noise row's draws
        self._vector = vector

    @property
    def vector(self) -> np.ndarray:
        vector = self._vector
        if vector is None:
            vector = self._vector = self._sim._compute(self)
        return vector


class SimVectorSum(VectorSum):
    """A VectorSum whose adds of noise-row results (and, when the problem has grad_rows, of results of a
    job's own indices) wait and run as one block (same numbers)."""

    __slots__ = ("pending", "sim", "__weakref__")

    def __init__(self, sim: "SimServer"):
        super().__init__(sim.dim)
        self.pending: list[tuple] = []  # (point, noise row, noise model, weight) per deferred add
        self.sim = sim

    def add(self, item, weight: float = 1.0) -> None:
        if type(item) is SimResult and item._vector is None and self.sim.defer:
            if item._row >= -1:
                self.pending.append((item._entry[2], item._row, item._noise, weight))
            elif item._row == _EXECUTE and self.sim.index_blocks and item._entry[4] is not None \
                    and len(item._entry[4]):
                # grad(x, indices) (or its difference at two points) with the job's own indices
                entry = item._entry
                self.pending.append((entry[2], _INDICES, entry[4], weight,
                                     entry[3] if item.kind is _GRAD_DIFF else None))
            else:
                self._add_now(item, weight)
                return
            if len(self.pending) >= BLOCK:
                self.flush()
            return
        self._add_now(item, weight)

    def _add_now(self, item, weight: float) -> None:
        if self.pending:
            self.flush()
        self.total += weight * as_vector(item)

    def clear(self) -> None:
        self.pending.clear()
        self.total.fill(0.0)

    def value(self) -> np.ndarray:
        if self.pending:
            self.flush()
        return super().value()

    def flush(self) -> None:
        """total + w_1 g_1 + w_2 g_2 + ..., added in order (as the eager adds would), a chunk at a time."""
        items, self.pending = self.pending, []
        chunk = max(1, CHUNK_FLOATS // self.total.size)  # gradients that stay in cache
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            gradients = self.sim._gradients(part)
            gradients *= np.array([item[3] for item in part], dtype=float)[:, None]
            stack = np.empty((len(part) + 1, self.total.size))
            stack[0] = self.total
            stack[1:] = gradients
            np.add.reduce(stack, axis=0, out=self.total)


class SimServer(ServerCore):
    housekeeping_every = 64
    block_size = BLOCK

    def __init__(self, *args, contexts: list[WorkerContext], **kwargs):
        super().__init__(*args, **kwargs)
        self.contexts = contexts
        self.clock = self.time_offset
        # (finish, sequence, worker, job id, its JobGroup or None)
        self.heap: list[tuple[float, int, int, int, JobGroup | None]] = []
        self.sequence = 0
        # Per worker: the running (job id, job, point, second point) and the queued ones.
        self.running: list[tuple | None] = [None] * self.n_workers
        self.queues: dict[int, deque[tuple]] = {}
        self.member_of = np.full(self.n_workers, -1, dtype=np.int64)  # job id of a worker's running group job
        self.groups: list[JobGroup] = []  # groups some job of which may still run
        self.groups_made = False  # until the first group, no worker is in one
        self.crash_times = self.crash_after.tolist()
        self.held_first = [-1] * self.n_workers  # the mirror of the two versions each worker holds
        self.held_second = [-1] * self.n_workers
        self.bytes_down_of = self.stats["bytes_down"]
        # Durations of fixed-time models without faults, inline: compute + comm per worker.
        timing = self.timing
        self.fixed_times = None
        if timing.distribution == "fixed" and not timing.faults:
            self.fixed_times = (timing.mean_compute.astype(float).tolist(), timing.comm_per_float.astype(float).tolist())
        self.compute_array = np.asarray(timing.mean_compute, dtype=float)
        self.comm_array = np.asarray(timing.comm_per_float, dtype=float)
        # Deferred math: noise rows drawn at completion, steps and sums waiting for a block.
        self.noise_models: dict[int, GradientNoise | None] = {}  # per batch size (one object each)
        rows = min(4096, NOISE_BYTES // (8 * self.dim))
        self.defer = rows >= 64
        self.noise = np.zeros((rows if self.defer else 1, self.dim))
        self.noise_next = 0
        # (point, noise row, noise model, step scale, PendingPoint) per deferred step x <- x - scale g
        self.pending_steps: list[tuple] = []
        self.pending_base: np.ndarray | PendingPoint | None = None
        self.sums: weakref.WeakSet[SimVectorSum] = weakref.WeakSet()  # the methods' sums, flushed on a ring wrap
        self.deferred_runs = None  # runs that keep deferred steps of their own (flushed with ours)
        # A job's own indices are deferred too when the problem computes their gradients in blocks.
        self.index_blocks = type(self.problem).grad_rows is not Problem.grad_rows
        self.compressed_blocks = CompressedBlocks(self)  # a round's compressed jobs drawn and computed at once

    def noise_model(self, batch: int) -> GradientNoise | None:
        """The problem's noise model for gradients of `batch` samples (asked once per batch size)."""
        model = self.noise_models.get(batch, False)
        if model is False:
            model = self.problem.noise_model(batch)
            if isinstance(model, SampledTerms) and any(context.shard is not None for context in self.contexts):
                model = None  # its draws are over every sample: a worker with a shard draws per event
            self.noise_models[batch] = model
        return model

    def make_points(self, x0: np.ndarray, version: int) -> SimPoints:
        points = SimPoints(x0, version, self.flush)
        self.live, self.deltas = points.live, points.deltas  # read on every assignment
        return points

    def now(self) -> float:
        return self.clock

    # ----- what methods use
    def vector_sum(self) -> VectorSum:
        vector_sum = SimVectorSum(self)
        self.sums.add(vector_sum)
        return vector_sum

    def publish(self, x: np.ndarray, *, grads_used: int, max_delay: int, delta: np.ndarray | None = None,
                **columns: float) -> int:
        self.flush()  # pending steps come first
        return super().publish(x, grads_used=grads_used, max_delay=max_delay, delta=delta, **columns)

    def step(self, direction, scale: float, *, grads_used: int, max_delay: int, **columns: float) -> int:
        if type(direction) is SimResult and direction._vector is None and direction._row >= -1 and self.defer:
            pending = self.pending_steps
            points = self.points
            if not pending:
                self.pending_base = points.live[points.current]
            point = PendingPoint()
            pending.append((direction._entry[2], direction._row, direction._noise, scale, point))
            version = self._record_step(points.advance(point), grads_used, max_delay, columns)
            if len(pending) >= BLOCK:
                self.flush()
            return version
        return super().step(direction, scale, grads_used=grads_used, max_delay=max_delay, **columns)

    def assign(self, worker: int, job: Job) -> None:
        if self.stop_reason is not None:
            return
        job_id = job.job_id = self.next_job_id
        self.next_job_id = job_id + 1
        kind = job.kind
        if (kind is _GRAD or kind is _GRAD_INDICES or kind is _GRAD_DIFF) and job.upload < 0:
            floats = self.dim
        else:
            floats = self.payload_floats(job)
        n_grads = job.n_grads
        if self.fixed_times is not None:
            compute, comm = self.fixed_times
            duration = (compute[worker] * n_grads if n_grads > 0 else 0.0) + comm[worker] * floats
        else:
            duration = self.timing.job_time(worker, n_grads, floats, self.clock, self.timing_rngs[worker])
        job.duration = duration = job.wait + duration
        if duration == math.inf:
            self.never_answering.add(worker)
        job.fail = self.clock >= self.crash_times[worker]
        # Bytes down: the point is counted as sent unless the worker holds it (the mirror of
        # what a worker process would hold; the simulator itself sends nothing).
        version = job.version
        if job.version2 < 0 and (version == self.held_first[worker] or version == self.held_second[worker]):
            sent = 0 if self.cache_points else self.dim
        else:
            sent = self._mirror(worker, job.versions)
        if job.indices is not None:
            sent += len(job.indices)
        if sent:
            self.bytes_down += FLOAT_BYTES * sent
            self.bytes_down_of[worker] += FLOAT_BYTES * sent
        self.outstanding[worker] += 1
        point = self.live.get(version)
        if point is None:
            point = self._point_ref(version)
        entry = (job_id, job, point, None if job.version2 < 0 else self._point_ref(job.version2), job.indices,
                 duration, job.fail, version)
        if self.running[worker] is None and (not self.groups_made or self.member_of[worker] < 0):  # start it now
            self.running[worker] = entry
            if duration != math.inf:
                heapq.heappush(self.heap, (self.clock + duration, self.sequence, worker, job_id, None))
                self.sequence += 1
        else:
            self.queues.setdefault(worker, deque()).append(entry)

    def assign_many(self, workers, job: Job, indices: np.ndarray | None = None) -> np.ndarray:
        """One call for many idle workers: durations, the mirror of held points and the bytes as arrays."""
        count = len(workers)
        ids = np.full(count, -1, dtype=np.int64)
        if self.stop_reason is not None or not count:
            return ids
        chosen = np.asarray(workers, dtype=np.int64)
        running, queues = self.running, self.queues
        # Each test costs no Python work per worker when none has a running or queued job.
        simple = (GROUPS_ENABLED and not self.deltas and np.bincount(chosen).max() == 1
                  and (self.member_of[chosen] < 0).all()
                  and (running.count(None) == self.n_workers or all(running[w] is None for w in chosen.tolist()))
                  and not (queues and any(w in queues for w in chosen.tolist())))
        if not simple:  # busy or repeated workers, or deltas: one at a time
            first = self.next_job_id
            for row, worker in enumerate(chosen.tolist()):
                self.assign(worker, job.copy(None if indices is None else indices[row]))
            ids[:] = np.arange(first, first + count)
            return ids
        if not self.groups_made:
            self._worker_arrays()
        job = job.copy()  # the template all entries share; per-worker fields live in the entries
        n_grads = job.n_grads if indices is None else (
            indices.shape[1] * (2 if job.kind is _GRAD_DIFF else 1))
        kind = job.kind
        floats = self.dim if (kind is _GRAD or kind is _GRAD_INDICES or kind is _GRAD_DIFF) and job.upload < 0 \
            else self.payload_floats(job)
        if self.fixed_times is not None:
            compute = self.compute_array[chosen] * n_grads if n_grads > 0 else np.zeros(count)
            durations = compute + self.comm_array[chosen] * floats
        else:
            durations = np.array([self.timing.job_time(w, n_grads, floats, self.clock, self.timing_rngs[w])
                                  for w in chosen.tolist()])
        durations = job.wait + durations
        if np.isinf(durations).any():
            self.never_answering.update(chosen[np.isinf(durations)].tolist())
        fails = self.clock >= self.crash_after[chosen]
        sent = self._mirror_many(chosen, job.versions)
        if indices is not None:
            sent = sent + indices.shape[1]
        self.bytes_down += FLOAT_BYTES * int(sent.sum())
        self.bytes_down_of[chosen] += FLOAT_BYTES * sent
        point = self.live.get(job.version)
        if point is None:
            point = self._point_ref(job.version)
        point2 = None if job.version2 < 0 else self._point_ref(job.version2)
        first = self.next_job_id
        self.next_job_id = first + count
        ids[:] = np.arange(first, first + count)
        self.outstanding[chosen] += 1
        # One group for all these jobs: only its earliest job sits in the heap (runtime/sim/job_groups.py).
        group = JobGroup(job, point, point2, job.version, indices, self.clock, chosen, ids, durations, fails,
                         self.sequence)
        self.sequence += len(group)
        self.member_of[chosen] = ids
        self.groups.append(group)
        self.groups_made = True
        group.push_next(self.heap, self.member_of)
        return ids

    def _worker_arrays(self) -> None:
        """From the first group on, the per-worker state a group changes is kept in arrays, so that starting
        or cancelling one costs array operations, not Python work per worker (a single job then pays a
        numpy element's price instead of a list item's)."""
        self.outstanding = np.array(self.outstanding, dtype=np.int64)
        self.held_first = np.array(self.held_first, dtype=np.int64)
        self.held_second = np.array(self.held_second, dtype=np.int64)
        self.stats["bytes_down"] = self.bytes_down_of = np.array(self.bytes_down_of, dtype=np.int64)

    def cancel_many(self, workers) -> None:
        """cancel() for many workers: their group jobs end with one array operation."""
        chosen = np.asarray(workers, dtype=np.int64)
        if self.compressed_blocks.saved:
            self.compressed_blocks.put_back(chosen.tolist())
        outstanding, running, queues = self.outstanding, self.running, self.queues
        if self.groups_made:  # arrays: Python work only for the workers with a job outside a group
            busy = chosen[outstanding[chosen] > 0]
            for worker in busy[self.member_of[busy] < 0].tolist():  # a group's jobs are not in `running`
                running[worker] = None
            self.member_of[chosen] = -1
            outstanding[busy] = 0
            if queues:
                cancelled = np.zeros(self.n_workers, dtype=bool)
                cancelled[busy] = True
                for worker in [worker for worker in queues if cancelled[worker]]:
                    del queues[worker]
            if self.never_answering:
                self.never_answering.difference_update(chosen.tolist())
            return
        self.member_of[chosen] = -1
        for worker in chosen.tolist():
            if outstanding[worker]:
                outstanding[worker] = 0
                running[worker] = None
                if queues:
                    queues.pop(worker, None)
        if self.never_answering:
            self.never_answering.difference_update(chosen.tolist())

    def _mirror(self, worker: int, versions: tuple[int, ...]) -> int:
        """Floats of points sent with a job at `versions`; updates the mirror of the (at most
        two) versions the worker holds, which evicts as a worker process does."""
        first, second = self.held_first, self.held_second
        sent = 0
        for version in versions:
            a, b = first[worker], second[worker]
            if version == a or version == b:
                if not self.cache_points:
                    sent += self.dim
                continue
            base = self._delta_base([v for v in (a, b) if v >= 0], version) if self.deltas else -1
            sent += self.dim if base < 0 else self.points.delta_floats(base, version)
            if b >= 0:  # full: evict the first held version this job does not need
                if a not in versions:
                    first[worker], second[worker] = b, version
                else:
                    second[worker] = version
            elif a >= 0:
                second[worker] = version
            else:
                first[worker] = version
        return sent

    def _mirror_many(self, workers: np.ndarray, versions: tuple[int, ...]) -> np.ndarray:
        """_mirror for many distinct workers at once (no deltas): floats sent to each."""
        first, second = self.held_first[workers], self.held_second[workers]
        sent = np.zeros(len(workers), dtype=np.int64)
        for version in versions:
            hit = (first == version) | (second == version)
            if not self.cache_points:
                sent += self.dim * hit
            miss = ~hit
            sent += self.dim * miss
            full = miss & (second >= 0)
            evict_first = full & ~np.isin(first, versions)
            grow = miss & (second < 0) & (first >= 0)
            empty = miss & (first < 0)
            first, second = (np.where(evict_first, second, np.where(empty, version, first)),
                             np.where(full | grow, version, second))
        self.held_first[workers], self.held_second[workers] = first, second
        return sent

    def _point_ref(self, version: int) -> np.ndarray | PendingPoint:
        """What a job keeps of point `version`: the array, or the PendingPoint that will hold it."""
        point = self.points.live.get(version)
        if point is not None:
            return point
        # An older version some job still refers to.
        for entry in [self.running[worker] for worker in range(self.n_workers)] + [
                e for queue in self.queues.values() for e in queue]:
            if entry is not None:
                if entry[7] == version:
                    return entry[2]
                if entry[1].version2 == version:
                    return entry[3]
        for group in self.groups:
            if group.version == version:
                return group.point
            if group.job.version2 == version:
                return group.point2
        raise KeyError(f"point version {version} is no longer kept (neither current, previous, pinned nor in use)")

    def _take_from(self, group: JobGroup, worker: int, job_id: int) -> tuple | None:
        """The entry of the group's job just popped (None if cancelled); the group's next job goes in the heap."""
        position = group.next
        member_of = self.member_of
        running = member_of[worker] == job_id
        if running:
            member_of[worker] = -1
        group.next = position + 1
        group.push_next(self.heap, member_of)
        if group.next >= len(group) and group.all_finite:
            self.groups.remove(group)
        return group.entry(position) if running else None

    def _start(self, worker: int, entry: tuple) -> None:
        self.running[worker] = entry
        duration = entry[5]
        if duration != math.inf:
            heapq.heappush(self.heap, (self.clock + duration, self.sequence, worker, entry[0], None))
            self.sequence += 1

    def cancel(self, worker: int) -> None:
        """Drop the worker's running and queued jobs now; their heap entries become stale."""
        if self.outstanding[worker]:
            if self.compressed_blocks.saved:
                self.compressed_blocks.put_back([worker])
            self.never_answering.discard(worker)
            self.running[worker] = None
            self.queues.pop(worker, None)
            self.outstanding[worker] = 0
            self.member_of[worker] = -1

    def _cancel(self, worker: int) -> None:
        if self.compressed_blocks.saved:
            self.compressed_blocks.put_back([worker])
        self.running[worker] = None
        self.queues.pop(worker, None)
        self.outstanding[worker] = 0
        self.member_of[worker] = -1

    # ----- results
    def _complete(self, worker: int, entry: tuple) -> tuple[Result, int]:
        """The result of a finished job (its draws made now) and its payload floats."""
        job_id, job, point, _, indices, duration, fail, version = entry
        kind = job.kind
        if not fail:
            if kind is _GRAD:
                noise = self.noise_model(job.batch)
                if noise is not None:
                    row = -1
                    if noise.width:
                        row = self.noise_next
                        if row == len(self.noise):
                            self._wrap()
                            row = 0
                        self.noise_next = row + 1
                        noise.draw(self.contexts[worker].data_rng, self.noise[row:row + 1, :noise.width])
                    return SimResult(kind, job_id, worker, version, job.batch, duration, self, entry, row,
                                     noise), self.dim
            elif kind is _GRAD_INDICES or kind is _GRAD_DIFF:  # no random draws: computed when read
                n_grads = len(indices) * (2 if kind is _GRAD_DIFF else 1)
                return SimResult(kind, job_id, worker, version, n_grads, duration, self, entry,
                                 _EXECUTE), self.dim
            elif kind is _COMPRESSED:  # with the rest of its round, in one block (compressed_blocks.py)
                payload = self.compressed_blocks.payload(worker, entry)
                if payload is not None:
                    return SimResult(kind, job_id, worker, version, job.batch, duration, self, entry, _EAGER,
                                     vector=payload), payload.size
        vector, n_grads = self.contexts[worker].execute(self._job(entry), self._lookup(entry))
        return SimResult(kind, job_id, worker, version, n_grads, duration, self, entry, _EAGER,
                         vector=vector), vector.size

    @staticmethod
    def _job(entry: tuple) -> Job:
        """The job of an entry as the worker runs it (the entries of one assign_many call share a template)."""
        job = entry[1]
        if job.job_id == entry[0]:
            return job
        copy = job.copy(entry[4])
        copy.job_id, copy.duration, copy.fail, copy.version = entry[0], entry[5], entry[6], entry[7]
        return copy

    def _lookup(self, entry: tuple):
        def point(version: int) -> np.ndarray:
            return self._resolve(entry[2] if version == entry[7] else entry[3])

        return point

    def _resolve(self, point: np.ndarray | PendingPoint) -> np.ndarray:
        if type(point) is PendingPoint:
            if point.x is None:
                self.flush()
            return point.x
        return point

    def _compute(self, result: SimResult) -> np.ndarray:
        """The vector of a result read for the first time."""
        if result._row == _EXECUTE:
            entry = result._entry
            return self.contexts[result.worker].execute(self._job(entry), self._lookup(entry))[0]
        x = self._resolve(result._entry[2])
        row = result._row
        if row >= 0:
            noise = result._noise
            return noise.gradient(self.problem, x, self.noise[row, :noise.width])
        return self.problem.full_grad(x)

    def _gradients(self, terms: list[tuple]) -> np.ndarray:
        """Rows: the gradients of deferred terms (point, noise row, noise model, ...), computed as one block."""
        resolve = self._resolve
        points = np.array([point.x if type(point) is PendingPoint and point.x is not None else resolve(point)
                           for point in [term[0] for term in terms]])
        problem = self.problem
        rows = [term[1] for term in terms]
        if min(rows) == _INDICES:
            return self._index_gradients(terms, points)
        if max(rows) < 0:
            return problem.full_grad_rows(points)
        models = [term[2] for term in terms]
        noise = models[0]
        if models.count(noise) == len(models):  # one model, so every term has a row
            # Runs fill consecutive ring rows: a slice then (the same numbers as a gather).
            index = slice(rows[0], rows[-1] + 1) if (np.diff(rows) == 1).all() else rows
            return noise.gradients(problem, points, self.noise[index, :noise.width])
        # Several models (batch sizes), or terms without draws: each group computed on its own.
        gradients = np.empty(points.shape)
        index = np.array(rows)
        exact = np.flatnonzero(index < 0)
        if exact.size:
            gradients[exact] = problem.full_grad_rows(points[exact])
        for noise in {id(model): model for model, row in zip(models, rows) if row >= 0}.values():
            chosen = np.flatnonzero([row >= 0 and model is noise for model, row in zip(models, rows)])
            gradients[chosen] = noise.gradients(problem, points[chosen], self.noise[index[chosen], :noise.width])
        return gradients

    def _index_gradients(self, terms: list[tuple], points: np.ndarray) -> np.ndarray:
        """_gradients of terms some of which are a job's own indices: grad_rows by number of indices (as
        worker.execute: grad(x, indices), or grad(x, indices) - grad(x2, indices)); the others as usual."""
        gradients = np.empty(points.shape)
        groups: dict[tuple, list[int]] = {}
        for position, term in enumerate(terms):
            key = (len(term[2]), term[4] is not None) if term[1] == _INDICES else None
            groups.setdefault(key, []).append(position)
        for key, positions in groups.items():
            if key is None:
                gradients[positions] = self._gradients([terms[position] for position in positions])
                continue
            indices = np.array([terms[position][2] for position in positions])
            block = self.problem.grad_rows(points[positions], indices)
            if key[1]:
                block -= self.problem.grad_rows(
                    np.array([self._resolve(terms[position][4]) for position in positions]), indices)
            gradients[positions] = block
        return gradients

    # ----- deferred steps
    def flush(self) -> None:
        """Compute every pending step: runs of steps whose gradients' points are known, one block each."""
        if self.deferred_runs is not None:
            self.deferred_runs.flush()
        steps = self.pending_steps
        if not steps:
            return
        self.pending_steps = []
        x = self._resolve(self.pending_base)
        self.pending_base = None
        start, count = 0, len(steps)
        while start < count:
            end = start
            while end < count:
                point = steps[end][0]
                if type(point) is PendingPoint and point.x is None:
                    break
                end += 1
            if end == start:
                raise RuntimeError(f"deferred step {start} refers to a point computed after it")
            block = steps[start:end]
            gradients = self._gradients(block)
            points = np.empty((len(block) + 1, self.dim))
            points[0] = x
            scales = [-step[3] for step in block]
            if scales.count(scales[0]) == len(scales):  # one step size (the same products)
                np.multiply(gradients, scales[0], out=points[1:])
            else:
                np.multiply(gradients, np.array(scales)[:, None], out=points[1:])
            np.add.accumulate(points, axis=0, out=points)  # x_{k+1} = x_k + (-scale_k g_k), in order
            points.flags.writeable = False
            for row, step in enumerate(block, start=1):
                step[4].x = points[row]
            x = points[-1]
            start = end

    def _wrap(self) -> None:
        """The noise ring is full: finish everything that still reads its rows."""
        self.flush()
        for vector_sum in list(self.sums):
            if vector_sum.pending:
                vector_sum.flush()
        self.noise_next = 0

    def run(self) -> None:
        """After start(): advance the clock from event to event until a stop rule fires or no work is left."""
        time_limit = math.inf if self.stop_rules.time is None else self.stop_rules.time
        with self.hook("every_result"):  # the rule the runs follow is the method's answer
            runs = StepAndRestartRuns.for_method(self) or BatchRuns.for_method(self)
        with fewer_collections():
            self._loop(runs, time_limit)
        self.flush()
        self.final_snapshot()

    def _loop(self, runs: RuleRuns | None, time_limit: float) -> None:
        """Events until a stop rule fires or no work is left; runs of results where the method allows them."""
        heap = self.heap
        running = self.running
        queues = self.queues
        heappop = heapq.heappop
        complete = self._complete
        deliver = self.deliver
        signals = self.signals
        while self.stop_reason is None:
            if signals.received is not None:
                self.check_signal()
                break
            if runs is not None and runs.take():
                continue
            next_finish = runs.next_finish() if runs is not None else (heap[0][0] if heap else math.inf)
            if next_finish == math.inf:
                # With no finite event left, time still runs to stop.time (workers may never answer).
                if self.stop_rules.time is None:
                    self.stop(StopReason.IDLE, "no worker has a job that will ever finish, and stop.time is not set")
                    break
                self.clock = time_limit
                self.check_time(time_limit)
                break
            if next_finish > time_limit:
                self.clock = time_limit
                self.check_time(time_limit)
                break
            finish, _, worker, job_id, group = heappop(heap)
            if group is None:
                entry = running[worker]
                if entry is None or entry[0] != job_id:
                    continue  # a cancelled job
            else:
                entry = self._take_from(group, worker, job_id)
                if entry is None:
                    continue  # a cancelled job
            self.clock = finish
            running[worker] = None
            result, floats = complete(worker, entry)
            # The worker moves on to its queued job before the method hands it new ones.
            if queues:
                queue = queues.get(worker)
                if queue:
                    self._start(worker, queue.popleft())
            deliver(worker, result, floats)
