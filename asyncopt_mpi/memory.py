"""How much memory a run may use (problem.max_memory) and the checks that refuse oversized inputs before allocating.

A 26-byte LIBSVM file with feature index 2147483647, an .npz or HDF5 file that declares a
huge shape, or a gzip file that inflates to gigabytes would otherwise make numpy allocate
(or the kernel kill) long before any error could be reported. Every loader and every
problem checks the size it is about to allocate against the budget here first and refuses
with one line naming the file (or key) and the size.

The budget is problem.max_memory bytes, or by default half of the memory available now to this
host's ranks, shared by the ranks that an MPI launcher put on this host (every rank loads the
problem). What is available is the smallest of what the system has free (MemAvailable in
/proc/meminfo), what the process's cgroup (v2) still allows (memory.max minus memory.current, at
its own level and every level above) and what Slurm allocated (--mem per node, or --mem-per-cpu
times the CPUs of the host's tasks): on a cluster node the first is the whole node's, the others
the job's share of it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

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
# Where the system says how much memory is free, and where cgroup v2 is mounted (tests point them at a folder).
MEMINFO = "/proc/meminfo"
CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"
MB = 2**20  # Slurm's memory sizes are in megabytes
# Environment variables in which launchers give the number of ranks on this host.
_LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
_TASK_COUNTS = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")  # one item of SLURM_TASKS_PER_NODE: "4" or "4(x2)"


def available_memory(environ: Mapping[str, str] | None = None) -> int:
    """Bytes this host's ranks may still allocate: the smallest of the system's, the cgroup's and Slurm's."""
    environ = os.environ if environ is None else environ
    limits = (cgroup_room(), slurm_allocation(environ, ranks_on_this_host(environ)))
    return min([system_available(), *(limit for limit in limits if limit is not None)])


def system_available() -> int:
    """Bytes of memory available to new allocations now (MemAvailable; sysconf otherwise)."""
    try:
        with open(MEMINFO, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return FALLBACK_AVAILABLE


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _own_cgroup() -> str:
    """This process's cgroup v2 path ("0::/PATH" in /proc/self/cgroup), "" for the root or when unknown."""
    for line in (_read(SELF_CGROUP) or "").splitlines():
        if line.startswith("0::"):
            return line[3:].strip("/")
    return ""


def cgroup_room(root: str | None = None) -> int | None:
    """Bytes the cgroup v2 limits still allow (memory.max - memory.current, the smallest over this
    process's cgroup and those above it); None when no level sets a limit ("max") or there is no cgroup v2."""
    root = CGROUP_ROOT if root is None else root
    rooms = []
    parts = [part for part in _own_cgroup().split("/") if part]
    for depth in range(len(parts), -1, -1):
        level = os.path.join(root, *parts[:depth])
        limit, used = _read(os.path.join(level, "memory.max")), _read(os.path.join(level, "memory.current"))
        if limit is None or limit == "max" or not limit.isdigit():
            continue
        rooms.append(max(0, int(limit) - (int(used) if used and used.isdigit() else 0)))
    return min(rooms) if rooms else None


def _positive(environ: Mapping[str, str], name: str) -> int | None:
    text = environ.get(name, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def slurm_allocation(environ: Mapping[str, str], ranks: int = 1) -> int | None:
    """Bytes Slurm allocated to `ranks` tasks on this node (--mem, or --mem-per-cpu x --cpus-per-task
    per task); None outside Slurm or with --mem=0 (the whole node)."""
    per_node = _positive(environ, "SLURM_MEM_PER_NODE")
    if per_node is not None:
        return per_node * MB
    per_cpu = _positive(environ, "SLURM_MEM_PER_CPU")
    if per_cpu is not None:
        return per_cpu * (_positive(environ, "SLURM_CPUS_PER_TASK") or 1) * ranks * MB
    return None


def _slurm_tasks_here(environ: Mapping[str, str]) -> int | None:
    """This node's task count from SLURM_TASKS_PER_NODE ("4(x2),3": 4 on nodes 0 and 1, 3 on node 2),
    by SLURM_NODEID (unknown: the largest count)."""
    counts: list[int] = []
    for item in environ.get("SLURM_TASKS_PER_NODE", "").split(","):
        match = _TASK_COUNTS.match(item.strip())
        if match is None:
            return None
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    node = environ.get("SLURM_NODEID", "")
    return counts[int(node)] if node.isdigit() and int(node) < len(counts) else max(counts)


def ranks_on_this_host(environ: Mapping[str, str] | None = None) -> int:
    """How many ranks of this job share the host's memory (1 outside a launcher)."""
    environ = os.environ if environ is None else environ
    for name in _LOCAL_SIZE_VARIABLES:
        value = _positive(environ, name)
        if value is not None:
            return value
    here = _slurm_tasks_here(environ)
    if here is not None and here >= 1:
        return here
    tasks, nodes = _positive(environ, "SLURM_NTASKS"), _positive(environ, "SLURM_NNODES")
    if tasks is not None:
        return math.ceil(tasks / (nodes or 1))
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
