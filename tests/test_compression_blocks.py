"""Compressed uploads at a lower cost per message, with the same numbers: RandK's indices drawn once per message,
QSGD's copies drawn in one call, the compressor of a job looked up once."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi import compression
from asyncopt_mpi.compression import Quantize, compressor_from_code, randk_indices
from same_files import assert_same_files, datasets, simulate

SMALL = ["problem.dim=60", "workers.n=6", "workers.compute=sqrt", "workers.comm=sqrt", "workers.comm_scale=0.01",
         "stop.time=40", "output.snapshot_every=10"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, extra", [
    ("shadowheart_sgd", ["method.lr=0.5", "method.K=2"]),  # several copies per message
    ("qsgd", ["method.lr=0.05", "problem.noise_type=zero_last", "problem.noise=0.1", "workers.seed=4"]),
])
def test_a_randk_message_seeds_one_generator_and_writes_the_same_file(tmp_path, monkeypatch, method, extra):
    """In the simulator the method decodes a message right after the worker encoded it: the decode reuses the
    encode's indices (one generator seeded per message, not two), and the file is the one of seeding twice."""
    original = compression.randk_indices
    calls = []

    def counting(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(compression, "randk_indices", counting)
    assert simulate(tmp_path / "once.h5", method, SMALL + extra) == 0
    messages = len(datasets(tmp_path / "once.h5")["events/time"])
    assert len(calls) == messages > 100

    def seeded_every_time(seed, dim, K, copies):  # what every decode did before: its own generator
        return original(seed, dim, K, copies)

    monkeypatch.setattr(compression, "_message_indices", seeded_every_time)
    assert simulate(tmp_path / "twice.h5", method, SMALL + extra) == 0
    assert assert_same_files(tmp_path / "once.h5", tmp_path / "twice.h5") == messages


class CountingGenerator:
    """A real Generator that counts the calls of random() a compressor makes."""

    def __init__(self, seed: int):
        self.generator, self.calls = np.random.default_rng(seed), 0

    def random(self, *args, **kwargs):
        self.calls += 1
        return self.generator.random(*args, **kwargs)


@pytest.mark.parametrize("dim, copies", [(37, 6), (5000, 9)])  # 5000 floats a copy: the copies span two blocks
def test_quantize_draws_its_copies_in_blocks_with_the_numbers_of_one_call_each(dim, copies):
    vector = np.random.default_rng(1).normal(size=dim)
    compressor = Quantize(3)
    blocks = CountingGenerator(7)
    payload = compressor.encode(vector, copies, blocks)
    assert blocks.calls == -(-copies // max(1, compression.DECODE_CHUNK // dim))
    one_by_one = np.random.default_rng(7)  # copy after copy, one call each: the same payload, byte for byte
    alone = np.concatenate([compressor.encode(vector, 1, one_by_one) for _ in range(copies)])
    assert payload.tobytes() == alone.tobytes()


def test_a_job_compressor_is_looked_up_once_and_one_index_is_the_array_draw():
    assert compressor_from_code(1, 3) is compressor_from_code(1, 3)
    assert compressor_from_code(2.0, 4.0) is compressor_from_code(2.0, 4.0)  # as the wire carries them
    with pytest.raises(compression.ConfigError):  # the cache keeps the checks: a bool is no code
        compressor_from_code(True, 1)
    # K = 1, one copy: the scalar draw is the first number of the array draw, for every seed and dimension.
    for seed in range(300):
        for dim in (1, 7, 1000, 2**40 + 3):
            expected = np.random.Generator(np.random.PCG64(seed)).integers(dim, size=(1, 1))
            assert np.array_equal(randk_indices(seed, dim, 1, 1), expected)
