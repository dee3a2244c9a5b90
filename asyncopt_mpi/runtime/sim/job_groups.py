"""Jobs started together on many idle workers (one assign_many call), held by the simulator as one group.

A group keeps its finite-time jobs sorted by (finish time, sequence number), the order in which
the heap would give them, and only its earliest job still running sits in the heap. When that
job is popped, the next one still running takes its place, so the simulator pops events in
exactly the order one heap entry per job gives, while starting or cancelling a whole group
costs array operations instead of a heap operation per worker. A worker's group job is running
while `member_of[worker]` holds its job id (a cancel or the job's own completion clears it).
"""

from __future__ import annotations

import heapq

import numpy as np

CHUNK = 256  # positions turned into Python lists at a time: a group is often cancelled after its first few jobs


class JobGroup:
    __slots__ = ("job", "point", "point2", "version", "indices", "finish", "sequence", "workers", "job_ids",
                 "rows", "durations", "fails", "worker_array", "id_array", "next", "all_finite", "size",
                 "row_array", "finish_array", "sequence_array")

    def __init__(self, job, point, point2, version: int, indices, clock: float, workers: np.ndarray,
                 ids: np.ndarray, durations: np.ndarray, fails: np.ndarray, sequence: int):
        """`workers[i]` runs job `ids[i]` for `durations[i]` seconds from `clock`; rows with infinite
        durations never end and are not ordered. Sequence numbers go to finite rows in row order."""
        self.job, self.point, self.point2, self.version, self.indices = job, point, point2, version, indices
        self.durations, self.fails = durations, fails
        finite = np.flatnonzero(np.isfinite(durations))
        self.all_finite = len(finite) == len(durations)  # else some job runs until cancelled
        finish = clock + durations[finite]
        order = finite[np.argsort(finish, kind="stable")]  # equal finish times keep row (= sequence) order
        self.size = len(order)
        self.row_array, self.finish_array = order, clock + durations[order]
        self.sequence_array = sequence + np.searchsorted(finite, order)
        self.worker_array, self.id_array = workers[order], ids[order]
        # The same fields as lists (cheaper to read one item of), made CHUNK positions at a time.
        self.rows, self.finish, self.sequence, self.workers, self.job_ids = [], [], [], [], []
        self.next = 0  # the position of the job in the heap (or the next one to look at)

    def __len__(self) -> int:
        return self.size

    def _listed(self, position: int) -> None:
        """Make the lists reach past `position`."""
        start, stop = len(self.rows), min(self.size, position + CHUNK)
        for items, array in ((self.rows, self.row_array), (self.finish, self.finish_array),
                             (self.sequence, self.sequence_array), (self.workers, self.worker_array),
                             (self.job_ids, self.id_array)):
            items += array[start:stop].tolist()

    def push_next(self, heap: list, member_of: np.ndarray) -> None:
        """Put the earliest job from position `next` on that is still running into the heap (if any)."""
        position = self.next
        if position >= self.size:
            return
        if position >= len(self.rows):
            self._listed(position)
        if member_of[self.workers[position]] != self.job_ids[position]:
            alive = np.flatnonzero(member_of[self.worker_array[position:]] == self.id_array[position:])
            if not alive.size:
                self.next = self.size
                return
            position += int(alive[0])
            if position >= len(self.rows):
                self._listed(position)
        self.next = position
        heapq.heappush(heap, (self.finish[position], self.sequence[position], self.workers[position],
                              self.job_ids[position], self))

    def entry(self, position: int) -> tuple:
        """The simulator's running entry of the job at `position` (as SimServer.assign would make it)."""
        row = self.rows[position]
        indices = None if self.indices is None else self.indices[row]
        return (self.job_ids[position], self.job, self.point, self.point2, indices, float(self.durations[row]),
                bool(self.fails[row]), self.version)
