"""In-process simulator runs and a bit-for-bit comparison of the files they write (for on/off switches of the core)."""

from __future__ import annotations

import contextlib
import io

import h5py
import numpy as np

from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime.session import prepare_resume, run_sim


def simulate(path, method: str, overrides: list[str], resume: bool = False) -> int:
    """Run `method` in the simulator into `path` (or resume the run in `path` with `overrides`); its exit code."""
    if resume:
        config, point = prepare_resume(str(path), overrides, "sim")
    else:
        config, point = load_config(None, overrides + [f"output.path={path}"], method=method, backend="sim"), None
    with contextlib.redirect_stdout(io.StringIO()):
        return run_sim(config, point)


def datasets(path) -> dict[str, np.ndarray]:
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def assert_same_files(first, second) -> int:
    """Every dataset of the two files equal, bit for bit (nan where nan); returns the events recorded."""
    a, b = datasets(first), datasets(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), f"{name} differs"
    return len(a["events/time"])
