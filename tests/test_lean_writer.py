"""The results writer's per-file fixed costs cut without changing the file: attributes written with types
made once per process are stored as h5py stores them, and the snapshots a run keeps in memory for its
evaluation are what the closed file holds."""

from __future__ import annotations

import h5py
import numpy as np
from h5py import h5a

from asyncopt_mpi import storage
from asyncopt_mpi.results import ResultsWriter, read_snapshots

VALUES = {"text": "a value", "unicode": "café", "empty": "", "count": 7, "big": -(1 << 62), "real": 0.25,
          "flag": True, "array": np.arange(3), "names": np.array(["a", "b"], dtype=h5py.string_dtype())}


def _stored(item: h5py.HLObject, key: str) -> tuple:
    """An attribute as HDF5 holds it: type class, size, variable length and charset, dataspace, value."""
    attribute = h5a.open(item.id, key.encode())
    kind, space = attribute.get_type(), attribute.get_space()
    text = kind.get_class() == h5py.h5t.STRING
    value = item.attrs[key]
    return (kind.get_class(), kind.get_size(), text and kind.is_variable_str(), text and kind.get_cset(),
            space.get_simple_extent_type(), space.get_simple_extent_dims(), repr(getattr(value, "tolist", lambda: value)()))


def test_set_attrs_stores_every_value_as_h5py_does(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w", libver="latest") as ours, h5py.File(tmp_path / "b.h5", "w", libver="latest") as theirs:
        storage.set_attrs(ours, VALUES)
        storage.set_attrs(ours, {"count": "replaced"})  # an existing attribute is replaced, as attrs[key] = value does
        for key, value in {**VALUES, "count": "replaced"}.items():
            theirs.attrs[key] = value
        assert sorted(ours.attrs) == sorted(theirs.attrs)
        for key in VALUES:
            assert _stored(ours, key) == _stored(theirs, key), key


def test_the_snapshots_kept_in_memory_are_the_files(tmp_path):
    path = str(tmp_path / "w.h5")
    writer = ResultsWriter(path, attrs={"format_version": 1, "config": ""}, dim=3, n_workers=2)
    for step in range(5):
        writer.snapshot(0.5 * step, step, 2 * step, 10 * step, np.arange(3.0) * step)
    writer.finish("completed", "done", {})
    kept, read = writer.written_snapshots(), read_snapshots(path)
    assert sorted(kept) == sorted(read)
    for name in read:
        assert kept[name].dtype == read[name].dtype and np.array_equal(kept[name], read[name]), name
    # More than the writer keeps: read from the file instead.
    large = ResultsWriter(str(tmp_path / "l.h5"), attrs={"format_version": 1, "config": ""}, dim=1 << 17, n_workers=1)
    large.snapshot(0.0, 0, 0, 0, np.zeros(1 << 17))
    large.snapshot(1.0, 1, 1, 1, np.zeros(1 << 17))
    large.finish("completed", "done", {})
    assert large.written_snapshots() is None
