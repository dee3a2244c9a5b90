"""How much memory a run may use (problem.max_memory) and the checks that refuse oversized inputs before allocating.

A 26-byte LIBSVM file with feature index 2147483647, an .npz or HDF5 file that declares a
huge shape, or a gzip file that inflates to gigabytes would otherwise make numpy allocate
(or the kernel kill) long before any error could be reported. Every loader and every
problem checks the size it is about to allocate against the budget here first and refuses
with one line naming the file (or key) and the size.

The budget is problem.max_memory bytes, or by default half of the memory available now
(MemAvailable in /proc/meminfo), shared by the ranks that an MPI launcher put on this host
(every rank loads the problem).
"""

from __future__ import annotations

import os

DEFAULT_FRACTION = 0.5
FALLBACK_AVAILABLE = 8 * 2**30  # when the system does not say (no /proc/meminfo, no sysconf)
# Bytes one simulated worker or one MPI worker's server-side state costs beyond its vectors
# (measured: about 2.7 kB per simulated worker with dim = 20; rounded up).
PER_WORKER_BYTES = 4096
# Vectors of length dim a run holds per worker (a job's result in flight, its point) and in total
# (x, versions kept by the server, snapshots buffered, the method's own state).
VECTORS_PER_WORKER = 2
VECTORS_PER_RUN = 16
# Parsing text (LIBSVM) costs about this many bytes of memory per byte of text (the text, its
# decoded string and token lists): a 30.5 MB file peaked at 478 MB over the interpreter's own (15.7x).
TEXT_EXPANSION = 16
# Environment variables in which launchers give the number of ranks on this host.
_LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")


def available_memory() -> int:
    """Bytes of memory available to new allocations now (MemAvailable; sysconf otherwise)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return FALLBACK_AVAILABLE


def ranks_on_this_host() -> int:
    """How many ranks of this job share the host's memory (1 outside a launcher)."""
    for name in _LOCAL_SIZE_VARIABLES:
        try:
            value = int(os.environ.get(name, "").split("(")[0])
        except ValueError:
            continue
        if value >= 1:
            return value
    return 1


def budget(max_memory: int | float | None = 0) -> int:
    """problem.max_memory if > 0, else DEFAULT_FRACTION of the available memory per rank on this host."""
    if max_memory and max_memory > 0:
        return int(max_memory)
    return max(1, int(DEFAULT_FRACTION * available_memory() / ranks_on_this_host()))


def budget_of(config: object) -> int:
    """The budget of a ProblemConfig-like object (its max_memory, 0 or absent: the default)."""
    return budget(getattr(config, "max_memory", 0) or 0)


def human(nbytes: float) -> str:
    """A byte count for people: 17.2 GB, 512 MB, 34 B."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{int(nbytes)} B"


def too_big(nbytes: float, limit: int) -> bool:
    return nbytes > limit


def limit_text(limit: int) -> str:
    """How the limit is named in messages (and how to raise it)."""
    return f"problem.max_memory = {human(limit)} ({limit} bytes; raise it with --set problem.max_memory=BYTES)"


def run_bytes(dim: int, n_workers: int) -> int:
    """Memory the runtime needs for the vectors and state of a run with n_workers workers on R^dim."""
    return 8 * dim * (VECTORS_PER_RUN + VECTORS_PER_WORKER * n_workers) + PER_WORKER_BYTES * n_workers
