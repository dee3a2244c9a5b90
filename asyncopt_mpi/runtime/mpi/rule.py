"""The MPI server's direct path for a method's StepAndRestart rule: no Result, Job or method call per message.

The rule says what `on_result` would do with every result. A one-result rule (asynchronous
SGD): x <- x - scale * g, then the same job again for the same worker at the new point. A
batch rule (Rennala SGD: collect = S, fresh_only): the result joins the batch unless it is
stale, a full batch is one step, then the worker restarts at the current point. So the
server does exactly that, with the bookkeeping of `ServerCore.deliver`, `assign` and
`MpiServer._dispatch` written out once for these cases: the restart's job header is the same
every time but for six slots, written into a per-worker buffer (one that carries the point
after it, one without for a worker that already holds the point) that goes out on a
persistent send. Any other message (a goodbye, an answer to a cancelled job, a point rebuilt
from deltas) takes the general path.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ...methods.base import JobKind, StepAndRestart
from .protocol import (
    HEADER, J_ATTACHED, J_DURATION, J_FAIL, J_FINISH, J_ID, J_VERSION, R_DURATION, R_FINGERPRINT, R_ID, R_MSG,
    R_N_GRADS, R_N_VALUES, R_OVERRUN, R_SLEEP, R_VERSION, Msg, Tag, encode_job,
)
from ..server import FLOAT_BYTES, HELD_VERSIONS, StopReason

_GRAD = JobKind.GRAD
_RESULT, _JOB = float(Msg.RESULT), int(Tag.JOB)
_FIELDS = R_FINGERPRINT + 1  # the result header's slots read here
_NEVER = math.inf  # no due time (a module global: one lookup, not two)


class RulePath:
    """Handles each result of a one-result StepAndRestart rule on the MPI server (see the module doc)."""

    def __init__(self, server, rule: StepAndRestart):
        job = rule.job
        self.server = server
        self.general = server._on_result  # everything the rule does not cover
        self.scale = rule.scale
        self.columns = tuple(float(rule.columns.get(name, math.nan)) for name in server.method.trace_columns)
        self.payload = server.payload_floats(job)
        self.n_grads = job.n_grads
        self.wait = job.wait
        timing = server.timing
        # With fixed times and no faults every restart of a worker takes the same time (no draw).
        self.durations = None
        if timing.distribution == "fixed" and timing.comm_range is None and not timing.faults:
            self.durations = [job.wait + timing.job_time(worker, job.n_grads, self.payload, 0.0, None)
                              for worker in range(server.n_workers)]
        self.crash_times = server.crash_after.tolist()
        stats = server.stats
        self.sleep_time_of, self.overrun_time_of, self.bytes_down_of = (
            stats["sleep_time"], stats["overrun_time"], stats["bytes_down"])
        self.point_bytes = FLOAT_BYTES * server.dim
        self.trace, self.event = server.writer.trace, server.writer.event  # the rows' appends
        # The fixed slots of every restart: with the point packed after the header, and without a point.
        self.headers = (encode_job(job, [(0, -1)], point=np.zeros(server.dim)), encode_job(job, []))
        # Views made once: a result's header and gradient in each worker's receive buffer.
        self.result_headers = [buffer[:_FIELDS] for buffer in server.recv_buffers]
        self.gradients = [buffer[HEADER : HEADER + server.dim] for buffer in server.recv_buffers]
        # Per worker a pool of messages with the point, then (index n + worker) a pool of messages without.
        server.rule_slots = [[] for _ in range(2 * server.n_workers)]

    @classmethod
    def for_server(cls, server) -> "RulePath | None":
        """The path for the method's rule, if it states one and its job travels in one packed message."""
        rule = server.method.every_result(server)
        if type(rule) is not StepAndRestart or not server.packed or server.points.deltas:
            return None
        job = rule.job
        if job.kind is not _GRAD or job.indices is not None or job.version2 >= 0:
            return None
        if rule.collect == 1 and not rule.fresh_only:
            return cls(server, rule)
        return BatchRulePath(server, rule)

    def on_result(self, worker: int) -> None:
        """deliver() for one result: its bookkeeping, the rule's step and restart, the rows, the stop rules."""
        server = self.server
        received = self._received(server, worker)
        if received is None:
            return
        now, version, delay, n_grads = received
        points = server.points
        try:
            new_version = points.step_alone(self.gradients[worker], self.scale)
        finally:
            server.requests[worker].Start()  # the payload is used: the buffer may take the next message
        self.trace((now, new_version, n_grads, delay, server.bytes_up, server.bytes_down) + self.columns)
        if new_version >= server.iteration_limit:
            server.stop(StopReason.ITERATIONS, f"stop.iterations = {server.stop_rules.iterations} reached")
        if server.stop_reason is None:  # its job is done and the next one out: outstanding stays
            held = server.held[worker]  # the mirror of the worker's points, for _attach to send by reference
            if held:  # a subset of what the worker holds is enough: every point of the rule's restarts goes in full
                held.clear()
            self._restart(server, worker, new_version, points.get(new_version), now)
        else:
            server.outstanding[worker] -= 1
        self.event((now, worker, _GRAD, version, delay, True))
        self._after(server, now)

    def _received(self, server, worker: int) -> tuple[float, int, int, int] | None:
        """deliver()'s bookkeeping of a result of the rule's job: (now, its point version, its delay, its gradients);
        None when the message is anything else, which the general path has then handled."""
        header = self.result_headers[worker].tolist()
        if header[R_MSG] != _RESULT or header[R_ID] <= server.cancelled_through[worker] or header[R_FINGERPRINT] >= 0:
            self.general(worker)
            return None
        finishes = server.finishes[worker]
        finishes.popleft()
        if finishes:
            server._set_due(worker, finishes[0])
        else:
            server.due[worker] = _NEVER
        now = server.time_offset + time.monotonic() - server.t0  # server.now()
        version = int(header[R_VERSION])
        n_grads = int(header[R_N_GRADS])
        n_bytes = FLOAT_BYTES * int(header[R_N_VALUES])
        server.grads_received += n_grads
        server.bytes_up += n_bytes
        server.jobs_of[worker] += 1
        server.grads_of[worker] += n_grads
        server.busy_time_of[worker] += header[R_DURATION]
        server.bytes_up_of[worker] += n_bytes
        self.sleep_time_of[worker] += header[R_SLEEP]
        self.overrun_time_of[worker] += header[R_OVERRUN]
        return now, version, server.points.current - version, n_grads

    @staticmethod
    def _after(server, now: float) -> None:
        """after_results(now, 1), looked at only when something can be due."""
        if server.countdown > 1 and server.grads_received < server.gradient_limit and now < server.time_limit \
                and now - server.last_snapshot_time < server.snapshot_every:
            server.countdown -= 1  # nothing else is due after this result
        else:
            server.after_results(now, 1)

    def _restart(self, server, worker: int, version: int, point: np.ndarray | None, now: float) -> None:
        """assign() and _dispatch() of the rule's job at `version`, with `point` packed (None: the worker holds it)."""
        job_id = server.next_job_id
        server.next_job_id += 1
        if self.durations is not None:
            duration = self.durations[worker]
        else:
            duration = self.wait + server.timing.job_time(worker, self.n_grads, self.payload, now,
                                                          server.timing_rngs[worker])
        if duration == _NEVER:
            server.never_answering.add(worker)
        if point is not None:
            server.bytes_down += self.point_bytes
            self.bytes_down_of[worker] += self.point_bytes
        clock, busy = server.event_clock, server.busy_until[worker]
        finish = (clock if clock > busy else busy) + duration  # max(), without the call
        server.busy_until[worker] = finish
        pool = worker if point is not None else server.n_workers + worker
        slots = server.rule_slots[pool]
        if slots and slots[0][1].Test():  # the usual case: the worker's last job message has gone
            message, send, message_point = slots[0]
        else:
            message, send, message_point = self._slot(server, worker, pool)
        if point is not None:
            message_point[:] = point
            message[J_ATTACHED] = version
        message[J_ID] = job_id
        message[J_VERSION] = version
        message[J_DURATION] = duration
        message[J_FINISH] = finish if server.shared_clock[worker] else -1.0
        message[J_FAIL] = now >= self.crash_times[worker]
        send.Start()
        server.jobs_sent[worker] += 1
        finishes = server.finishes[worker]
        finishes.append(finish)
        if len(finishes) == 1:
            server._set_due(worker, finish)

    def _slot(self, server, worker: int, pool: int) -> list:
        """A [message, persistent send, the message's point] of `pool` whose previous send has completed
        (a new one if none)."""
        slots = server.rule_slots[pool]
        for slot in slots:
            if slot[1].Test():  # an inactive persistent request tests complete
                return slot
        message = self.headers[pool != worker].copy()
        slot = [message, server.comm.Send_init(message, worker + 1, _JOB), message[HEADER:]]
        slots.append(slot)
        return slot


