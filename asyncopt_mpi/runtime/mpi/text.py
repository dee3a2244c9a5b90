"""Text that MPI hands us (library version, processor names), cleaned before it is stored.

MPI strings come from C: Open MPI's `Get_library_version()` ends in a NUL byte, and other
libraries may pad with NULs or carry control characters. HDF5 string attributes refuse
embedded NULs, so every such string passes through `printable` before it reaches a file.
"""

from __future__ import annotations

from typing import Any


def printable(text: str | bytes) -> str:
    """`text` without NULs and other non-printable characters (tabs become spaces), trimmed."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return "".join(" " if char == "\t" else char for char in text if char.isprintable() or char == "\t").strip()


def library_version(mpi: Any) -> str:
    """The first line of the MPI library's version text (`mpi` is mpi4py's MPI module)."""
    lines = [printable(line) for line in str(mpi.Get_library_version()).splitlines()]
    return next((line for line in lines if line), "unknown MPI library")
