"""Runs of results at once in the simulator, for a method whose every result follows one StepAndRestart rule.

The per-event path calls the method once per result. Under a StepAndRestart rule (asynchronous
SGD with pure assignment) the outcome of every result is known in advance: one step, then the
same worker restarts. With fixed job times a restarted job ends no sooner than
`now + shortest job`, so every event before `first + shortest job` completes before any job
the run starts: those events form a run. Once the rule is taken, the jobs leave the heap for
per-worker arrays (when each job ends, its heap sequence number, the version and the point it
started from), and a run is found with one comparison over them, sorted by (end, sequence) as
the heap would pop them; its bookkeeping, rows, restarts and noise draws are array operations,
and its steps are deferred and computed in blocks. Asynchronous SGD's runs span several of the
shortest jobs: the restarts a run makes that end inside it are found wave by wave, and ordered
among the other events by the sequence numbers the run gives them. Each run reproduces the
per-event path exactly: the same draws from the same worker streams in the same order, the same
job ids and sequence numbers, the same rows and the same points.

A run ends early at whatever the per-event path would act on after an event: a snapshot, the
gradient, iteration or time limit.
"""

from __future__ import annotations

import math

import numpy as np

from ...methods.base import JobKind, StepAndRestart
from ..server import FLOAT_BYTES, StopReason

MAX_RUN = 1024  # events per run at most
RUN_EVENTS = 512  # events a run of asynchronous SGD aims at (its window spans several shortest jobs)
BANK_BYTES = 64 * 2**20  # noise draws made ahead per worker, at most this much in all
BANK_ROWS = 16  # gradients' draws a worker makes in one call (one call for k gives the numbers of k calls)
START_POINTS_BYTES = 2 * 2**30  # the workers' start points (n x dim) are kept in one array up to this size
RUNS_ENABLED = True  # tests turn runs off to compare with the per-event path
PREFIX_LOOP_WIDTH = 1024  # from this many floats a row, a prefix sum adds row by row (the same additions)
CHUNK_FLOATS = 2**17  # floats of gradients a flush computes and steps with at a time (so they stay in cache)
_GRAD = JobKind.GRAD
COUNTED = ("jobs", "grads", "bytes_up")  # the per-worker counters a result adds fixed amounts to


