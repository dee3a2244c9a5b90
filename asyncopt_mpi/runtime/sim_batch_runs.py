"""Runs of results in the simulator for a StepAndRestart rule that collects batches (Rennala SGD).

Under such a rule every result either joins the batch (or is dropped when `fresh_only` and it
was computed at an older point), a full batch is one step, and the result's worker restarts
at the current point. With fixed job times the events of a run are found as for asynchronous
SGD (runtime/sim_runs.py: every event before `first finish + shortest job`); here each event
costs a few scalar updates and one deferred term of the batch's sum, the steps (one per batch)
go through `server.step` as on the per-event path, and the rows are written in blocks. The
draws, job ids, heap order, rows and sums are those of the per-event path, number for number.
"""

from __future__ import annotations

import heapq
import math

from ..methods.base import JobKind, StepAndRestart
from .server import FLOAT_BYTES
from .sim_runs import StepAndRestartRuns

_GRAD = JobKind.GRAD


class BatchRuns(StepAndRestartRuns):
    """Takes runs of results off the simulator's heap for a rule with `collect` > 1 or `fresh_only`.

    The batch lives here, not in the method, so every result goes through runs (a run of one
    result too): once the rule is taken, every job is one of its restarts and is in a run.
    """

    min_run = 1
    bank_rows = 0  # each draw goes straight into its ring row: one pass, and no bank to fetch from cold memory

    def __init__(self, sim, rule: StepAndRestart):
        super().__init__(sim, rule)
        self.collect, self.fresh_only = rule.collect, rule.fresh_only
        self.batch_sum = sim.vector_sum()  # the rule's batch, owned here (the method's on_result is not called)
        self.batch_grads = 0
        self.batch_delay = 0
        self.rule_columns = dict(rule.columns)

    @staticmethod
    def handles(rule: StepAndRestart) -> bool:
        return rule.collect > 1 or rule.fresh_only

    def most_events(self) -> float:
        """Events a run may take: it ends with the one that reaches the gradient limit (steps are checked as they come)."""
        sim = self.sim
        grads_left = sim.gradient_limit - sim.grads_received
        return min(self.max_run, math.ceil(grads_left / self.n_grads) if grads_left != math.inf else math.inf)

    def take(self) -> int:
        """Handle the next run of events (popped, drawn and applied in one pass); 0 when there is none."""
        sim = self.sim
        heap, running = sim.heap, sim.running
        if sim.queues or not heap:
            return 0
        horizon = heap[0][0] + self.shortest
        time_limit, most = sim.time_limit, self.most_events()
        last_snapshot, snapshot_every = sim.last_snapshot_time, sim.snapshot_every
        points = sim.points
        n_grads, collect, fresh_only = self.n_grads, self.collect, self.fresh_only
        noise_scale, step_scale = self.noise_scale, self.step_scale
        noise, ring = sim.noise, len(sim.noise)
        contexts = sim.contexts
        batch = self.batch_sum
        pending = batch.pending
        payload = FLOAT_BYTES * sim.dim
        current = points.current
        live = sim.live
        first, second = sim.held_first, sim.held_second
        cache_points, bytes_down_of, durations = sim.cache_points, sim.bytes_down_of, self.durations
        template = self.template
        jobs_of, grads_of, busy_of, bytes_up_of = sim.jobs_of, sim.grads_of, sim.busy_time_of, sim.bytes_up_of
        heappush, heappop = heapq.heappush, heapq.heappop
        point = live[current]
        times, workers, versions, delays, accepted = [], [], [], [], []
        while heap and len(times) < most:
            now, _, worker, job_id, group = heap[0]
            if now >= horizon or now > time_limit or group is not None:
                break
            heappop(heap)
            entry = running[worker]
            if entry is None or entry[0] != job_id:
                continue  # a cancelled job
            # SimServer._complete: the worker's noise row, drawn now.
            row = -1
            if noise_scale:
                row = sim.noise_next
                if row == ring:
                    sim._wrap()  # flushes the batch's sum too, which then holds a new list
                    pending = batch.pending
                    row = 0
                sim.noise_next = row + 1
                contexts[worker].data_rng.standard_normal(out=noise[row])
            # ServerCore.deliver
            version = entry[7]
            delay = current - version
            jobs_of[worker] += 1
            grads_of[worker] += n_grads
            busy_of[worker] += entry[5]
            bytes_up_of[worker] += payload
            sim.grads_received += n_grads
            sim.bytes_up += payload
            times.append(now)
            workers.append(worker)
            versions.append(version)
            delays.append(delay)
            # The rule: join the batch (or be dropped), step once the batch is full.
            kept = not fresh_only or delay == 0
            accepted.append(kept)
            if kept:
                pending.append((entry[2], row, noise_scale, n_grads))
                if len(pending) >= sim.block_size:
                    batch.flush()
                    pending = batch.pending  # flush hands the sum a new list
                self.batch_grads += n_grads
                if delay > self.batch_delay:
                    self.batch_delay = delay
                if self.batch_grads >= collect:
                    sim.clock = now
                    grads, self.batch_grads = self.batch_grads, 0
                    max_delay, self.batch_delay = self.batch_delay, 0
                    sim.step(batch, step_scale / grads, grads_used=grads, max_delay=max_delay, **self.rule_columns)
                    batch.clear()
                    current = points.current
                    point = live[current]
                    if sim.stop_reason is not None:  # the iteration limit: no restart, the run ends here
                        sim.outstanding[worker] -= 1
                        running[worker] = None
                        break
            # SimServer.assign of the rule's job at the current point.
            job_id = sim.next_job_id
            sim.next_job_id = job_id + 1
            duration = durations[worker]
            if current == first[worker] or current == second[worker]:
                sent = 0 if cache_points else sim.dim
            else:
                sent = sim._mirror(worker, (current,))
            if sent:
                sim.bytes_down += FLOAT_BYTES * sent
                bytes_down_of[worker] += FLOAT_BYTES * sent
            running[worker] = (job_id, template, point, None, None, duration, False, current)
            heappush(heap, (now + duration, sim.sequence, worker, job_id, None))
            sim.sequence += 1
            if now - last_snapshot >= snapshot_every or now >= time_limit:
                break  # the per-event path acts after this event: a snapshot, the time limit
        if not times:
            return 0
        sim.writer.event_block((times, workers, int(_GRAD), versions, delays, accepted))
        sim.clock = times[-1]
        sim.after_results(times[-1], len(times))
        return len(times)
