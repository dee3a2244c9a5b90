"""The randk_fast compressor (an option): RandK in law, its indices from a cheaper seed -> indices map than randk's
(the default, whose files stay bit for bit); the server regenerates them from the seed alone, on both runtimes."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi import compression
from asyncopt_mpi.compression import compressor_from_code, fast_randk_indices, make_compressor, randk_indices
from conftest import attrs, read, run_mpi, sets
from same_files import datasets, simulate

SMALL = ["problem.dim=60", "workers.n=6", "workers.compute=sqrt", "workers.comm=sqrt", "workers.comm_scale=0.01",
         "stop.time=40", "output.snapshot_every=10", "problem.noise_type=zero_last", "problem.noise=0.1"]


@pytest.mark.parametrize("dim, K, copies", [(100, 1, 1), (100, 1, 37), (100, 3, 20), (10, 5, 4)])
def test_fast_indices_are_a_function_of_the_seed_with_distinct_rows_in_range(dim, K, copies):
    first = fast_randk_indices(12345, dim, K, copies)
    fast_randk_indices(999, dim, K, copies)  # the shared generator moved on: the map does not depend on it
    again = fast_randk_indices(12345, dim, K, copies)
    assert first.shape == (copies, K) and np.array_equal(first, again)
    assert ((first >= 0) & (first < dim)).all()
    assert all(len(set(row)) == K for row in first.tolist())
    assert not np.array_equal(first, randk_indices(12345, dim, K, copies)) or copies * K < 3  # another stream


def test_fast_indices_are_uniform_and_the_compressor_unbiased():
    counts = np.bincount(np.concatenate([fast_randk_indices(seed, 7, 1, 5).ravel() for seed in range(4000)]),
                         minlength=7)
    expected = 4000 * 5 / 7
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)  # about 2.5 standard deviations in all
    vector = np.arange(1.0, 11.0)
    compressor = make_compressor("randk_fast", 2)
    total = np.zeros(10)
    rng = np.random.default_rng(3)
    for _ in range(3000):
        compressor.decode_add(total, compressor.encode(vector, 1, rng), 1)
    assert np.allclose(total / 3000, vector, rtol=0.2)


def test_the_server_decodes_from_the_seed_alone():
    """A decode in another process has no memo of the encode: the seed's indices are drawn again, the same."""
    compressor = compressor_from_code(3, 4)
    assert compressor.name == "randk_fast" and compressor.omega(40) == 9.0
    vector = np.random.default_rng(1).normal(size=40)
    payload = compressor.encode(vector, 6, np.random.default_rng(2))
    remembered = np.zeros(40)
    compressor.decode_add(remembered, payload, 6, 0.5)
    compression._last_message.clear()
    regenerated = np.zeros(40)
    compressor.decode_add(regenerated, payload, 6, 0.5)
    assert np.array_equal(remembered, regenerated) and np.count_nonzero(regenerated) > 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, extra", [("shadowheart_sgd", ["method.lr=0.5"]), ("qsgd", ["method.lr=0.05"])])
def test_a_run_with_randk_fast_converges_and_draws_other_numbers(tmp_path, method, extra):
    assert simulate(tmp_path / "fast.h5", method, SMALL + extra + ["method.compressor=randk_fast"]) == 0
    assert simulate(tmp_path / "randk.h5", method, SMALL + extra) == 0
    fast, randk = datasets(tmp_path / "fast.h5"), datasets(tmp_path / "randk.h5")
    assert np.array_equal(fast["events/time"], randk["events/time"])  # same jobs and times: only the indices moved
    assert not np.array_equal(fast["metrics/suboptimality"], randk["metrics/suboptimality"])
    assert fast["metrics/suboptimality"][-1] < 0.5 * fast["metrics/suboptimality"][0]


@pytest.mark.mpi
@pytest.mark.timeout(180)
def test_randk_fast_over_mpi(tmp_path):
    path = tmp_path / "fast.h5"
    options = dict(problem={"name": "quadratic", "dim": 40, "noise": 0.01},
                   workers={"compute": "fixed", "compute_scale": 0.001, "comm": "fixed", "comm_scale": 0.0004},
                   # rounds, not seconds (about 1.4 s idle): 2 wall seconds of a loaded machine once left f - f*
                   # where it started
                   stop={"iterations": 40, "time": 60.0}, output={"snapshot_every": 0.2})
    done = run_mpi(3, ["run", "--method", "shadowheart_sgd", "--output", str(path)]
                   + sets(method={"lr": 0.5, "compressor": "randk_fast", "K": 2}, **options), timeout=120)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["status"] == "completed"
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert subopt[-1] < 0.5 * subopt[0]
