"""How a results file stores its columns: output.compression's HDF5 filter and each column's units.

Compression (opt-in) applies to the columns that grow with every result or update (/trace,
/events, /hops and the snapshots' scalars): gzip at the chosen level after a byte shuffle, both
filters built into HDF5, so any HDF5 reader decodes them. It is applied once the run's file is
closed (results.compress_tables): SWMR never reuses file space, so chunks compressed at every
flush would leave their old copies behind. A resumed run appends to the compressed tables and
compresses them again at its end; a killed run's tables stay as the run wrote them, plain.
Standard library only at import (validate.py checks output.compression with it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import h5py

COMPRESSIONS = ("none", *(f"gzip-{level}" for level in range(1, 10)))
# The `units` attribute of a column, by its name: every time is seconds since the run started
# (wall clock under MPI, virtual in the simulator), every byte count bytes.
UNITS = {
    "time": "s", "busy_time": "s", "sleep_time": "s", "overrun_time": "s",
    "queued": "s", "start": "s", "arrived": "s",
    "bytes": "bytes", "bytes_up": "bytes", "bytes_down": "bytes",
}


def filters(compression: str) -> dict[str, Any]:
    """h5py.Group.create_dataset options for an output.compression setting (one of COMPRESSIONS)."""
    level = re.fullmatch(r"gzip-([1-9])", compression)
    return {"compression": "gzip", "compression_opts": int(level.group(1)), "shuffle": True} if level else {}


def label(dataset: h5py.Dataset) -> None:
    """Give a column its `units` attribute when its name says it holds seconds or bytes."""
    unit = UNITS.get(dataset.name.rsplit("/", 1)[-1])
    if unit is not None:
        dataset.attrs["units"] = unit
