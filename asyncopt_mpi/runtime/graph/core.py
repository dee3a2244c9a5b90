"""What both graph runtimes record: the pivot's steps, results reaching the pivot, link hops, stop rules.

The math of a decentralized run happens at the nodes; this ServerCore only mirrors the
pivot's point (so snapshots, metrics, stop rules and the file work as for every method)
and adds the /hops table. In the trace, bytes_up / bytes_down count the bytes the pivot
received / sent over its links; /workers has every node's link bytes.
"""

from __future__ import annotations

import numpy as np

from ...methods.decentralized import Kind, Plan
from ..server import ServerCore, StopReason

HEADER_FLOATS = 8  # charged per link message besides its vector (kind, version, dest, origin, count, ...)
FLOAT_BYTES = 8


def message_bytes(dim: int) -> int:
    return FLOAT_BYTES * (HEADER_FLOATS + dim)


class GraphCore(ServerCore):
    def __init__(self, *args, plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.pivot = plan.pivot

    def start(self) -> None:
        self.take_snapshot()

    def record_step(self, x: np.ndarray, grads_used: int) -> None:
        """The pivot stepped to x (the next version)."""
        buffer = self.new_point()
        buffer[:] = x
        self.publish(buffer, grads_used=grads_used, max_delay=0)
        if not np.isfinite(buffer).all():  # a snapshot now stops the run as diverged, not the next one
            self.take_snapshot(self.now())

    def record_arrival(self, now: float, origin: int, kind: int, version: int, count: int, accepted: bool) -> None:
        """A result reached the pivot (its own gradient, or a message from a child)."""
        if kind == Kind.GRADS:
            self.grads_received += count
        self.writer.event((now, origin, kind, version, self.version - version, accepted))
        limit = self.stop_rules.gradients
        if limit is not None and self.grads_received >= limit:
            self.stop(StopReason.GRADIENTS, f"stop.gradients = {limit} reached")

    def after_event(self, now: float) -> None:
        """Snapshots, the time limit and housekeeping, checked after every event."""
        if now - self.last_snapshot_time >= self.snapshot_every:
            self.take_snapshot(now)
        self.check_time(now)
        self.housekeeping()
