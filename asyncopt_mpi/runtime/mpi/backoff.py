"""Polling with an adaptive sleep, so that ranks waiting on MPI leave the cores to ranks that work.

MPI's blocking waits spin; with more ranks than cores that starves the busy ranks. We
poll instead and sleep between polls. A sleep is a fixed fraction of the time waited so
far (clamped to [minimum, maximum]): an answer that comes quickly is noticed quickly, and
the latency a long wait adds stays a small share of that wait. It resets on progress. The
timer slack of the process is lowered so that short sleeps are not stretched to 50 us.
"""

from __future__ import annotations

import ctypes
import sys
import time
from typing import Callable

_PR_SET_TIMERSLACK = 29


def lower_timer_slack(nanoseconds: int = 1000) -> None:
    """Ask Linux for precise short sleeps (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Backoff:
    __slots__ = ("minimum", "maximum", "fraction", "since")

    def __init__(self, minimum: float = 1e-6, maximum: float = 1e-3, fraction: float = 0.05):
        self.minimum = minimum
        self.maximum = maximum
        self.fraction = fraction
        self.since = time.perf_counter()

    def reset(self) -> None:
        self.since = time.perf_counter()

    def sleep(self, limit: float = float("inf")) -> None:
        """Sleep a back-off step, but no longer than limit seconds."""
        waited = time.perf_counter() - self.since
        time.sleep(max(0.0, min(self.maximum, limit, max(self.minimum, self.fraction * waited))))


def poll(test: Callable[[], bool], backoff: Backoff | None = None, timeout: float | None = None) -> bool:
    """Call test() until it returns True (then True) or timeout seconds pass (then False)."""
    backoff = backoff or Backoff()
    backoff.reset()
    deadline = None if timeout is None else time.perf_counter() + timeout
    while not test():
        if deadline is not None and time.perf_counter() >= deadline:
            return False
        backoff.sleep()
    return True
