"""The lean simulator core reproduces the core before it number for number where the random draws are unchanged.

tests/data/old_core_reference.npz holds fixed-seed runs made with commit 9bbab50 (see
tests/data/old_core_reference.py, which also defines the settings): async_sgd, rennala_sgd,
minibatch_sgd and freya_page. Deferred block math, lazy results and vectorised restarts
must give the same event order, trace, snapshots and losses, bit for bit.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

DATA = os.path.join(os.path.dirname(__file__), "data")


def _reference_module():
    spec = importlib.util.spec_from_file_location("old_core_reference", os.path.join(DATA, "old_core_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference_module()
# Keys added after the reference was made, set to the behaviour the old core had.
LATER_KEYS = {"freya_page": ['method.gradient_sampling="permutation"']}


@pytest.mark.parametrize("name", sorted(REFERENCE.EXACT))
def test_new_core_matches_the_old_core_bit_for_bit(tmp_path, name):
    expected = np.load(os.path.join(DATA, "old_core_reference.npz"))
    method, overrides = REFERENCE.EXACT[name]
    found = REFERENCE.run(method, overrides + LATER_KEYS.get(name, []), str(tmp_path / f"{name}.h5"))
    for column in REFERENCE.COLUMNS:
        reference = expected[f"{name}:{column}"]
        assert found[column].shape == reference.shape, column
        assert np.array_equal(found[column], reference), f"{name} {column} differs from the old core"
    assert len(found["events/time"]) >= 1000  # a run long enough to exercise blocks and restarts


@pytest.mark.parametrize("name", ["async_sgd", "rennala_sgd", "minibatch_sgd"])
def test_a_small_noise_ring_that_wraps_often_changes_no_number(tmp_path, monkeypatch, name):
    """Deferred steps and sums are finished whenever the ring of drawn noise rows wraps (here every 64 draws)."""
    from asyncopt_mpi.runtime.sim import server as sim

    monkeypatch.setattr(sim, "NOISE_BYTES", 64 * 8 * 30)  # 64 rows at d = 30
    expected = np.load(os.path.join(DATA, "old_core_reference.npz"))
    method, overrides = REFERENCE.EXACT[name]
    found = REFERENCE.run(method, overrides, str(tmp_path / f"{name}.h5"))
    for column in REFERENCE.COLUMNS:
        assert np.array_equal(found[column], expected[f"{name}:{column}"]), f"{name} {column}"
