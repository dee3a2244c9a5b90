"""Opening a results file still marked open for writing (SWMR read) with few metadata read attempts.

A writer killed while it had the file open without SWMR (laying the file out, storing metrics at the
end, resuming it) leaves it marked open for plain writing, which an SWMR reader is refused too; such
a file is opened read-only with HDF5's consistency flags ignored, as `h5clear -s` would, so that
evaluate can salvage it.

An SWMR reader retries a metadata block whose checksum fails (HDF5's default: 100 attempts, with
growing sleeps), since a live writer may be rewriting it; on a damaged file that is minutes of
spinning for nothing. h5py does not offer H5Pset_metadata_read_attempts, so it is called in
the HDF5 library h5py loaded. Depends on h5py and the standard library only: results.py's probe
loads this file by its path in a child process without importing the package.
"""

from __future__ import annotations

import ctypes
import os

import h5py

# Enough for a live writer's torn block to settle (each retry sleeps longer), few enough that a
# damaged file fails in well under a second.
READ_ATTEMPTS = 4


def _hdf5_library() -> ctypes.CDLL | None:
    """The HDF5 library h5py is linked to (found among this process's mappings), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name = os.path.basename(line.split()[-1])
                if name.startswith("libhdf5") and "_hl" not in name and ".so" in name:
                    return ctypes.CDLL(line.split()[-1])
    except (OSError, IndexError):
        pass
    return None


def open_swmr(path: str, locking: bool | None = None) -> h5py.File:
    """`path` opened read-only in SWMR mode, each metadata block read at most READ_ATTEMPTS times
    (where the library allows setting it; else HDF5's default), with HDF5 file locking on or off
    (None: HDF5's default, which honours HDF5_USE_FILE_LOCKING)."""
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    if locking is not None:
        access.set_file_locking(locking, False)  # as h5py.File(..., locking=True/False) sets it
    library = _hdf5_library()
    setter = getattr(library, "H5Pset_metadata_read_attempts", None) if library is not None else None
    if setter is not None:
        setter(ctypes.c_int64(access.id), ctypes.c_uint(READ_ATTEMPTS))
    try:
        identifier = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=access)
    except OSError as exc:
        if "not already open for SWMR writing" not in str(exc) or not _ignore_status_flags(library, access):
            raise
        identifier = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, fapl=access)
    return h5py.File(identifier)


def _ignore_status_flags(library: ctypes.CDLL | None, access: h5py.h5p.PropFAID) -> bool:
    """Set HDF5's own file-access property that h5clear uses to open a file whose writer died
    (H5Pset by name: h5py has no setter); False where the library does not have it."""
    setter = getattr(library, "H5Pset", None) if library is not None else None
    if setter is None:
        return False
    ignore = ctypes.c_bool(True)
    return setter(ctypes.c_int64(access.id), b"clear_status_flags", ctypes.byref(ignore)) >= 0
