"""Polling with an adaptive sleep, so that ranks waiting on MPI leave the cores to ranks that work.

MPI's blocking waits spin; with more ranks than cores that starves the busy ranks. We
poll instead and sleep between polls: the sleep doubles from `minimum` to `maximum` while
nothing happens and resets on progress (as mpi4py.futures' manager loop does). The timer
slack of the process is lowered so that short sleeps are not stretched to 50 us.
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
    __slots__ = ("minimum", "maximum", "delay")

    def __init__(self, minimum: float = 2e-6, maximum: float = 2e-4):
        self.minimum = minimum
        self.maximum = maximum
        self.delay = minimum

    def reset(self) -> None:
        self.delay = self.minimum

    def sleep(self) -> None:
        time.sleep(self.delay)
        self.delay = min(self.delay * 2.0, self.maximum)


def poll(test: Callable[[], bool], backoff: Backoff | None = None, timeout: float | None = None) -> bool:
    """Call test() until it returns True (then True) or timeout seconds pass (then False)."""
    backoff = backoff or Backoff(maximum=1e-3)
    backoff.reset()
    deadline = None if timeout is None else time.perf_counter() + timeout
    while not test():
        if deadline is not None and time.perf_counter() >= deadline:
            return False
        backoff.sleep()
    return True
