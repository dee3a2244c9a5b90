"""Fewer garbage-collector passes while the simulator's event loop runs.

The loop makes and drops many small tuples and objects per event, none of them in reference
cycles, and the collector's automatic passes scan the tracked objects made before the loop
(per-worker entries and streams, heap tuples) again and again. Freezing those and passing
less often gave the simulator 3-30% more events per second (the most with many workers);
cycles made during the loop are still collected. (Rank 0 under MPI, with far fewer live
objects, measured no difference.)
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

LOOP_THRESHOLD = 50_000  # allocations between passes of the youngest generation (Python's default: 700)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    previous = gc.get_threshold()
    freezing = gc.get_freeze_count() == 0  # a caller's freeze (a sweep's, sweep.py) is left as it is
    if freezing:
        gc.freeze()
    gc.set_threshold(max(previous[0], LOOP_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if freezing:
            gc.unfreeze()
