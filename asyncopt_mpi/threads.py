"""Process start-up, before numpy loads: one BLAS/OpenMP thread per process unless the user chose otherwise.

Every MPI rank (and every simulator in a sweep) is one process on a shared core, so a thread
pool per process only oversubscribes the cores; and OpenBLAS sizes its buffers per thread when
it loads, which under a tight address-space limit (`ulimit -v`) loops at start-up instead of
failing. A variable the user set (e.g. `OMP_NUM_THREADS=4`) is left as it is. Standard library
only: the package imports this module before anything that imports numpy.

The `asyncopt` command also answers a MemoryError no command caught (numpy, scipy or h5py
loading under a tight limit) with one line, not a traceback.
"""

from __future__ import annotations

import os
import sys

# The thread pools numpy, scipy and numexpr may start, by the variable each one reads.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
OUT_OF_MEMORY = ("asyncopt: error: out of memory (MemoryError): the process's memory limit (ulimit -v, or the "
                 "job's) is too small for numpy, scipy and h5py to load and the run to start")
_NO_MAPPING = "failed to map segment from shared object"  # a library loaded under the limit (ENOMEM)


def limit_threads(environ: dict[str, str] | os._Environ = os.environ) -> None:
    """One thread per process for every pool in THREAD_VARIABLES the user has not set."""
    for name in THREAD_VARIABLES:
        if not environ.get(name):
            environ[name] = "1"


def is_command() -> bool:
    """Whether this process is the `asyncopt` command (the console script or `python -m asyncopt_mpi`)."""
    if os.path.basename(sys.argv[0] if sys.argv else "") == "asyncopt":
        return True
    arguments = getattr(sys, "orig_argv", [])
    return any(first == "-m" and second == "asyncopt_mpi" for first, second in zip(arguments, arguments[1:]))


def answer_memory_errors() -> None:
    """In the command: an uncaught MemoryError ends the process with one line and exit 1."""
    previous = sys.excepthook

    def hook(kind, value, traceback) -> None:
        if issubclass(kind, MemoryError) or (issubclass(kind, ImportError) and _NO_MAPPING in str(value)):
            sys.stderr.write(OUT_OF_MEMORY + "\n")
            sys.stderr.flush()
            return
        previous(kind, value, traceback)

    sys.excepthook = hook


limit_threads()
if is_command():
    answer_memory_errors()