class BatchRulePath(RulePath):
    """Handles each result of a batch rule (collect > 1 or fresh_only: Rennala SGD's) on the MPI server.

    The batch's sum and step are those of the method's on_result (VectorSum.add, then `server.step`),
    so the points, rows and bytes are the general path's number for number.
    """

    def __init__(self, server, rule: StepAndRestart):
        super().__init__(server, rule)
        self.collect, self.fresh_only = rule.collect, rule.fresh_only
        self.batch_total = np.zeros(server.dim)  # a batch of its own that starts empty now (Method.every_result)
        self.batch_grads = 0
        self.batch_delay = 0

    def on_result(self, worker: int) -> None:
        """deliver() for one result: its bookkeeping, joining the batch, the step of a full one, the restart."""
        server = self.server
        received = self._received(server, worker)
        if received is None:
            return
        now, version, delay, n_grads = received
        accepted = not delay or not self.fresh_only
        try:
            if accepted:  # VectorSum.add(result, n_grads): 1 * g is g, so one gradient is added as it is
                if n_grads == 1:
                    self.batch_total += self.gradients[worker]
                else:
                    self.batch_total += n_grads * self.gradients[worker]
        finally:
            server.requests[worker].Start()  # the payload is used: the buffer may take the next message
        if accepted:
            self.batch_grads += n_grads
            if delay > self.batch_delay:
                self.batch_delay = delay
            if self.batch_grads >= self.collect:
                self._step(server, now)
        if server.stop_reason is None:  # its job is done and the next one out: outstanding stays
            # The restart at the current point, which goes with the job unless the worker holds it (_attach).
            points = server.points
            version_now = points.current
            held = server.held[worker]
            if version_now in held:
                point = None if server.cache_points else points.get(version_now)
            else:
                if len(held) >= HELD_VERSIONS:
                    del held[0]  # the older one: the worker evicts the same
                held.append(version_now)
                point = points.get(version_now)
            self._restart(server, worker, version_now, point, now)
        else:
            server.outstanding[worker] -= 1
        self.event((now, worker, _GRAD, version, delay, accepted))
        self._after(server, now)

    def _step(self, server, now: float) -> None:
        """The full batch's step with ServerCore.step's numbers (x - scale * sum into a pooled buffer), its trace
        row and the iteration limit; a new batch."""
        grads, self.batch_grads = self.batch_grads, 0
        max_delay, self.batch_delay = self.batch_delay, 0
        points = server.points
        x_next = points.new_buffer()
        np.multiply(self.batch_total, -(self.scale / grads), out=x_next)
        x_next += points.get(points.current)
        version = points.publish(x_next)
        self.trace((now, version, grads, max_delay, server.bytes_up, server.bytes_down) + self.columns)
        if version >= server.iteration_limit:
            server.stop(StopReason.ITERATIONS, f"stop.iterations = {server.stop_rules.iterations} reached")
        self.batch_total.fill(0.0)