class RuleRuns:
    """What the runs of every StepAndRestart rule share: the restarted job, its times, the noise."""

    bank_rows = BANK_ROWS
    step_per_result = True  # every result is a step (so the iteration limit bounds a run)

    def __init__(self, sim, rule: StepAndRestart):
        job = rule.job
        self.sim = sim
        self.batch = self.n_grads = job.batch
        self.step_scale = rule.scale
        self.columns = tuple(float(rule.columns.get(name, math.nan)) for name in sim.method.trace_columns)
        compute, comm = sim.fixed_times
        dim = sim.dim
        # The per-worker job time, with the operations of SimServer.assign (so the same floats).
        self.durations = [compute[w] * self.n_grads + comm[w] * dim for w in range(sim.n_workers)]
        self.shortest = min(self.durations)
        self.max_run = min(MAX_RUN, len(sim.noise))
        self.counting = np.arange(1, self.max_run + 1)  # 1, 2, ... (sliced, so a run makes no ranges)
        self.payload_steps = self.counting * (FLOAT_BYTES * dim)  # bytes of 1, 2, ... points
        self.noise_model = noise = sim.noise_model(job.batch)
        # Each worker's draws made for BANK_ROWS gradients at a time into its own slab: one call
        # per slab instead of one per event (runs make every draw once the rule is taken).
        width = noise.width
        rows = min(self.bank_rows, BANK_BYTES // (8 * max(width, 1) * sim.n_workers))
        self.bank = np.empty((sim.n_workers, rows, width)) if width and rows >= 4 else None
        self.bank_next = np.full(sim.n_workers, rows)  # next unused row of each slab (rows: drawn on first use)

    @classmethod
    def for_method(cls, sim) -> "RuleRuns | None":
        """The runs for the method's rule, if it has one this class takes and the run allows them (else None)."""
        rule = sim.method.every_result(sim)
        if type(rule) is not StepAndRestart or not RUNS_ENABLED or not cls.handles(rule):
            return None
        job = rule.job
        allowed = (
            sim.fixed_times is not None and sim.defer and not sim.deltas and not sim.queues and not sim.groups
            and job.kind is _GRAD and job.indices is None and job.version2 < 0 and not job.wait
            and job.batch >= 1 and not job.extra_grads and all(math.isinf(t) for t in sim.crash_times)
            and sim.noise_model(job.batch) is not None
        )
        if not allowed:
            return None
        runs = cls(sim, rule)
        # Every job is then one the rule restarts (so every draw is a run's), and ends; the runs own them.
        if not all(entry is None or runs._ours(entry) for entry in sim.running) or runs.shortest <= 0 \
                or not math.isfinite(max(runs.durations)) or not runs.adopt():
            return None
        return runs

    @staticmethod
    def handles(rule: StepAndRestart) -> bool:
        raise NotImplementedError

    def adopt(self) -> bool:
        """Move every job from the heap into the arrays, and the per-worker counters into arrays.

        From here on every job is a restart of the runs, so the simulator's per-job entries are
        left as they are. False when this run cannot be taken.
        """
        sim = self.sim
        n = sim.n_workers
        sim.flush()  # the points the first jobs started from
        self.finish = np.full(n, math.inf)  # when each worker's job ends (inf: none)
        self.sequence = np.zeros(n, dtype=np.int64)  # its heap sequence number (ties end in this order)
        self.version = np.zeros(n, dtype=np.int64)  # the version it started from
        self.duration = np.array(self.durations)
        self.entries = [None] * n  # the running entries taken off the heap (their start points)
        for finish, sequence, worker, job_id, _ in sim.heap:
            entry = sim.running[worker]
            if entry is None or entry[0] != job_id:
                continue  # a cancelled job
            self.finish[worker], self.sequence[worker], self.version[worker] = finish, sequence, entry[7]
            self.entries[worker] = entry
        sim.heap.clear()
        # jobs, grads and bytes up of each worker side by side: a result adds one row to all three at once.
        self.counts = np.array([sim.stats[name] for name in COUNTED]).T.copy()
        self.per_result = np.array([1, self.n_grads, FLOAT_BYTES * sim.dim], dtype=self.counts.dtype)
        for column, name in enumerate(COUNTED):
            sim.stats[name] = self.counts[:, column]
        for name in ("bytes_down", "busy_time"):
            sim.stats[name] = np.array(sim.stats[name])
        sim.jobs_of, sim.grads_of, sim.bytes_up_of, sim.bytes_down_of, sim.busy_time_of = (
            sim.stats["jobs"], sim.stats["grads"], sim.stats["bytes_up"], sim.stats["bytes_down"], sim.stats["busy_time"])
        return True

    def next_finish(self) -> float:
        return float(self.finish.min())

    def take(self) -> int:
        """Handle the next run of events; 0 when no event comes before the time limit."""
        sim = self.sim
        finish = self.finish
        first = finish.min()
        time_limit = sim.time_limit
        if first > time_limit or first == math.inf:
            return 0
        ending = np.flatnonzero(finish < first + self.shortest)
        order = np.lexsort((self.sequence[ending], finish[ending]))  # as the heap pops them
        workers, times = ending[order], finish[ending[order]]
        count = self._count(times)
        return self._apply(times[:count], workers[:count])

    def _count(self, times: np.ndarray) -> int:
        """How many of these events (in heap order) the run takes: up to the limits, and up to the
        first event after which the per-event path would act."""
        sim = self.sim
        time_limit = sim.time_limit
        count = min(len(times), self.most_events())
        if times[count - 1] > time_limit:
            count = int(np.searchsorted(times, time_limit, side="right"))
        # Both tests only turn true as time goes on, so the last event tells whether any does.
        if self._acts(float(times[count - 1])):
            count = int(np.flatnonzero(self._acts(times[:count]))[0]) + 1
        return count

    def _acts(self, at: float | np.ndarray):
        """The per-event path's tests after an event at `at` (a time or an array of them): snapshot, time limit."""
        sim = self.sim
        return (at - sim.last_snapshot_time >= sim.snapshot_every) | (at >= sim.time_limit)

    def _apply(self, times: np.ndarray, workers: np.ndarray) -> int:
        """The per-event path's effects for a run of results, in the same order and numbers; returns how many."""
        raise NotImplementedError

    def _deliver(self, workers: np.ndarray, distinct: bool = True) -> None:
        """ServerCore.deliver's counters for a run's results, in event order (as per event)."""
        sim = self.sim
        payload = FLOAT_BYTES * sim.dim
        if distinct:  # (add.at's fixed cost is most of a small batch segment's)
            self.counts[workers] += self.per_result  # jobs, grads and bytes up
            sim.busy_time_of[workers] += self.duration[workers]
        else:  # add.at adds a worker's repeats one by one, in order (the same float sums)
            np.add.at(self.counts, workers, self.per_result)
            np.add.at(sim.busy_time_of, workers, self.duration[workers])
        sim.grads_received += len(workers) * self.n_grads
        sim.bytes_up += len(workers) * payload

    def _restart(self, times: np.ndarray, workers: np.ndarray, versions: np.ndarray,
                 last: np.ndarray | None = None) -> None:
        """The rule's job again for each worker, ending `duration` after its event, in event order.

        `last` marks each worker's last event when a worker has several: the job that stays."""
        sim = self.sim
        count = len(workers)
        at = self.counting[:count] - 1 if last is None else np.flatnonzero(last)  # the events whose jobs stay
        staying = workers[at]
        self.finish[staying] = times[at] + self.duration[staying]
        self.sequence[staying] = at + sim.sequence
        self.version[staying] = versions[at]
        sim.sequence += count
        sim.next_job_id += count

    def most_events(self) -> float:
        """Events a run may take: it ends with the one that reaches the gradient or iteration limit."""
        sim = self.sim
        grads_left = sim.gradient_limit - sim.grads_received
        steps_left = sim.iteration_limit - sim.points.current if self.step_per_result else math.inf
        # At least one: a resumed run past its limits still takes one result, then stops (as per event).
        return max(1, min(self.max_run, steps_left,
                          math.ceil(grads_left / self.n_grads) if grads_left != math.inf else math.inf))

    def _ours(self, entry: tuple) -> bool:
        """Whether the entry's job (one the method's start() made) is the one the rule restarts."""
        job = entry[1]
        return (job.kind is _GRAD and job.batch == self.batch and not job.extra_grads and entry[3] is None
                and entry[4] is None and not entry[6])

    def _noise_rows(self, workers: np.ndarray, occurrence: np.ndarray | None = None,
                    last: np.ndarray | None = None) -> int:
        """The workers' noise draws, in event order, into consecutive ring rows; the first row (-1: no noise).

        A worker with several events in the run: `occurrence` counts its earlier ones, `last` marks its last."""
        width = self.noise_model.width
        if not width:
            return -1
        sim = self.sim
        count = len(workers)
        if sim.noise_next + count > len(sim.noise):
            sim._wrap()
        first_row = sim.noise_next
        sim.noise_next = first_row + count
        noise, contexts, bank, draw = sim.noise, sim.contexts, self.bank, self.noise_model.draw
        if bank is None:
            for row, worker in enumerate(workers.tolist(), start=first_row):
                draw(contexts[worker].data_rng, noise[row:row + 1, :width])
        else:
            # A worker's k-th event in the run takes its slab's next row + k. A slab with fewer
            # rows left moves them to its front and draws the rest (the stream goes on in order).
            rows = bank.shape[1]
            if occurrence is None:  # each worker once in this run
                staying, uses, occurrence = workers, 1, 0
            else:
                staying, uses = workers[last], occurrence[last] + 1
            start = self.bank_next[staying]
            short = np.flatnonzero(start + uses > rows)
            for worker, left in zip(staying[short].tolist(), start[short].tolist()):
                kept = rows - left
                if kept:
                    bank[worker, :kept] = bank[worker, left:]
                draw(contexts[worker].data_rng, bank[worker, kept:])
            start[short] = 0
            self.bank_next[staying] = start
            taken = self.bank_next[workers] + occurrence
            self.bank_next[staying] = start + uses
            noise[first_row:first_row + count, :width] = bank[workers, taken]
        return first_row


class StepAndRestartRuns(RuleRuns):
    """The runs of a one-result rule (asynchronous SGD): a deferred step per result (see the module doc)."""

    @staticmethod
    def handles(rule: StepAndRestart) -> bool:
        return rule.collect == 1 and not rule.fresh_only

    def adopt(self) -> bool:
        """The arrays of RuleRuns, and each worker's start point in one (n, dim) array.

        The simulator's mirror of the points each worker holds is not kept from here on (it only
        prices later assignments): a restart is always at a point the worker does not hold.
        """
        sim = self.sim
        if sim.n_workers * sim.dim * 8 > START_POINTS_BYTES or not super().adopt():
            return False
        self.start_points = np.empty((sim.n_workers, sim.dim))
        for worker, entry in enumerate(self.entries):
            if entry is not None:
                self.start_points[worker] = sim._resolve(entry[2])
        self.entries = None
        sim.deferred_runs = self
        # Steps waiting for a block: their workers and first noise rows, per run; the points the
        # simulator keeps live (versions -> PendingPoint) are set when the block is computed.
        self.pending: list[tuple[np.ndarray, int]] = []
        self.pending_count = 0
        self.pending_base = None
        self.pending_version = 0  # the version the first pending step makes
        self.unresolved: list[tuple[int, object]] = []
        # A run spans several of the shortest jobs (about RUN_EVENTS events), but no worker has
        # more events in it than its noise slab has rows.
        rate = float(np.sum(1.0 / self.duration))
        self.window = max(self.shortest, RUN_EVENTS / rate)
        if self.bank is not None:
            self.window = min(self.window, max(1, self.bank.shape[1] - 2) * self.shortest)
        return True

    def take(self) -> int:
        """Handle the next run of events (0 when none comes before the time limit).

        The run is every event before `first + window`: the jobs running now that end by then,
        and then, wave after wave, each worker's restarts that still end by then (each end the
        same sum the per-event path forms), in the order the event heap would pop them; it ends
        at the first event that reaches a limit or a snapshot (see _count)."""
        sim = self.sim
        first = self.finish.min()
        if first > sim.time_limit or first == math.inf or self.window == self.shortest or self._acts(float(first)):
            return super().take()  # (a first event that acts is a run of its own on either path)
        horizon = first + self.window
        if not (self.finish + self.duration < horizon).any():
            return super().take()  # no restart ends in the window: the jobs running now make the run
        # The run ends at the first event from the next snapshot or the time limit on: the shortest
        # worker ends one within a shortest job of that boundary, so a window cut there usually holds
        # the run (the same events, in the same order: they all end before the cut), at a fraction
        # of the waves. Else the whole window is built.
        boundary = min(sim.time_limit, sim.last_snapshot_time + sim.snapshot_every)
        near = math.nextafter(boundary + self.shortest, math.inf)
        if first < near < horizon:
            taken = self._take_window(near, capped=True)
            if taken is not None:
                return taken
        return self._take_window(horizon, capped=False)

    def _take_window(self, horizon: float, capped: bool) -> int | None:
        """The run of the events before `horizon` (see take). A `capped` window (one nearer than
        `first + window`) returns None unless it surely holds the whole run: one of its events acts,
        or it has as many events as the run may take."""
        sim = self.sim
        finish, duration = self.finish, self.duration
        ending = np.flatnonzero(finish < horizon)
        wave_times, wave_workers = finish[ending], ending
        wave_index = np.arange(len(ending))  # where a wave's events are in the concatenation
        times, workers, parents = [wave_times], [ending], []
        total = len(ending)
        while True:
            wave_times = wave_times + duration[wave_workers]
            inside = np.flatnonzero(wave_times < horizon)
            if not inside.size:
                break
            wave_times, wave_workers = wave_times[inside], wave_workers[inside]
            parents.append(wave_index[inside])
            wave_index = np.arange(total, total + inside.size)
            total += inside.size
            times.append(wave_times)
            workers.append(wave_workers)
        first_wave = len(ending)
        # The event (in the concatenation) each restart follows (none in a capped window may follow one).
        parent = np.concatenate(parents) if parents else np.empty(0, dtype=np.int64)
        key = np.full(total, sim.sequence)  # the heap's tie-break: sequence numbers (the restarts' are larger)
        key[:first_wave] = self.sequence[ending]
        all_times, workers = np.concatenate(times), np.concatenate(workers)
        order = np.lexsort((key, all_times))
        position = np.empty(total + 1, dtype=np.int64)  # each event's place in the run (total: none)
        position[order] = np.arange(total)
        position[total] = total
        # A restart's sequence number is its parent's place after the run's first sequence number
        # (it matters where restarts end together). Sort again with them until the order holds
        # (each sort settles one more wave: a parent ends before its restart).
        while True:
            key[first_wave:] = position[parent] + sim.sequence
            again = np.lexsort((key, all_times))
            if np.array_equal(again, order):
                break
            order = again
            position[order] = np.arange(total)
        times = all_times[order]
        if capped and len(times) < self.most_events() and not self._acts(float(times[-1])):
            return None
        count = self._count(times)
        events = order[:count]
        # For each event: which of the worker's events in the run it is, whether it is the last
        # one, and the version it started from (the iteration of the worker's previous event).
        child = np.full(total, total)
        child[parent] = np.arange(first_wave, total)
        occurrence = np.repeat(np.arange(len(parents) + 1), [first_wave] + [len(p) for p in parents])[events]
        last = position[child[events]] >= count
        workers = workers[events]
        versions = self.version[workers]
        later = np.flatnonzero(occurrence)
        versions[later] = position[parent[events[later] - first_wave]] + (sim.points.current + 1)
        return self._apply(times[:count], workers, versions, occurrence, last)

    def _apply(self, times: np.ndarray, workers: np.ndarray, versions: np.ndarray | None = None,
               occurrence: np.ndarray | None = None, last: np.ndarray | None = None) -> int:
        """As RuleRuns._apply; a worker with several events in the run has `occurrence`, `last`
        and the `versions` its events started from (see take)."""
        sim = self.sim
        count = len(times)
        payload = FLOAT_BYTES * sim.dim
        points = sim.points
        base = points.current
        first_row = self._noise_rows(workers, occurrence, last)
        if versions is None:
            versions = self.version[workers]
        bytes_up0, bytes_down0 = sim.bytes_up, sim.bytes_down
        self._deliver(workers, distinct=last is None)
        # Steps: one new (deferred) version per result.
        if not self.pending:
            self.pending_base = points.live[base]
            self.pending_version = base + 1
        self.pending.append((workers, first_row))
        self.pending_count += count
        self.unresolved.extend(points.advance_live(count))
        stopped = points.current >= sim.iteration_limit
        if stopped:
            sim.stop(StopReason.ITERATIONS, f"stop.iterations = {sim.stop_rules.iterations} reached")
        iterations = self.counting[:count] + base
        delays = iterations - versions
        delays -= 1
        sent = self.payload_steps[:count]
        sim.writer.trace_block((times, iterations, self.n_grads, delays, bytes_up0 + sent,
                                (bytes_down0 - payload) + sent, *self.columns))
        sim.writer.event_block((times, workers, int(_GRAD), versions, delays, 1))
        # Restarts: the same worker, at the version its own step published (none after a stop).
        restarts = count - 1 if stopped else count
        # (After a stop, the last worker's earlier restart in the run is the job that just ended.)
        self._restart(times[:restarts], workers[:restarts], iterations[:restarts],
                      None if last is None else last[:restarts])
        np.add.at(sim.bytes_down_of, workers[:restarts], payload)
        sim.bytes_down = bytes_down0 + restarts * payload
        if stopped:
            self.finish[workers[-1]] = math.inf
            sim.outstanding[int(workers[-1])] -= 1
        sim.clock = float(times[-1])
        if self.pending_count >= sim.block_size:
            self.flush()
        sim.after_results(sim.clock, count)
        return count

    def flush(self) -> None:
        """Compute the pending steps in order, in blocks that need no point computed inside them."""
        if not self.pending:
            return
        sim = self.sim
        workers = np.concatenate([item[0] for item in self.pending])
        first_row = self.pending[0][1]  # the ring wraps only after a flush: the rows are consecutive
        x = sim._resolve(self.pending_base)
        version0 = self.pending_version
        unresolved = self.unresolved
        self.pending, self.pending_count, self.pending_base, self.unresolved = [], 0, None, []
        count = len(workers)
        # A worker whose start point is made by an earlier step of this flush cuts the block there:
        # a block from `start` ends at the first event whose worker's previous event is in it.
        order = np.argsort(workers, kind="stable")
        repeat = workers[order][1:] == workers[order][:-1]
        following = np.full(count, count)  # each event's worker's next event in the flush
        following[order[:-1][repeat]] = order[1:][repeat]
        block_end = np.minimum.accumulate(following[::-1])[::-1].tolist()
        start_points, problem, ring, noise = self.start_points, sim.problem, sim.noise, self.noise_model
        wanted = sorted((version - version0 + 1, point) for version, point in unresolved)  # by step number
        taken = 0
        # A chunk of a block at a time, so its gradients and steps stay in cache: steps[0] is the point
        # before the chunk, steps[k] the point after its k-th step.
        chunk = max(1, CHUNK_FLOATS // sim.dim)
        steps = np.empty((min(chunk, count) + 1, sim.dim))
        steps[0] = x
        start = 0
        while start < count:
            end = min(block_end[start], start + chunk)
            block = workers[start:end]
            at = start_points[block]
            if first_row >= 0:
                gradients = noise.gradients(problem, at, ring[first_row + start:first_row + end, :noise.width])
            else:
                gradients = problem.full_grad_rows(at)
            rows = steps[:end - start + 1]
            np.multiply(gradients, -self.step_scale, out=rows[1:])
            _prefix_sum(rows)  # x_{k+1} = x_k + (-scale g_k), in order
            start_points[block] = rows[1:]  # each worker restarted at its own step's point
            while taken < len(wanted) and wanted[taken][0] <= end:  # the points the simulator keeps
                step, pending_point = wanted[taken]
                pending_point.x = rows[step - start].copy()
                pending_point.x.flags.writeable = False
                taken += 1
            steps[0] = rows[-1]
            start = end


def _prefix_sum(rows: np.ndarray) -> None:
    """In place, in order: rows[k + 1] = rows[k] + rows[k + 1] (rows[0] is the starting point)."""
    if rows.shape[1] >= PREFIX_LOOP_WIDTH:  # long rows: one add per row (accumulate would walk them column-wise)
        for k in range(1, len(rows)):
            np.add(rows[k - 1], rows[k], out=rows[k])
        return
    if rows.shape[1] % 2 == 0:  # as complex pairs: the same float additions in half the (serial) steps
        rows = rows.view(np.complex128)
    np.add.accumulate(rows, axis=0, out=rows)
