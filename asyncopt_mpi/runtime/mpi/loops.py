"""MPI runtime: rank 0 runs the non-blocking parameter-server loop, ranks 1..n run the worker loop.

Server: one persistent receive per worker into a preallocated buffer (header + payload),
polled with Testany; jobs and points go out with Isend and are never waited on in the
loop. The server draws every job's duration and fixes when it ends: the job starts at the
event that caused it (the result the server was handling, as in the papers' model where
the server is instant) or when the worker's earlier jobs end. Workers on the server's host
share its monotonic clock and pad the job to that end; elsewhere they pad its duration
from its arrival. So the server's own processing and the delivery of the job do not
stretch the emulated compute times. Knowing when each result is due, the server sleeps
(adaptive back-off) while nothing is due and polls without sleeping from just before a
due time, because a process woken from sleep runs its first Python several times slower.
Shutdown: a STOP to every worker that says how many jobs it was sent; the worker drains
them, answers BYE with how many notices it sent, the server takes those notices too (an
unreceived message makes MPICH's MPI_Finalize fail on rank 0, which leaves ranks on other
hosts waiting for ever), and everyone meets at a barrier. Every wait polls politely.
"""

from __future__ import annotations

import heapq
import math
import os
import time
from collections import deque

import numpy as np
from mpi4py import MPI

from ...errors import RunError
from ...methods.base import JobKind, Method, Result
from .backoff import Backoff, poll
from .protocol import (
    B_NOTICES, CONTROL_BYTES, HEADER, PACK_FLOATS, R_DURATION, R_ID, R_KIND, R_MSG, R_N_GRADS, R_N_VALUES,
    R_OVERRUN, R_FINGERPRINT, R_SLEEP, R_VERSION, C_THROUGH, S_CANCELS_SENT, S_FAILED, S_JOBS_SENT, Msg, Notice,
    Tag, decode_job,
    encode_bye, encode_cancel, encode_cancelled, encode_job, encode_job_into, encode_stop, fill_result,
)
from .rule import RulePath
from ..points import apply_delta
from ..server import HELD_VERSIONS, ServerCore
from ..signals import SignalWatch
from ..worker import WorkerContext

SLEEP_SLICE = 2e-3  # a padding sleep checks for stop and cancel messages this often (longer when oversubscribed)
SPIN_TAIL = 1e-4  # the end of a padding sleep is polled, since a sleep may wake late
SPIN_AHEAD = 1e-4  # the server polls without sleeping from this long before a result is due
SPIN_LATE = 2e-3  # ... until this long after; a later worker is waited for with back-off
WORKER_SPIN = 3e-4  # a worker polls without sleeping this long after sending a result
REAP_SECONDS = 5e-3  # an idle server looks at its sends in flight at most this often
_KINDS = {int(kind): kind for kind in JobKind}
# Plain ints for the hot path (an enum member lookup costs a Python call each time).
_JOB, _POINT, _INDICES, _RESULT = int(Tag.JOB), int(Tag.POINT), int(Tag.INDICES), int(Tag.RESULT)
_MSG_BYE = float(Msg.BYE)
_FINISHED, _STOPPED, _CANCELLED = 0, 1, 2  # how a padding sleep ended


def _wait(request: MPI.Request, backoff: Backoff | None = None, timeout: float | None = None) -> bool:
    return poll(request.Test, backoff, timeout)


