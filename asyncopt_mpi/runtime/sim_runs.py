"""Runs of results at once in the simulator, for a method whose every result follows one StepAndRestart rule.

The per-event path calls the method once per result. Under a StepAndRestart rule (asynchronous
SGD with pure assignment) the outcome of every result is known in advance: one step, then the
same worker restarts. With fixed job times a restarted job ends no sooner than
`now + shortest job`, so every event in the heap before `first + shortest job` completes
before any job the run starts: those events form a run, handled with one pass of scalar
bookkeeping per event and the rows, stats and steps written in blocks. Each run reproduces
the per-event path exactly: the same draws from the same worker streams in the same order,
the same job ids and heap sequence numbers, the same rows and the same deferred steps.

A run ends early at whatever the per-event path would act on after an event: a snapshot,
the gradient, iteration or time limit. Anything else (another kind of job, a queued job)
goes back to the per-event path.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from ..methods.base import JobKind, StepAndRestart
from .server import FLOAT_BYTES, StopReason

MAX_RUN = 1024  # events per run at most
BANK_BYTES = 64 * 2**20  # noise rows drawn ahead per worker, at most this much in all
BANK_ROWS = 16  # rows a worker draws in one call (one call for k rows gives the numbers of k calls)
MIN_RUN = 4  # shorter runs go through the per-event path (the same numbers, less set-up)
RUNS_ENABLED = True  # tests turn runs off to compare with the per-event path
_GRAD = JobKind.GRAD


class StepAndRestartRuns:
    """Takes runs of results off the simulator's heap and applies the rule to them (see the module doc)."""

    min_run = MIN_RUN
    bank_rows = BANK_ROWS

    def __init__(self, sim, rule: StepAndRestart):
        job = rule.job
        self.sim = sim
        self.batch = self.n_grads = job.batch
        self.step_scale = rule.scale
        self.columns = tuple(float(rule.columns.get(name, math.nan)) for name in sim.method.trace_columns)
        self.template = job.copy()  # shared by the entries of restarted jobs; each entry has its own version
        self.template.version = -1
        compute, comm = sim.fixed_times
        dim = sim.dim
        # The per-worker job time, with the operations of SimServer.assign (so the same floats).
        self.durations = [compute[w] * self.n_grads + comm[w] * dim for w in range(sim.n_workers)]
        self.shortest = min(self.durations)
        self.max_run = min(MAX_RUN, len(sim.noise))
        noise = sim.noise_scales.get(job.batch, False)
        if noise is False:
            noise = sim.noise_scales[job.batch] = sim.problem.additive_noise(job.batch)
        self.noise_scale = noise
        # Each worker's noise drawn BANK_ROWS rows at a time into its own slab: one call per slab
        # instead of one per event. Every draw of a worker then goes through the bank (runs and
        # the per-event path alike), so its stream is read in the same order.
        rows = min(self.bank_rows, BANK_BYTES // (8 * dim * sim.n_workers))
        self.bank = np.empty((sim.n_workers, rows, dim)) if noise and rows >= 4 else None
        self.bank_next = [rows] * sim.n_workers  # next unused row of each slab (rows: drawn on first use)

    @classmethod
    def for_method(cls, sim) -> "StepAndRestartRuns | None":
        """The runs for the method's rule, if it has one and the run allows them (else None)."""
        rule = sim.method.every_result(sim)
        if type(rule) is not StepAndRestart or not RUNS_ENABLED or not cls.handles(rule):
            return None
        job = rule.job
        allowed = (
            sim.fixed_times is not None and sim.defer and not sim.deltas and not sim.queues and not sim.groups
            and job.kind is _GRAD and job.indices is None and job.version2 < 0 and not job.wait
            and job.batch >= 1 and not job.extra_grads and all(math.isinf(t) for t in sim.crash_times)
            and sim.problem.additive_noise(job.batch) is not None
        )
        if not allowed:
            return None
        runs = cls(sim, rule)
        # Every job is then one the rule restarts (so no other draw ever meets the bank), and ends.
        if not all(entry is None or runs._ours(entry) for entry in sim.running) or runs.shortest <= 0 \
                or not math.isfinite(max(runs.durations)):
            return None
        if runs.bank is not None:
            sim.draw_noise = runs.draw
        return runs

    @staticmethod
    def handles(rule: StepAndRestart) -> bool:
        """Whether this class applies the rule (a step per result; BatchRuns takes batches)."""
        return rule.collect == 1 and not rule.fresh_only

    def most_events(self) -> float:
        """Events a run may take: it ends with the one that reaches the gradient or iteration limit."""
        sim = self.sim
        grads_left = sim.gradient_limit - sim.grads_received
        return min(self.max_run, sim.iteration_limit - sim.points.current,
                   math.ceil(grads_left / self.n_grads) if grads_left != math.inf else math.inf)

    def _ours(self, entry: tuple) -> bool:
        """Whether the entry's job is one the rule restarts (the method's start() made the first ones)."""
        job = entry[1]
        return job is self.template or (job.kind is _GRAD and job.batch == self.batch and not job.extra_grads
                and entry[3] is None and entry[4] is None and not entry[6])

    def take(self) -> int:
        """Handle the next run of events; 0 when the per-event path must take the next event."""
        sim = self.sim
        heap, running = sim.heap, sim.running
        if sim.queues or not heap:
            return 0
        first = heap[0][0]
        horizon = first + self.shortest
        time_limit = sim.time_limit
        most = self.most_events()
        last_snapshot, snapshot_every = sim.last_snapshot_time, sim.snapshot_every
        template = self.template
        heappop = heapq.heappop
        tops, times, workers, entries = [], [], [], []
        while heap:
            finish, _, worker, job_id, group = top = heap[0]
            if finish >= horizon or finish > time_limit:
                break
            if group is not None:
                break  # a job of a group: the per-event path takes it
            heappop(heap)
            entry = running[worker]
            if entry is None or entry[0] != job_id:
                continue  # a cancelled job
            if entry[1] is not template and not self._ours(entry):
                heapq.heappush(heap, top)  # the per-event path takes it, after this run
                break
            tops.append(top)
            times.append(finish)
            workers.append(worker)
            entries.append(entry)
            if len(times) >= most or finish - last_snapshot >= snapshot_every or finish >= time_limit:
                break
        count = len(times)
        if count < self.min_run:  # back as they were: the per-event path pops them in the same order
            for top in tops:
                heapq.heappush(heap, top)
            return 0
        return self._apply(times, workers, entries, tops)

    def _apply(self, times: list[float], workers: list[int], entries: list[tuple], tops: list[tuple]) -> int:
        """The per-event path's effects for a run of results, in the same order and numbers; returns the count."""
        sim = self.sim
        count = len(times)
        dim, n_grads = sim.dim, self.n_grads
        points = sim.points
        base = points.current
        rows = self._noise_rows(workers)
        versions = [entry[7] for entry in entries]
        bytes_up0, bytes_down0 = sim.bytes_up, sim.bytes_down
        self._deliveries(workers, entries)
        # Steps: one new (deferred) version per result.
        pending = sim.pending_steps
        if not pending:
            sim.pending_base = points.live[base]
        new_points = points.advance_many(count)
        step_scale, scale = self.step_scale, self.noise_scale
        pending.extend(zip([entry[2] for entry in entries], rows, [scale] * count, [step_scale] * count, new_points))
        stopped = points.current >= sim.iteration_limit
        if stopped:
            sim.stop(StopReason.ITERATIONS, f"stop.iterations = {sim.stop_rules.iterations} reached")
        payload = FLOAT_BYTES * dim
        index = np.arange(count)
        delays = index + base - np.array(versions)
        sim.writer.trace_block((times, index + base + 1, n_grads, delays, bytes_up0 + (index + 1) * payload,
                                bytes_down0 + index * payload, *self.columns))
        sim.writer.event_block((times, workers, int(_GRAD), versions, delays, 1))
        # Restarts: the same worker, at the version its own step published (none after a stop).
        restarts = count - 1 if stopped else count
        self._restart(times, workers, new_points, base, restarts)
        if stopped:
            sim.outstanding[workers[-1]] -= 1
            sim.running[workers[-1]] = None
        sim.clock = times[-1]
        if len(pending) >= sim.block_size:
            sim.flush()
        sim.after_results(times[-1], count)
        return count

    def _noise_rows(self, workers: list[int]):
        """The workers' noise draws, in event order, into consecutive rows of the ring (or -1 rows: no noise)."""
        sim = self.sim
        count = len(workers)
        scale = self.noise_scale
        if scale:
            if sim.noise_next + count > len(sim.noise):
                sim._wrap()
            first_row = sim.noise_next
            sim.noise_next = first_row + count
            noise, contexts = sim.noise, sim.contexts
            bank = self.bank
            if bank is None:
                for row, worker in enumerate(workers, start=first_row):
                    contexts[worker].data_rng.standard_normal(out=noise[row])
            else:
                bank_next, last = self.bank_next, bank.shape[1]
                taken = []
                for worker in workers:
                    row = bank_next[worker]
                    if row == last:
                        contexts[worker].data_rng.standard_normal(out=bank[worker])
                        row = 0
                    bank_next[worker] = row + 1
                    taken.append(row)
                noise[first_row:first_row + count] = bank[workers, taken]
            return range(first_row, first_row + count)
        return [-1] * count

    def _deliveries(self, workers: list[int], entries: list[tuple]) -> None:
        """ServerCore.deliver's counters for each result of the run."""
        sim = self.sim
        n_grads, payload = self.n_grads, FLOAT_BYTES * sim.dim
        jobs_of, grads_of, busy_of, bytes_up_of = sim.jobs_of, sim.grads_of, sim.busy_time_of, sim.bytes_up_of
        for worker, entry in zip(workers, entries):
            jobs_of[worker] += 1
            grads_of[worker] += n_grads
            busy_of[worker] += entry[5]
            bytes_up_of[worker] += payload
        sim.grads_received += len(workers) * n_grads
        sim.bytes_up += len(workers) * payload

    def draw(self, worker: int, out: np.ndarray) -> None:
        """One noise row of `worker` (the per-event path's draw while the bank is in use)."""
        row = self.bank_next[worker]
        if row == self.bank.shape[1]:
            self.sim.contexts[worker].data_rng.standard_normal(out=self.bank[worker])
            row = 0
        self.bank_next[worker] = row + 1
        out[:] = self.bank[worker, row]

    def _restart(self, times: list[float], workers: list[int], new_points: list, base: int, count: int) -> None:
        sim = self.sim
        running, heap, durations = sim.running, sim.heap, self.durations
        first, second = sim.held_first, sim.held_second
        bytes_down_of = sim.bytes_down_of
        payload = FLOAT_BYTES * sim.dim
        template = self.template
        job_id, sequence = sim.next_job_id, sim.sequence
        heappush = heapq.heappush
        for row in range(count):
            worker = workers[row]
            version = base + 1 + row
            duration = durations[worker]
            # The mirror of the versions the worker holds: a new version always evicts (SimServer._mirror).
            if second[worker] >= 0:
                first[worker], second[worker] = second[worker], version
            elif first[worker] >= 0:
                second[worker] = version
            else:
                first[worker] = version
            bytes_down_of[worker] += payload
            running[worker] = (job_id, template, new_points[row], None, None, duration, False, version)
            heappush(heap, (times[row] + duration, sequence, worker, job_id, None))
            job_id += 1
            sequence += 1
        sim.bytes_down += count * payload
        sim.next_job_id, sim.sequence = job_id, sequence

