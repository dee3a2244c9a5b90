"""Runs of results in the simulator for a StepAndRestart rule that collects batches (Rennala SGD).

Under such a rule every result either joins the batch (or is dropped when `fresh_only` and it
was computed at an older point), a full batch is one step, and the result's worker restarts
at the current point. The events of a run are found as for asynchronous SGD
(runtime/sim/runs.py: every event before `first finish + shortest job`, from per-worker
arrays). A run is cut into segments at its steps: within a segment the current point is
fixed, so which results join, their delays, the deliveries and the restarts are array
operations; each joining result adds one deferred term to the batch's sum, and the step (one
per batch) goes through `server.step` as on the per-event path. The draws, job ids, sequence
numbers, rows and sums are those of the per-event path, number for number.
"""

from __future__ import annotations

import math

import numpy as np

from ...methods.base import JobKind, StepAndRestart
from ..server import FLOAT_BYTES
from .runs import RuleRuns

_GRAD = JobKind.GRAD


class BatchRuns(RuleRuns):
    """The runs of a rule with `collect` > 1 or `fresh_only`; the batch lives here (on_result is not called)."""

    step_per_result = False  # steps come once a batch is full: the iteration limit is checked at each

    def __init__(self, sim, rule: StepAndRestart):
        super().__init__(sim, rule)
        self.collect, self.fresh_only = rule.collect, rule.fresh_only
        self.batch_sum = sim.vector_sum()
        self.batch_grads = 0
        self.batch_delay = 0
        self.rule_columns = dict(rule.columns)

    @staticmethod
    def handles(rule: StepAndRestart) -> bool:
        return rule.collect > 1 or rule.fresh_only

    def adopt(self) -> bool:
        """The arrays of RuleRuns, the points the jobs started from, and the mirror of held points as arrays."""
        if not super().adopt():
            return False
        sim = self.sim
        self.point_of = np.empty(sim.n_workers, dtype=object)  # the point object each job started from
        for worker, entry in enumerate(self.entries):
            if entry is not None:
                self.point_of[worker] = entry[2]
        self.entries = None
        self.held_first, self.held_second = np.array(sim.held_first), np.array(sim.held_second)
        return True

    def _apply(self, times: np.ndarray, workers: np.ndarray) -> int:
        sim = self.sim
        points = sim.points
        count = len(times)
        first_row = self._noise_rows(workers)
        versions = self.version[workers]
        kinds = []  # per segment: (delays, accepted)
        start = 0
        while start < count:
            current = points.current
            segment = versions[start:]
            kept = segment == current if self.fresh_only else np.ones(len(segment), dtype=bool)
            filled = np.flatnonzero(np.cumsum(kept) * self.n_grads >= self.collect - self.batch_grads)
            end = start + int(filled[0]) + 1 if filled.size else count
            kept = kept[: end - start]
            delays = current - versions[start:end]
            kinds.append((delays, kept))
            self._deliver(workers[start:end])
            kept_at = np.flatnonzero(kept)
            if kept_at.size:
                self._add(workers[start:end][kept_at], first_row, start + kept_at, delays[kept_at])
            if not filled.size:  # no step in this segment: every worker restarts at the current point
                self._restart_at(times[start:end], workers[start:end], current)
                break
            # The last result of the segment fills the batch: the others restart first, then the step.
            self._restart_at(times[start:end - 1], workers[start:end - 1], current)
            sim.clock = float(times[end - 1])
            grads, self.batch_grads = self.batch_grads, 0
            max_delay, self.batch_delay = self.batch_delay, 0
            sim.step(self.batch_sum, self.step_scale / grads, grads_used=grads, max_delay=max_delay,
                     **self.rule_columns)
            self.batch_sum.clear()
            if sim.stop_reason is not None:  # the iteration limit: no restart, the run ends here
                self.finish[workers[end - 1]] = math.inf
                sim.outstanding[int(workers[end - 1])] -= 1
                count = end
                break
            self._restart_at(times[end - 1:end], workers[end - 1:end], points.current)
            start = end
        sim.writer.event_block((times[:count], workers[:count], int(_GRAD), versions[:count],
                                np.concatenate([delays for delays, _ in kinds]),
                                np.concatenate([kept for _, kept in kinds])))
        sim.clock = float(times[count - 1])
        sim.after_results(sim.clock, count)
        return count

    def _add(self, workers: np.ndarray, first_row: int, positions: np.ndarray, delays: np.ndarray) -> None:
        """The joining results' deferred terms of the batch's sum: (start point, noise row, noise model, weight)."""
        batch, sim = self.batch_sum, self.sim
        rows = [-1] * len(workers) if first_row < 0 else (positions + first_row).tolist()
        for point, row in zip(self.point_of[workers].tolist(), rows):
            batch.pending.append((point, row, self.noise_model, self.n_grads))
            if len(batch.pending) >= sim.block_size:
                batch.flush()
        self.batch_grads += len(workers) * self.n_grads
        self.batch_delay = max(self.batch_delay, int(delays.max()))

    def _restart_at(self, times: np.ndarray, workers: np.ndarray, version: int) -> None:
        """SimServer.assign of the rule's job at `version` for each worker (bytes priced by the mirror of held points)."""
        if not len(workers):
            return
        sim = self.sim
        first, second = self.held_first[workers], self.held_second[workers]
        held = (first == version) | (second == version)
        sent = np.where(held, 0 if sim.cache_points else sim.dim, sim.dim) * FLOAT_BYTES
        # A worker that does not hold the version keeps it, evicting its older one when full.
        fresh = ~held
        full = fresh & (second >= 0)
        self.held_first[workers[full]] = second[full]
        self.held_second[workers[full]] = version
        self.held_second[workers[fresh & ~full & (first >= 0)]] = version
        self.held_first[workers[fresh & (first < 0)]] = version
        sim.bytes_down_of[workers] += sent
        sim.bytes_down += int(sent.sum())
        points = np.empty(len(workers), dtype=object)
        points.fill(sim.live[version])  # one object in every slot (an array value would be broadcast)
        self.point_of[workers] = points
        self._restart(times, workers, np.full(len(workers), version))
