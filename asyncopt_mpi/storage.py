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


def label(dataset: h5py.Dataset, name: str | None = None) -> None:
    """Give a column its `units` attribute when its name (`name`, else read from the file) says it
    holds seconds or bytes."""
    unit = UNITS.get(name or dataset.name.rsplit("/", 1)[-1])
    if unit is not None:
        set_attrs(dataset, {"units": unit})


_plain_types: dict[type, tuple] = {}  # str, int, float -> (file type, memory type, numpy dtype), made once


def set_attrs(item: h5py.HLObject, attrs: dict[str, Any]) -> None:
    """`item.attrs[key] = value` for each item, stored as h5py stores it; a str, float or int (in int64)
    with the HDF5 types made once per process, since h5py's own path works them out again for each
    attribute (a new results file has about 60: a third of the cost of making it)."""
    from h5py import h5a, h5s, h5t, string_dtype
    import numpy as np

    if not _plain_types:
        for kind, dtype in ((str, string_dtype()), (int, np.dtype("int64")), (float, np.dtype("float64"))):
            _plain_types[kind] = (h5t.py_create(dtype, logical=True), h5t.py_create(dtype), dtype,
                                  h5s.create_simple(()))
    for key, value in attrs.items():
        found = _plain_types.get(type(value))
        if found is None or (type(value) is int and not -(1 << 63) <= value < (1 << 63)):
            item.attrs[key] = value
            continue
        stored, memory, dtype, space = found
        name = key.encode()
        if h5a.exists(item.id, name):
            h5a.delete(item.id, name)
        attribute = h5a.create(item.id, name, stored, space)
        try:
            attribute.write(np.asarray(value, dtype=dtype), mtype=memory)
        finally:
            attribute.close()
