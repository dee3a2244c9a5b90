"""runtime/heap.py: with freed memory kept in the heap, repeated temporaries of a few hundred KB are not
faulted in from the kernel again and again (counted as minor page faults in a fresh process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import numpy as np
from asyncopt_mpi.runtime.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
else:  # glibc's initial thresholds, held (its own adjustment of them depends on where the heap lies)
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-1, 128 * 1024) and libc.mallopt(-3, 128 * 1024)
from asyncopt_mpi.problems import QuadraticProblem
problem, block = QuadraticProblem(100), np.ones((256, 100))
problem.full_grad_rows(block)  # the first temporaries fault in whatever is new
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    problem.full_grad_rows(block)  # a simulator block's gradients: temporaries of 200 KB
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_not_faulted_in_again():
    assert _faults("glibc") > 200 * 50  # temporaries of 200 KB come back page by page (50 pages each)
    assert _faults("keep") < 200
