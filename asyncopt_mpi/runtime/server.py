"""The server state shared by both runtimes: points, job bookkeeping, recording and stop rules.

Methods see this object as `server` (methods.base.Server). A runtime subclasses it and
supplies `now()` and `_dispatch()` (how a job reaches a worker), and calls `deliver()` with
every result; everything a method can observe is computed here once, so the MPI server
and the simulator cannot disagree on it.
"""

from __future__ import annotations

import math
import signal
import time
import traceback
from contextlib import contextmanager
from enum import Enum

import numpy as np

from ..config import Config
from ..errors import AsyncoptError, ConfigError, RunError
from ..methods.base import Job, Method, Result
from ..objective import reported
from ..methods.vectors import VectorSum, as_vector
from ..problems.base import Problem
from ..problems.splits import split_summary
from ..results import ResultsWriter, ResumePoint
from ..timing import TimingModel
from ..progress import Progress
from .points import PointStore
from .signals import HOOK_GRACE, Interrupted, SignalWatch
from .worker import TimingStreams, server_seed, timing_rng

HELD_VERSIONS = 2  # point versions a worker keeps (two for jobs at a pair of points)
HOUSEKEEPING_SECONDS = 0.02
FLOAT_BYTES = 8
SHOWN_CHARACTERS = 200  # of an exception's message in an error line


class StopReason(str, Enum):
    TIME = "time"
    ITERATIONS = "iterations"
    GRADIENTS = "gradients"
    TARGET = "target"
    IDLE = "idle"
    SIGNAL = "signal"
    ERROR = "error"
    METHOD = "method"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"  # a method hook did not return by stop.time + stop.grace


COMPLETED_REASONS = {StopReason.TIME, StopReason.ITERATIONS, StopReason.GRADIENTS, StopReason.TARGET, StopReason.METHOD}
DIVERGENCE_FACTOR = 1e6  # a loss above f_ref + 1e6 (f(x0) - f*) at a snapshot, or a non-finite one, ends the run


def failure_text(exc: BaseException) -> str:
    """`Type: message (at file:line)` of an unexpected exception, its message cut to a bounded length."""
    text = str(exc)
    if len(text) > SHOWN_CHARACTERS:
        text = text[:SHOWN_CHARACTERS] + "..."
    # The innermost frame, so the bug can be found.
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {frame.filename}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"


