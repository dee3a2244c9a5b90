"""Virtual-clock runtime: a heap of job completion times driving the same methods and worker code.

Each worker runs one job at a time (later ones queue) for the duration the server drew
when it assigned the job; its math runs when it completes, at the point version it names
(kept alive by a reference until then). Ties are broken by a sequence number, so a run is
bit-for-bit reproducible.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque

from ..methods.base import Job, Result
from .server import ServerCore, StopReason
from .worker import WorkerContext


class SimServer(ServerCore):
    def __init__(self, *args, contexts: list[WorkerContext], **kwargs):
        super().__init__(*args, **kwargs)
        self.contexts = contexts
        self.clock = self.time_offset
        self.heap: list[tuple[float, int, int, int]] = []  # (finish, sequence, worker, job id)
        self.sequence = itertools.count()
        self.running: list[Job | None] = [None] * self.n_workers
        self.queues: dict[int, deque[Job]] = {}

    def now(self) -> float:
        return self.clock

    def _dispatch(self, worker: int, job: Job, attached: list[tuple[int, int]]) -> None:
        for version in job.versions:
            self.points.acquire(version)
        if self.running[worker] is None:
            self._start_job(worker, job)
        else:
            self.queues.setdefault(worker, deque()).append(job)

    def _start_job(self, worker: int, job: Job) -> None:
        self.running[worker] = job
        if math.isfinite(job.duration):
            heapq.heappush(self.heap, (self.clock + job.duration, next(self.sequence), worker, job.job_id))

    def _cancel(self, worker: int) -> None:
        """Drop the worker's running and queued jobs now; their heap entries become stale."""
        dropped = [self.running[worker], *self.queues.pop(worker, ())]
        self.running[worker] = None
        for job in dropped:
            if job is not None:
                for version in job.versions:
                    self.points.release(version)
        self.outstanding[worker] = 0

    def run(self) -> None:
        """Advance the clock from event to event until a stop rule fires or no work is left."""
        time_limit = self.stop_rules.time
        heap = self.heap
        self.start()
        signals = self.signals
        while not self.stopping:
            if signals.received is not None:
                self.check_signal()
                break
            # With no finite event left, time still runs to stop.time (workers may never answer).
            finish, _, worker, job_id = heap[0] if heap else (math.inf, 0, -1, -1)
            if finish == math.inf and time_limit is None:
                self.stop(StopReason.IDLE, "no worker has a job that will ever finish, and stop.time is not set")
                break
            if time_limit is not None and finish > time_limit:
                self.clock = time_limit
                self.check_time(time_limit)
                break
            heapq.heappop(heap)
            job = self.running[worker]
            if job is None or job.job_id != job_id:
                continue  # a cancelled job
            self.clock = finish
            self.running[worker] = None
            vector, n_grads = self.contexts[worker].execute(job, self.points.get)
            for version in job.versions:
                self.points.release(version)
            # The worker moves on to its queued job before the method hands it new ones.
            queue = self.queues.get(worker)
            if queue:
                self._start_job(worker, queue.popleft())
            result = Result(job.kind, job.job_id, worker, job.version, vector, n_grads, duration=job.duration)
            self.deliver(worker, result, vector.size)
        self.final_snapshot()
