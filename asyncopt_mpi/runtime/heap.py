"""Keep freed memory in the process heap, so that numpy's temporaries are not faulted in again and again.

glibc returns the free top of the heap to the kernel once it exceeds a threshold of a few
hundred KB, and serves larger blocks with mmap. The simulator's blocks of rows (a few hundred
rows of a point) make temporaries of that size on every block, so each one came back from the
kernel page by page: a gradient block of 256 rows x 100 took 300 us instead of 27 us, almost
all of it page faults. Raising both thresholds keeps such memory in the heap; blocks above
MMAP_BYTES are still mapped and returned, so resident memory stays bounded.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
TRIM_BYTES = 64 * 2**20  # free memory at the heap's top kept up to this much
MMAP_BYTES = 4 * 2**20  # blocks from this size on are mapped (and returned when freed)


def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds (Linux with glibc only); whether it was done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them: find_library("c") runs ldconfig
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)) and bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES))
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return False