class ServerCore:
    housekeeping_every = 1  # events between looks at the wall clock (the simulator's are fast)

    def __init__(
        self,
        config: Config,
        problem: Problem,
        method: Method,
        writer: ResultsWriter,
        timing: TimingModel,
        f_star: float = math.nan,
        resume: ResumePoint | None = None,
    ):
        n_workers = timing.n_workers
        self.config = config
        self.problem = problem
        self.method = method
        self.writer = writer
        self.n_workers = n_workers
        self.f_star = f_star
        segment = config.segment
        self.rng = np.random.Generator(np.random.PCG64(server_seed(config.workers.seed, segment)))
        # Job durations are drawn here, in job order per worker, in both runtimes.
        self.timing = timing
        self.timing_rngs = TimingStreams(config.workers.seed, segment)  # made on first use
        self.expected_times = timing.expected_compute()
        self.comm_times = timing.comm_per_float.copy()
        self.crash_after = np.array(config.workers.crash_after or [math.inf] * n_workers, dtype=float)
        if len(self.crash_after) != n_workers:
            raise ConfigError(f"workers.crash_after: has {len(self.crash_after)} entries but the run has {n_workers} workers")
        self.never_answering: set[int] = set()  # workers given a job of infinite duration
        self.resume = resume
        if resume is None:
            self.points = self.make_points(problem.x0(), 0)
        else:
            self.points = self.make_points(resume.state.get("point", resume.x), resume.iteration)
        self.dim = self.points.dim
        self.shape = getattr(problem, "shape", None)  # (rows, cols) of a matrix problem
        # Versions each worker holds, mirrored exactly as the worker evicts them.
        self.held: list[list[int]] = [[] for _ in range(n_workers)]
        self.cache_points = config.workers.cache_points
        self.outstanding = [0] * n_workers
        self.next_job_id = 0
        self.grads_received = 0
        self.bytes_up = 0
        self.bytes_down = 0
        # Per-worker counters as Python lists: adding to a list item is several times cheaper
        # than to a numpy element, and these change on every result.
        self.stats: dict[str, list] = {
            name: [0] * n_workers for name in ("jobs", "grads", "bytes_up", "bytes_down")
        } | {name: [0.0] * n_workers for name in ("busy_time", "sleep_time", "overrun_time")}
        self.shard_stats: dict[str, np.ndarray] = {}
        self.signals = SignalWatch()  # installed by the session; read by the run loops
        self.progress = Progress(quiet=True, virtual=config.backend == "sim")  # the session sets the real one
        self.last_loss = math.nan
        self.next_housekeeping = 0.0
        self.stop_signal: int | None = None
        self.time_offset = 0.0  # seconds already run before a resume
        if resume is not None:
            self.time_offset = resume.time
            self.grads_received, self.bytes_up, self.bytes_down = resume.grads, resume.bytes_up, resume.bytes_down
            for name, values in resume.workers.items():
                if name in self.stats and len(values) == n_workers:
                    self.stats[name] = values.tolist()
        writer.worker_stats = self.worker_table
        # The per-event path reads these lists and limits directly.
        self.jobs_of, self.grads_of = self.stats["jobs"], self.stats["grads"]
        self.busy_time_of, self.bytes_up_of = self.stats["busy_time"], self.stats["bytes_up"]
        self.stop_reason: StopReason | None = None
        self.stop_detail = ""
        self.stop_rules = config.stop
        rules = config.stop
        self.gradient_limit = math.inf if rules.gradients is None else rules.gradients
        self.time_limit = math.inf if rules.time is None else rules.time
        self.iteration_limit = math.inf if rules.iterations is None else rules.iterations
        self.countdown = self.housekeeping_every  # events until the next housekeeping
        self.snapshot_every = config.output.snapshot_every
        self.last_snapshot_time = -math.inf if resume is None else resume.time
        self.last_snapshot_version = -1 if resume is None else resume.iteration
        self._trace_extra = method.trace_columns
        self._payload_cache: dict[tuple, int] = {}

    def make_points(self, x0: np.ndarray, version: int) -> PointStore:
        """The store of numbered points (the simulator has its own)."""
        return PointStore(x0, version=version)

    # ----- what methods use -----
    @property
    def x(self) -> np.ndarray:
        return self.points.get(self.points.current)

    @property
    def version(self) -> int:
        return self.points.current

    def now(self) -> float:
        raise NotImplementedError

    def new_point(self) -> np.ndarray:
        return self.points.new_buffer()

    def publish(
        self, x: np.ndarray, *, grads_used: int, max_delay: int, delta: np.ndarray | None = None, **columns: float
    ) -> int:
        """Make x the new point, record a trace row, and check the iteration limit.

        `delta` = [a, b, u, v] says x = a x_previous + b u v^T (a matrix problem's rank-one
        step): workers that hold the previous point then get the delta instead of x.
        """
        return self._record_step(self.points.publish(x, delta), grads_used, max_delay, columns)

    def step(self, direction, scale: float, *, grads_used: int, max_delay: int, **columns: float) -> int:
        """Publish x - scale * direction (a Result, a VectorSum or an array), into a pooled buffer."""
        x_next = self.points.new_buffer()
        np.multiply(as_vector(direction), -scale, out=x_next)
        x_next += self.x
        return self._record_step(self.points.publish(x_next), grads_used, max_delay, columns)

    def vector_sum(self) -> VectorSum:
        """A zeroed accumulator of vectors of the problem's dimension."""
        return VectorSum(self.dim)

    def _record_step(self, version: int, grads_used: int, max_delay: int, columns: dict) -> int:
        extra = self._trace_extra
        if not extra:
            self.writer.trace((self.now(), version, grads_used, max_delay, self.bytes_up, self.bytes_down))
        elif len(extra) == 1:
            self.writer.trace((self.now(), version, grads_used, max_delay, self.bytes_up, self.bytes_down,
                               float(columns.get(extra[0], math.nan))))
        else:
            self.writer.trace((self.now(), version, grads_used, max_delay, self.bytes_up, self.bytes_down,
                               *[float(columns.get(name, math.nan)) for name in extra]))
        if version >= self.iteration_limit:
            self.stop(StopReason.ITERATIONS, f"stop.iterations = {self.stop_rules.iterations} reached")
        return version

    def payload_floats(self, job: Job) -> int:
        """Floats of the job's payload that its upload time is charged for, cached per kind of job."""
        key = (job.kind, job.compressor, job.compress_param, job.copies, job.charge_seed, job.upload)
        floats = self._payload_cache.get(key)
        if floats is None:
            floats = self._payload_cache[key] = job.payload_floats(self.dim, self.shape)
        return floats

    def assign(self, worker: int, job: Job) -> None:
        if self.stop_reason is not None:
            return
        job.job_id = self.next_job_id
        self.next_job_id += 1
        job.duration = job.wait + self.timing.job_time(
            worker, job.n_grads, self.payload_floats(job), self.now(), self.timing_rngs[worker]
        )
        if job.duration == math.inf:
            self.never_answering.add(worker)
        job.fail = self.now() >= self.crash_after[worker]
        attached = self._attach(worker, job.versions)
        sent = sum(self.dim if base < 0 else self.points.delta_floats(base, version) for version, base in attached)
        sent += 0 if job.indices is None else len(job.indices)
        self.bytes_down += FLOAT_BYTES * sent
        self.stats["bytes_down"][worker] += FLOAT_BYTES * sent
        self.outstanding[worker] += 1
        self._dispatch(worker, job, attached)

    def master_time(self, n_grads: int) -> float:
        """Seconds the server itself needs for work worth n_grads gradients (one draw; its own stream)."""
        if not hasattr(self, "_master_rng"):
            self._master_rng = timing_rng(self.config.workers.seed, self.n_workers, self.config.segment)
        return self.timing.master_time(n_grads, self._master_rng)

    def assign_many(self, workers, job: Job, indices: np.ndarray | None = None) -> np.ndarray:
        """Give each of `workers` a copy of `job` (row i of `indices` to workers[i]); returns their job ids."""
        ids = np.full(len(workers), -1, dtype=np.int64)
        if self.stop_reason is not None:
            return ids
        for row, worker in enumerate(workers):
            one = job.copy(None if indices is None else indices[row])
            self.assign(int(worker), one)
            ids[row] = one.job_id
        return ids

    def cancel(self, worker: int) -> None:
        """Abandon the worker's current and queued jobs: their results never reach the method."""
        if self.outstanding[worker]:
            self.never_answering.discard(worker)
            self._cancel(worker)

    def cancel_many(self, workers) -> None:
        """cancel() for each of `workers` (one call; the simulator ends a whole group of jobs at once)."""
        for worker in np.asarray(workers, dtype=np.int64).tolist():
            self.cancel(worker)

    def pin(self, version: int) -> None:
        """Keep `version` alive after newer points are published (e.g. an SVRF anchor)."""
        self.points.acquire(version)

    def unpin(self, version: int) -> None:
        self.points.release(version)

    def idle_workers(self) -> list[int]:
        return [worker for worker, count in enumerate(self.outstanding) if count == 0]

    def stop(self, reason: StopReason | str, detail: str = "") -> None:
        """End the run after the current step; the first reason given is kept."""
        if self.stop_reason is None:
            self.stop_reason = StopReason(reason)
            self.stop_detail = detail

    def fail(self, detail: str) -> None:
        """The run failed: this overrides any earlier stop reason."""
        self.stop_reason = StopReason.ERROR
        self.stop_detail = detail

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    # ----- calling the method's hooks
    def call_method(self, hook: str, *args):
        """The method's `hook`(self, *args): anything it raises is a method failure (see method_failed)."""
        with self.hook(hook):
            return getattr(self.method, hook)(self, *args)

    @contextmanager
    def hook(self, name: str):
        """Code of the method's hook `name` runs inside: the stop alarm may interrupt it (signals.py), and
        what it raises, SystemExit and KeyboardInterrupt too, ends the run as a method failure."""
        signals = self.signals
        outer = signals.running
        signals.running = name
        try:
            yield
        except BaseException as exc:
            self.method_failed(name, exc)
        signals.running = outer

    def method_failed(self, hook: str, exc: BaseException):
        """Raise what `exc`, raised in the method's `hook`, means for the run: a RunError naming the
        method and hook; the project's own errors and an Interrupted stay as they are."""
        self.signals.running = None
        if isinstance(exc, (AsyncoptError, Interrupted)):
            raise exc
        raise RunError(f"method {self.method.name!r} failed in {hook}: {failure_text(exc)}") from exc

    def interrupted(self, stop: Interrupted) -> None:
        """A hook did not return after a stop signal or by the time limit: the run stops there, and
        the method, whose state is now unsure, is not called again (no final snapshot)."""
        self.signals.running = None
        late = f"method {self.method.name!r} did not return from {stop.running}"
        if self.signals.received is not None:
            self.stop_signal = signal.Signals(self.signals.received)
            self.stop_reason = StopReason.SIGNAL
            self.stop_detail = f"{self.signals.name} received; {late} within {HOOK_GRACE:g} s, interrupted"
        else:
            self.stop_reason = StopReason.INTERRUPTED
            self.stop_detail = f"{late} by {stop.cause}"

    # ----- what runtimes use -----
    def record_shards(self, shards: list[np.ndarray | None]) -> None:
        """Per-worker shard sizes and distinct labels, written to /workers at the end."""
        summary = split_summary(shards, self.problem.labels(), self.problem.n_samples)
        self.shard_stats = {"shard_size": summary["sizes"], "shard_labels": summary["distinct_labels"]}

    def worker_table(self) -> dict[str, np.ndarray]:
        """The per-worker counters as arrays, for the results file."""
        return {name: np.asarray(values) for name, values in self.stats.items()} | self.shard_stats

    def _dispatch(self, worker: int, job: Job, attached: list[tuple[int, int]]) -> None:
        raise NotImplementedError

    def _cancel(self, worker: int) -> None:
        raise NotImplementedError

    def _attach(self, worker: int, versions: tuple[int, ...]) -> list[tuple[int, int]]:
        """(version, base) to send with a job, base -1 for the point itself or the held version a
        chain of deltas rebuilds it from (when that is smaller); updates the mirror of what the
        worker holds, which evicts as the worker does. The mirror may be a subset of what the worker
        holds (the MPI server's direct path clears it), never more."""
        held = self.held[worker]
        if len(versions) == 1 and versions[0] in held:  # the common case
            return [] if self.cache_points else [(versions[0], -1)]
        attached = []
        for version in versions:
            if version in held:
                if not self.cache_points:
                    attached.append((version, -1))
                continue
            attached.append((version, self._delta_base(held, version)))
            if len(held) >= HELD_VERSIONS:
                evict = next(v for v in held if v not in versions)
                held.remove(evict)
            held.append(version)
        return attached

    def _delta_base(self, held: list[int], version: int) -> int:
        """The newest held version that deltas rebuild `version` from in fewer floats than the point, or -1."""
        store = self.points
        if not store.deltas:
            return -1
        for base in sorted((v for v in held if v < version), reverse=True):
            floats = store.delta_floats(base, version)
            if 0 < floats < self.dim:
                return base
        return -1

    def start(self) -> None:
        """The method's start (the first jobs); the run's file is published only once this has returned."""
        self.call_method("start")
        if self.resume is None:
            self.take_snapshot()
        else:
            self.call_method("load_state", self.resume.state, self.resume.x)

    def deliver(self, worker: int, result: Result, payload_floats: int, sleep: float = 0.0, overrun: float = 0.0) -> None:
        """Hand a worker's result to the method and record it."""
        now = self.now()
        result.delay = delay = self.points.current - result.version
        self.outstanding[worker] -= 1
        n_grads = result.n_grads
        self.grads_received += n_grads
        n_bytes = FLOAT_BYTES * payload_floats
        self.bytes_up += n_bytes
        self.jobs_of[worker] += 1
        self.grads_of[worker] += n_grads
        self.busy_time_of[worker] += result.duration
        self.bytes_up_of[worker] += n_bytes
        if sleep or overrun:  # only workers that really sleep (MPI) report these
            self.stats["sleep_time"][worker] += sleep
            self.stats["overrun_time"][worker] += overrun
        signals = self.signals
        signals.running = "on_result"  # the hot path's hook: a flag, no context manager
        try:
            accepted = self.method.on_result(self, worker, result)
        except BaseException as exc:
            self.method_failed("on_result", exc)
        signals.running = None
        self.writer.event((now, worker, result.kind, result.version, delay, accepted))
        self.after_results(now, 1)

    def after_results(self, now: float, count: int) -> None:
        """The stop rules, snapshots and housekeeping due after `count` results, the last one at `now`."""
        if self.grads_received >= self.gradient_limit:
            self.stop(StopReason.GRADIENTS, f"stop.gradients = {self.stop_rules.gradients} reached")
        if now - self.last_snapshot_time >= self.snapshot_every:
            self.take_snapshot(now)
        if now >= self.time_limit:
            self.check_time(now)
        self.countdown -= count
        if self.countdown <= 0:
            self.countdown = self.housekeeping_every
            self.housekeeping()

    def housekeeping(self) -> None:
        """Flush the file at least once a second; show progress now and then (looked at every 20 ms)."""
        now = time.monotonic()
        if now < self.next_housekeeping:
            return
        self.next_housekeeping = now + HOUSEKEEPING_SECONDS
        self.writer.maybe_flush()
        self.progress.tick(self)

    def take_snapshot(self, now: float | None = None) -> None:
        """Store the current point; stop on a non-finite point or a reached target."""
        now = self.now() if now is None else now
        x = self.call_method("iterate")
        self.writer.snapshot(
            now, self.version, self.grads_received, self.bytes_up + self.bytes_down, x, self.call_method("state")
        )
        self.last_snapshot_time = now
        self.last_snapshot_version = self.version
        self.last_loss = float(reported(self.problem).loss(x)) if np.isfinite(x).all() else math.inf
        if self._diverged(self.last_loss, now):
            return
        target = self.stop_rules.target
        if target is not None and math.isfinite(self.f_star) and self.last_loss - self.f_star <= target:
            self.stop(StopReason.TARGET, f"stop.target = {target:g} reached")

    def _diverged(self, loss: float, now: float) -> bool:
        """Stop with status diverged when the loss is non-finite or beyond f_ref + 1e6 x the initial gap."""
        if not hasattr(self, "_loss_bound"):
            objective = reported(self.problem)
            f0 = float(objective.loss(self.problem.x0()))
            gap = f0 - self.f_star if math.isfinite(self.f_star) and f0 > self.f_star else max(abs(f0), 1.0)
            self._loss_bound = (self.f_star if math.isfinite(self.f_star) else f0) + DIVERGENCE_FACTOR * gap
        if math.isfinite(loss) and loss <= self._loss_bound:
            return False
        what = "the iterate became non-finite (nan or inf)" if not math.isfinite(loss) else \
            f"the loss reached {loss:.3g}, beyond {DIVERGENCE_FACTOR:g} x the initial gap (bound {self._loss_bound:.3g})"
        self.stop(StopReason.DIVERGED, f"{what} at iteration {self.version}, time {now:.3g} s; "
                                       f"try a smaller method.lr (now {self.config.method.lr:g})")
        return True

    def final_snapshot(self) -> None:
        if self.last_snapshot_version != self.version or self.now() > self.last_snapshot_time:
            self.take_snapshot()

    def check_signal(self) -> bool:
        if self.signals.received is None:
            return False
        self.signals.disarm()  # the loop saw the signal itself: no hook is holding it up
        self.stop_by_signal(self.signals.name, "")
        return True

    def stop_by_signal(self, name: str, where: str) -> None:
        """Stop because rank `where` (or this process) received signal `name`."""
        if self.stop_reason is None:
            self.stop_signal = signal.Signals[name]
        self.stop(StopReason.SIGNAL, f"{name} received{' by ' + where if where else ''}")

    def exit_code(self) -> int:
        """0, or 128 + signal number after SIGINT/SIGTERM anywhere (SIGUSR1 is a planned stop: 0)."""
        if self.stop_signal in (None, signal.SIGUSR1):
            return 1 if self.stop_reason == StopReason.DIVERGED else 0
        return 128 + int(self.stop_signal)

    def check_time(self, now: float) -> bool:
        limit = self.stop_rules.time
        if limit is not None and now >= limit:
            detail = f"stop.time = {limit:g} s reached"
            if self.never_answering:
                names = ", ".join(str(worker) for worker in sorted(self.never_answering)[:10])
                detail += f"; never answered (infinite compute time): worker {names}"
            self.stop(StopReason.TIME, detail)
            return True
        return False

    def status(self) -> tuple[str, str]:
        """(status, stop_reason) for the results file."""
        reason = self.stop_reason
        if reason is None:
            return "failed", "error: the run ended without a stop reason"
        if reason in COMPLETED_REASONS:
            status = "completed"
        elif reason == StopReason.DIVERGED:
            status = "diverged"
        elif reason == StopReason.ERROR:
            status = "failed"
        else:
            status = "stopped"
        return status, f"{reason.value}: {self.stop_detail}" if self.stop_detail else reason.value