class MpiServer(ServerCore):
    housekeeping_every = 8  # results between looks at the wall clock (each costs microseconds; idle turns look too)

    def __init__(self, *args, comm: MPI.Comm, hosts: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.comm = comm
        self.hosts = hosts
        self.t0 = time.monotonic()
        n = self.n_workers
        payload = max(self.dim, self.method.max_payload_floats(self.dim))
        self.recv_buffers = [np.empty(HEADER + payload) for _ in range(n)]
        self.requests = [comm.Recv_init(self.recv_buffers[w], source=w + 1, tag=Tag.RESULT) for w in range(n)]
        self.control_buffer = bytearray(CONTROL_BYTES)
        self.control_request = comm.Recv_init(self.control_buffer, source=MPI.ANY_SOURCE, tag=Tag.CONTROL)
        self.all_requests = [*self.requests, self.control_request]
        self.notices_received = 0
        self.status_object = MPI.Status()
        self.statuses = [MPI.Status() for _ in range(n + 1)]
        # Per-worker counters as Python lists (no numpy scalars on the per-message path).
        self.jobs_sent = [0] * n
        # Cancelled jobs: the last cancelled id per worker, and how many replies for them are to come.
        self.cancelled_through = [-1] * n
        self.cancelled_pending = [0] * n
        self.cancels_sent = [0] * n
        # Job messages are encoded into per-worker buffers, reused once their send completed.
        self.packed = self.dim <= PACK_FLOATS
        self.job_buffers: list[list[list]] = [[] for _ in range(n)]  # per worker: [buffer, request] slots
        self.last_reap = 0.0
        # When each worker's jobs end (monotonic clock), and so when its next result is due.
        self.shared_clock = [host == hosts[0] for host in hosts[1:]]
        self.event_clock = time.monotonic()  # when the event being handled happened
        self.busy_until = [-np.inf] * n
        self.finishes: list[deque[float]] = [deque() for _ in range(n)]
        self.due = [math.inf] * n  # in the units of now()
        self.due_heap: list[tuple[float, int]] = []  # (due, worker), stale entries dropped when on top
        self.next_due = math.inf  # a lower bound of min(due), made exact by _next_due()
        # Sends in flight, with the buffer they read and the point version they keep alive.
        self.sends: list[MPI.Request] = []
        self.send_refs: list[tuple[np.ndarray, int | None]] = []
        self.backoff = Backoff(maximum=1e-3)
        self.rule_slots: list[list[list]] = []  # the job messages of RulePath, per worker
        if type(self.method).every_result is not Method.every_result:
            # A method that may state a rule may step in place (PointStore.step_alone loads BLAS on the
            # first step): its import, most of a second on a loaded machine, is taken here, before the
            # clock starts, instead of stalling the run's first result (and the jobs timed from it).
            import scipy.linalg.blas  # noqa: F401

    def now(self) -> float:
        return self.time_offset + time.monotonic() - self.t0

    def discard(self) -> None:
        """The run ended before it started: free the persistent receives (MPI_Finalize warns of them)."""
        for request in self.all_requests:
            request.Free()

    def _send(self, buffer: np.ndarray, dest: int, tag: Tag, version: int | None = None) -> None:
        self.sends.append(self.comm.Isend(buffer, dest, tag))
        self.send_refs.append((buffer, version))

    def _dispatch(self, worker: int, job, attached: list[tuple[int, int]]) -> None:
        dest = worker + 1
        finish = max(self.event_clock, self.busy_until[worker]) + job.duration
        self.busy_until[worker] = finish
        clock = finish if self.shared_clock[worker] else -1.0
        slot = self._job_buffer(worker)
        if len(attached) == 1 and attached[0][1] < 0 and job.indices is None and self.packed:
            slot[1] = self.comm.Isend(encode_job_into(slot[0], job, attached, clock, self.points.get(attached[0][0])),
                                      dest, _JOB)
        else:
            slot[1] = self.comm.Isend(encode_job_into(slot[0], job, attached, clock), dest, _JOB)
            for version, base in attached:
                if base >= 0:  # the deltas from a version the worker holds
                    self._send(self.points.delta_chain(base, version), dest, _POINT)
                else:
                    self.points.acquire(version)
                    self._send(self.points.get(version), dest, _POINT, version)
            if job.indices is not None and len(job.indices):  # the worker receives indices only when there are some
                self._send(np.ascontiguousarray(job.indices, dtype=np.int64), dest, _INDICES)
        self.jobs_sent[worker] += 1
        self.finishes[worker].append(finish)
        if len(self.finishes[worker]) == 1:
            self._set_due(worker, finish)

    def _job_buffer(self, worker: int) -> list:
        """A [buffer, request] slot of the worker whose previous send has completed (a new one if none)."""
        pool = self.job_buffers[worker]
        for slot in pool:
            request = slot[1]
            if request is None or request.Test():
                slot[1] = None
                return slot
        slot = [np.zeros(HEADER + (self.dim if self.packed else 0)), None]
        pool.append(slot)
        return slot

    def _job_requests(self) -> list[MPI.Request]:
        pools = [*self.job_buffers, *self.rule_slots]
        return [slot[1] for pool in pools for slot in pool if slot[1] is not None]

    def _free_rule_sends(self) -> None:
        for pool in self.rule_slots:
            for slot in pool:
                slot[1].Free()

    def _cancel(self, worker: int) -> None:
        """Tell the worker to abandon its jobs so far; each still answers, and those answers are dropped."""
        self._send(encode_cancel(self.next_job_id - 1), worker + 1, Tag.CANCEL)
        self.cancels_sent[worker] += 1
        self.cancelled_through[worker] = self.next_job_id - 1
        self.cancelled_pending[worker] = self.outstanding[worker]
        self.finishes[worker].clear()
        self.busy_until[worker] = self.event_clock  # it drops its jobs now
        self._set_due(worker, math.inf)

    def _set_due(self, worker: int, finish: float) -> None:
        """The worker's next result is due at `finish` (monotonic clock); O(log n), no scan."""
        due = self.time_offset + finish - self.t0
        self.due[worker] = due
        if due != math.inf:
            heapq.heappush(self.due_heap, (due, worker))
            if due < self.next_due:
                self.next_due = due

    def _next_due(self) -> float:
        """min(due): drop heap entries that no longer match their worker's due time."""
        heap, due = self.due_heap, self.due
        while heap and due[heap[0][1]] != heap[0][0]:
            heapq.heappop(heap)
        self.next_due = heap[0][0] if heap else math.inf
        return self.next_due

    def _idle(self, backoff: Backoff) -> None:
        """Wait a little: without sleeping when a result is due now, else with back-off."""
        now = self.now()
        if self.next_due - SPIN_AHEAD <= now and self._next_due() - SPIN_AHEAD <= now:
            late = now - SPIN_LATE
            if self.next_due < late:  # overrunning workers; wait for them with back-off
                heap, due = self.due_heap, self.due
                while heap and heap[0][0] < late:
                    stale_due, worker = heapq.heappop(heap)
                    if due[worker] == stale_due:
                        due[worker] = math.inf
                self._next_due()
            if self.next_due - SPIN_AHEAD <= now:
                os.sched_yield()
                backoff.reset()
                return
        backoff.sleep(limit=self.next_due - SPIN_AHEAD - now)

    def _reap_sends(self) -> None:
        """Forget completed sends and release the point versions they kept alive."""
        if not self.sends:
            return
        done = MPI.Request.Testsome(self.sends)
        if not done:
            return
        for index in sorted(done, reverse=True):
            _, version = self.send_refs.pop(index)
            self.sends.pop(index)
            if version is not None:
                self.points.release(version)

    def worker_name(self, worker: int) -> str:
        return f"worker {worker} (rank {worker + 1} on {self.hosts[worker + 1]})"

    def start(self) -> None:
        """The receives posted, the clock started, the method's first jobs sent."""
        for request in self.all_requests:
            request.Start()
        self.t0 = self.event_clock = time.monotonic()
        super().start()

    def run(self) -> None:
        """After start(): the event loop; a hook still running at stop.time + stop.grace is interrupted."""
        if self.time_limit != math.inf:
            grace = self.stop_rules.grace
            self.signals.arm(self.time_limit + grace - self.now(),
                             f"stop.time + stop.grace = {self.time_limit + grace:g} s")
        try:
            self._loop()
        finally:
            self.signals.disarm()

    def _loop(self) -> None:
        """React to whatever arrives, never block on one worker."""
        with self.hook("every_result"):  # the rule of the direct path is the method's answer
            rule_path = RulePath.for_server(self)
        if rule_path is not None:
            self._on_result = rule_path.on_result  # every result takes the rule's direct path
        requests, statuses, backoff = self.all_requests, self.statuses, self.backoff
        signals = self.signals
        testsome = MPI.Request.Testsome
        while not self.stopping:
            if signals.received is not None:
                self.check_signal()
                break
            ready = testsome(requests, statuses)  # every result that has arrived, handled in one turn
            if ready:
                self._on_arrivals(ready)
                backoff.reset()
                continue
            now = self.now()
            if self.check_time(now):
                break
            self.housekeeping()
            if self.sends and now - self.last_reap >= REAP_SECONDS:
                self.last_reap = now
                self._reap_sends()
            self._idle(backoff)
        self.final_snapshot()

    def _on_arrivals(self, ready: list[int]) -> None:
        """Handle every message Testsome returned (indices into all_requests), in order."""
        self.event_clock = time.monotonic()
        n, statuses = self.n_workers, self.statuses
        for position, index in enumerate(ready):
            if index == n:
                self._on_notice(statuses[position])
            elif self.stop_reason is not None:  # the run ended in this turn: later results are dropped
                self.requests[index].Start()
            else:
                self._on_result(index)
        if len(self.sends) > 4 * n:
            self._reap_sends()

    def _on_result(self, worker: int) -> None:
        buffer = self.recv_buffers[worker]
        header = buffer[:HEADER].tolist()  # one conversion instead of one per field
        if header[R_MSG] == _MSG_BYE:
            raise RunError(f"{self.worker_name(worker)} left the run before it was told to stop")
        try:
            if header[R_ID] <= self.cancelled_through[worker]:
                self._drop_cancelled(worker)
            else:
                self._take_result(worker, buffer, header)
        finally:
            # The method is done with the payload view (or failed): the buffer may take the next message.
            self.requests[worker].Start()

    def _take_result(self, worker: int, buffer: np.ndarray, header: list[float]) -> None:
        if header[R_FINGERPRINT] >= 0:
            self._check_fingerprint(worker, int(header[R_VERSION]), header[R_FINGERPRINT])
        n_values = int(header[R_N_VALUES])
        result = Result(
            _KINDS[int(header[R_KIND])], int(header[R_ID]), worker, int(header[R_VERSION]),
            buffer[HEADER : HEADER + n_values], int(header[R_N_GRADS]), duration=header[R_DURATION],
        )
        finishes = self.finishes[worker]
        finishes.popleft()
        self._set_due(worker, finishes[0] if finishes else math.inf)
        self.deliver(worker, result, n_values, header[R_SLEEP], header[R_OVERRUN])

    def _check_fingerprint(self, worker: int, version: int, found: float) -> None:
        """A point the worker rebuilt from deltas must be the server's point of that version."""
        expected = self.points.fingerprints.get(version)
        if expected is not None and abs(found - expected) > 1e-9 * max(1.0, abs(expected)):
            raise RunError(
                f"{self.worker_name(worker)} rebuilt point version {version} from deltas with squared norm "
                f"{found!r}, but the server's is {expected!r}"
            )

    def _drop_cancelled(self, worker: int) -> None:
        """The answer to a cancelled job (abandoned, or finished before the cancel arrived)."""
        self.outstanding[worker] -= 1
        self.cancelled_pending[worker] -= 1

    def _on_notice(self, status: MPI.Status) -> None:
        """A worker failed (the run fails) or received a stop signal (the run stops)."""
        source = status.Get_source()
        message = bytes(self.control_buffer[: status.Get_count(MPI.BYTE)])
        self.control_request.Start()
        self.notices_received += 1
        kind, text = message[:1], message[1:].decode("utf-8", "replace")
        if kind == Notice.SIGNAL:
            self.stop_by_signal(text, f"rank {source}")
            return
        raise RunError(f"{self.worker_name(source - 1)} failed: {text}")

    def shutdown(self, failed: bool) -> list[int]:
        """Stop every worker and drain; returns the workers that did not acknowledge in time."""
        for worker in range(self.n_workers):
            stop = encode_stop(failed, self.jobs_sent[worker], self.cancels_sent[worker])
            self._send(stop, worker + 1, Tag.STOP)
        waiting = set(range(self.n_workers))
        notices_sent = 0  # as the goodbyes count them
        grace = self.stop_rules.grace
        deadline = time.monotonic() + grace
        backoff = Backoff(maximum=1e-3)
        n = self.n_workers
        while (waiting or self.notices_received < notices_sent) and time.monotonic() < deadline:
            index, done = MPI.Request.Testany(self.all_requests)
            if done and index != MPI.UNDEFINED:
                backoff.reset()
                if index == n:
                    self.control_request.Start()  # a late notice: the run is ending anyway
                    self.notices_received += 1
                elif self.recv_buffers[index][R_MSG] == Msg.BYE:
                    waiting.discard(index)
                    notices_sent += int(self.recv_buffers[index][B_NOTICES])
                else:
                    self.requests[index].Start()  # a late result: drop it
                continue
            backoff.sleep()
        if not waiting:
            pending = self.sends + self._job_requests()
            if poll(lambda: MPI.Request.Testall(pending), timeout=grace):
                self._free_rule_sends()
            self._reap_sends()
        self.control_request.Cancel()
        _wait(self.control_request, timeout=1.0)
        self.control_request.Free()
        for worker, request in enumerate(self.requests):
            if worker not in waiting:
                request.Free()
        return sorted(waiting)


class WorkerLoop:
    """One worker rank: execute jobs in order until told to stop."""

    def __init__(self, comm: MPI.Comm, context: WorkerContext, dim: int, signals: SignalWatch | None = None,
                 ranks_on_host: int = 1):
        self.comm = comm
        # Every waking of a sleeping worker costs CPU; with many ranks per core those wakings
        # starve the ranks that work (64 workers on 2 cores: 0.36 of the ideal gradient rate
        # with 2 ms slices, 0.98 with this rule's 32 ms), so the slice grows with ranks per core.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.sleep_slice = SLEEP_SLICE * max(1.0, ranks_on_host / (2 * cores))
        self.signals = signals or SignalWatch()
        self.signal_reported = False
        self.notices_sent = 0
        self.context = context
        self.dim = dim
        self.points: dict[int, np.ndarray] = {}
        self.shape = getattr(context.problem, "shape", (dim, 1))  # matrix problems get rank-one deltas
        self.delta_size = 2 + self.shape[0] + self.shape[1]
        self.rebuilt = -1  # the version the last job rebuilt from deltas
        self.spare: list[np.ndarray] = [np.empty(dim) for _ in range(HELD_VERSIONS)]
        self.held: list[int] = []
        self.header = np.empty(HEADER + (dim if dim <= PACK_FLOATS else 0))  # room for a packed point
        self.stop_header = np.empty(HEADER)
        self.send_buffer = np.empty(HEADER + dim)
        self.send_request: MPI.Request | None = None
        self.small_sends: list[MPI.Request] = []  # CANCELLED answers in flight
        self.jobs_received = 0
        self.cancel_header = np.empty(HEADER)
        self.cancel_request = comm.Recv_init(self.cancel_header, source=0, tag=Tag.CANCEL)
        self.cancels_received = 0
        self.cancelled_through = -1
        self.backoff = Backoff()

    def run(self) -> bool:
        """Returns whether the server said the run failed."""
        comm = self.comm
        stop_request = comm.Irecv(self.stop_header, source=0, tag=Tag.STOP)
        self.cancel_request.Start()
        job_request = None
        while True:
            job_request = comm.Irecv(self.header, source=0, tag=_JOB)
            if self._wait_job_or_stop(job_request, stop_request) == 1:
                break
            started = time.monotonic()  # a job is timed from its arrival unless the clock is shared
            job_request = None
            job, finish = self._receive_job()
            if self._cancelled(job):
                continue
            duration = job.duration
            deadline = finish if finish >= 0 else started + duration  # the server's clock when shared
            try:
                vector, n_grads = self.context.execute(job, self.points.__getitem__)
                n_values = vector.size
                if self.send_request is not None and not self.send_request.Test():
                    _wait(self.send_request, self.backoff)
                if HEADER + n_values > self.send_buffer.size:  # a payload larger than a point
                    self.send_buffer = np.empty(HEADER + n_values)
                self.send_buffer[HEADER : HEADER + n_values] = vector
            except BaseException as exc:  # the problem's code, sys.exit included: report it, wait to be stopped
                self._report_error(exc)
                _wait(stop_request)
                break
            elapsed = time.monotonic() - started
            interrupted = self._sleep_until(deadline, stop_request, job)
            if interrupted == _STOPPED:
                break
            if interrupted == _CANCELLED:
                continue
            slept = max(time.monotonic() - started - elapsed, 0.0)
            overrun = max(elapsed - duration, 0.0)
            point = self.points[job.version]
            fingerprint = float(point @ point) if self.rebuilt == job.version else -1.0
            fill_result(self.send_buffer, job, n_grads, n_values, duration, slept, overrun, fingerprint)
            self.send_request = comm.Isend(self.send_buffer[: HEADER + n_values], 0, _RESULT)
        self._drain(job_request)
        return bool(self.stop_header[S_FAILED])

    def discard(self) -> None:
        """The run ended before this loop ran: free its persistent receive (MPI_Finalize warns of it)."""
        self.cancel_request.Free()

    def _take_cancels(self) -> None:
        """Read every CANCEL that has arrived (each names the last job id to abandon)."""
        while self.cancel_request.Test():
            self.cancelled_through = max(self.cancelled_through, int(self.cancel_header[C_THROUGH]))
            self.cancels_received += 1
            self.cancel_request.Start()

    def _cancelled(self, job) -> bool:
        """If the job was cancelled, answer CANCELLED instead of running it."""
        self._take_cancels()
        if job.job_id > self.cancelled_through:
            return False
        self.small_sends.append(self.comm.Isend(encode_cancelled(job.job_id), 0, Tag.RESULT))
        return True

    def _wait_job_or_stop(self, job_request: MPI.Request, stop_request: MPI.Request) -> int:
        """0 when a job header arrived, 1 when a stop did."""
        pair = [job_request, stop_request]
        backoff = self.backoff
        backoff.reset()
        spin_until = time.monotonic() + WORKER_SPIN
        while True:
            index, done = MPI.Request.Testany(pair)
            if done:
                return index
            self._report_signal()
            self._take_cancels()
            if time.monotonic() < spin_until:
                os.sched_yield()  # an asynchronous method usually answers within this window
                backoff.reset()
            else:
                backoff.sleep()

    def _receive_job(self):
        """The job whose header arrived, with its points and indices, and its end on the shared clock (or -1)."""
        job, attached, n_indices, finish, packed = decode_job(self.header)
        self.jobs_received += 1
        self.rebuilt = -1
        for version, base in attached:
            if base >= 0:  # a chain of deltas from a held version: rebuild before anything is evicted
                chain = np.empty(self.delta_size * (version - base))
                _wait(self.comm.Irecv(chain, source=0, tag=_POINT), self.backoff)
                rebuilt = self.spare.pop() if self.spare else np.empty(self.dim)
                rebuilt[:] = self.points[base]
                for step in chain.reshape(version - base, self.delta_size):
                    apply_delta(rebuilt, step, self.shape)
                self._hold(job, version, rebuilt)
                self.rebuilt = version
                continue
            if version in self.points:  # sent again (workers.cache_points = false): refresh in place
                buffer = self.points[version]
            else:
                buffer = self.spare.pop() if self.spare else np.empty(self.dim)
                self._hold(job, version, buffer)
            if packed:
                buffer[:] = self.header[HEADER : HEADER + self.dim]
            else:
                _wait(self.comm.Irecv(buffer, source=0, tag=_POINT), self.backoff)
        if n_indices:
            indices = np.empty(n_indices, dtype=np.int64)
            _wait(self.comm.Irecv(indices, source=0, tag=_INDICES), self.backoff)
            job.indices = indices
        return job, finish

    def _hold(self, job, version: int, buffer: np.ndarray) -> None:
        """Keep `buffer` as `version`, evicting exactly as the server's mirror does (ServerCore._attach)."""
        if len(self.held) >= HELD_VERSIONS:
            evict = next(v for v in self.held if v not in job.versions)
            self.held.remove(evict)
            self.spare.append(self.points.pop(evict))
        self.points[version] = buffer
        self.held.append(version)

    def _sleep_until(self, deadline: float, stop_request: MPI.Request, job) -> int:
        """Sleep until deadline, unless a stop arrives or the job is cancelled meanwhile."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _FINISHED
            if remaining > SPIN_TAIL:
                time.sleep(min(remaining - SPIN_TAIL, self.sleep_slice))
            if stop_request.Test():
                return _STOPPED
            if self._cancelled(job):
                return _CANCELLED
            self._report_signal()

    def _notify(self, kind: bytes, text: str) -> None:
        message = (kind + text.encode("utf-8"))[:CONTROL_BYTES]
        _wait(self.comm.Isend(message, 0, Tag.CONTROL))
        self.notices_sent += 1

    def _report_error(self, exc: BaseException) -> None:
        self._notify(Notice.ERROR, f"{type(exc).__name__}: {exc}")

    def _report_signal(self) -> None:
        """Tell the server once that this rank got a stop signal; the server ends the run."""
        if self.signals.received is not None and not self.signal_reported:
            self.signal_reported = True
            self._notify(Notice.SIGNAL, self.signals.name)

    def _drain(self, job_request: MPI.Request | None) -> None:
        """Receive the jobs the server sent but we will not run, then say goodbye."""
        if job_request is not None:
            job_request.Cancel()
            status = MPI.Status()
            poll(lambda: job_request.Test(status))
            if not status.Is_cancelled():  # a job header had already matched it
                self._receive_job()
        jobs_sent = int(self.stop_header[S_JOBS_SENT])
        while self.jobs_received < jobs_sent:
            _wait(self.comm.Irecv(self.header, source=0, tag=Tag.JOB), self.backoff)
            self._receive_job()
        cancels_sent = int(self.stop_header[S_CANCELS_SENT])
        while self.cancels_received < cancels_sent:
            poll(lambda: self._take_cancels() or self.cancels_received >= cancels_sent, self.backoff)
        self.cancel_request.Cancel()
        _wait(self.cancel_request)
        self.cancel_request.Free()
        for request in [self.send_request, *self.small_sends]:
            if request is not None:
                _wait(request)
        _wait(self.comm.Isend(encode_bye(self.notices_sent), 0, Tag.RESULT))
