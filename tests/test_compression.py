"""Compressors: unbiasedness, variance against omega, wire sizes, seeded RandK indices, decode memory."""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest

from asyncopt_mpi.compression import (
    COMPRESSOR_CODES,
    COMPRESSORS,
    compressor_from_code,
    make_compressor,
    randk_indices,
)
from asyncopt_mpi.errors import ConfigError

DIM = 12
SPECS = [("identity", 0), ("randk", 3), ("quantize", 2)]


@pytest.fixture
def vector() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(DIM)


def decodes(compressor, vector: np.ndarray, draws: int, copies: int = 1, seed: int = 1) -> np.ndarray:
    """(draws, d): each row the decode of its own message (fresh rng draws)."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((draws, vector.size))
    for row in rows:
        compressor.decode_add(row, compressor.encode(vector, copies, rng), copies)
    return rows


def within_sampling_error(samples: np.ndarray, target, sigmas: float = 5.0) -> bool:
    """The sample mean of `samples` (axis 0) is within `sigmas` standard errors of `target`."""
    error = np.std(samples, axis=0, ddof=1) / math.sqrt(len(samples))
    return bool(np.all(np.abs(samples.mean(axis=0) - target) <= sigmas * error + 1e-12))


@pytest.mark.parametrize("name,param", SPECS)
def test_decode_of_encode_is_unbiased(name, param, vector):
    rows = decodes(make_compressor(name, param), vector, 3000)
    assert within_sampling_error(rows, vector)
    if name != "identity":  # a compressor that returns v every time would pass trivially
        assert np.ptp(rows, axis=0).max() > 0


def test_randk_variance_matches_omega(vector):
    compressor = make_compressor("randk", 3)
    assert compressor.omega(DIM) == DIM / 3 - 1
    errors = np.sum((decodes(compressor, vector, 4000) - vector) ** 2, axis=1)
    # E||C(v) - v||^2 = (d/K - 1) ||v||^2 exactly for RandK.
    assert within_sampling_error(errors, compressor.omega(DIM) * vector @ vector)


def test_quantize_variance_is_exact_and_within_omega(vector):
    s = 2
    compressor = make_compressor("quantize", s)
    errors = np.sum((decodes(compressor, vector, 4000) - vector) ** 2, axis=1)
    norm = np.linalg.norm(vector)
    fraction = np.abs(vector) * s / norm % 1.0
    exact = np.sum((norm / s) ** 2 * fraction * (1 - fraction))  # variance of the random rounding
    assert within_sampling_error(errors, exact)
    assert errors.mean() <= compressor.omega(DIM) * norm**2


@pytest.mark.parametrize("dim,s,expected", [(100, 2, 5.0), (16, 8, 0.25)])
def test_quantize_omega_takes_the_smaller_bound(dim, s, expected):
    assert make_compressor("quantize", s).omega(dim) == pytest.approx(expected)


def test_randk_message_is_seed_plus_values():
    dim, K = 10**5, 10
    compressor = make_compressor("randk", K)
    payload = compressor.encode(np.ones(dim), 1, np.random.default_rng(0))
    assert payload.dtype == np.float64
    assert payload.size == compressor.payload_floats(dim) == 1 + K
    assert 8 * compressor.payload_floats(dim) < 200
    assert compressor.payload_floats(dim, copies=4) == 1 + 4 * K


@pytest.mark.parametrize("dim,K,copies", [(10**5, 10, 500), (30, 20, 50), (7, 7, 20), (50, 1, 1000)])
def test_randk_indices_are_distinct_in_range_and_seeded(dim, K, copies):
    indices = randk_indices(123, dim, K, copies)
    assert indices.shape == (copies, K)
    assert indices.min() >= 0 and indices.max() < dim
    assert np.all(np.diff(np.sort(indices, axis=1), axis=1) > 0)
    assert np.array_equal(indices, randk_indices(123, dim, K, copies))
    if K < dim:
        assert not np.array_equal(indices, randk_indices(124, dim, K, copies))


@pytest.mark.parametrize("K", [3, 4])  # K(K-1) <= dim and > dim: both samplers
def test_randk_indices_cover_coordinates_uniformly(K):
    dim, copies = 10, 20000
    counts = np.bincount(randk_indices(7, dim, K, copies).ravel(), minlength=dim)
    p = K / dim  # each coordinate is in a row with probability K/d
    assert np.all(np.abs(counts - copies * p) <= 5 * math.sqrt(copies * p * (1 - p)))


def test_server_regenerates_the_worker_indices(vector):
    dim, K = 1000, 10
    big = np.random.default_rng(3).standard_normal(dim)
    compressor = make_compressor("randk", K)
    payload = compressor.encode(big, 1, np.random.default_rng(4))
    seed = payload[0]
    assert seed == int(seed) and 0 <= seed < 2**53
    indices = randk_indices(int(seed), dim, K, 1)[0]
    assert np.array_equal(payload[1:], big[indices])
    accumulator = np.zeros(dim)
    compressor.decode_add(accumulator, payload, 1, scale=2.0)
    expected = np.zeros(dim)
    expected[indices] = 2.0 * dim / K * big[indices]
    assert np.array_equal(accumulator, expected)


def test_randk_copies_decode_to_the_sum_of_overlapping_compressions():
    dim, K, copies = 8, 2, 5  # few coordinates: the copies overlap
    v = np.arange(1.0, dim + 1)
    compressor = make_compressor("randk", K)
    payload = compressor.encode(v, copies, np.random.default_rng(5))
    indices = randk_indices(int(payload[0]), dim, K, copies)
    assert len(np.unique(indices)) < copies * K
    expected = np.zeros(dim)
    for row in indices:
        expected[row] += dim / K * v[row]
    accumulator = np.ones(dim)
    compressor.decode_add(accumulator, payload, copies, scale=0.5)
    np.testing.assert_allclose(accumulator, 1.0 + 0.5 * expected)


def test_quantize_copies_are_independent_compressions_summed(vector):
    compressor = make_compressor("quantize", 2)
    copies, per_copy = 5, compressor.payload_floats(DIM, 1)
    payload = compressor.encode(vector, copies, np.random.default_rng(6))
    assert payload.size == compressor.payload_floats(DIM, copies) == copies * per_copy
    singles = np.zeros((copies, DIM))
    for row, part in zip(singles, np.split(payload, copies)):
        compressor.decode_add(row, part, 1)
    assert len({row.tobytes() for row in singles}) > 1  # fresh rounding per copy
    together = np.zeros(DIM)
    compressor.decode_add(together, payload, copies)
    np.testing.assert_allclose(together, singles.sum(axis=0))


@pytest.mark.parametrize("name,param", SPECS)
def test_copies_are_unbiased_for_copies_times_v(name, param, vector):
    rows = decodes(make_compressor(name, param), vector, 1500, copies=5)
    assert within_sampling_error(rows, 5 * vector)


def test_identity_sends_the_vector_once(vector):
    compressor = make_compressor("identity", 4)  # a stray parameter is ignored
    assert (compressor.param, compressor.omega(DIM)) == (0, 0.0)
    payload = compressor.encode(vector, 7, np.random.default_rng(0))
    assert payload.size == compressor.payload_floats(DIM, 7) == DIM
    accumulator = np.zeros(DIM)
    compressor.decode_add(accumulator, payload, 7, scale=0.5)
    np.testing.assert_allclose(accumulator, 3.5 * vector)


@pytest.mark.parametrize("s", [1, 4, 127])
def test_quantize_extremes_fit_int8(s):
    one_hot = np.zeros(20)
    one_hot[3] = -2.5  # |v_i| = ||v||: level exactly s
    compressor = make_compressor("quantize", s)
    accumulator = np.zeros(20)
    compressor.decode_add(accumulator, compressor.encode(one_hot, 1, np.random.default_rng(0)), 1)
    np.testing.assert_allclose(accumulator, one_hot)


def test_quantize_zero_vector_encodes_to_zero():
    compressor = make_compressor("quantize", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        payload = compressor.encode(np.zeros(13), 2, np.random.default_rng(0))
        accumulator = np.ones(13)
        compressor.decode_add(accumulator, payload, 2)
    assert payload.size == 2 * (1 + 2) and not payload.any()
    assert np.array_equal(accumulator, np.ones(13))


@pytest.mark.parametrize("name,param,scale,budget", [
    ("randk", 10, 1.0, 8 * 10**4),  # a K = 10 message must cost O(K), not O(d)
    ("quantize", 4, 0.5, 8 * 10**6 // 4),  # dense decodes: bounded chunks, not one d-sized temporary
    ("identity", 0, 0.5, 8 * 10**6 // 4),
])
def test_decode_add_does_not_allocate_a_vector(name, param, scale, budget):
    dim = 10**6
    compressor = make_compressor(name, param)
    payload = compressor.encode(np.random.default_rng(0).standard_normal(dim), 1, np.random.default_rng(1))
    accumulator = np.zeros(dim)
    tracemalloc.start()
    try:
        compressor.decode_add(accumulator, payload, 1, scale=scale)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < budget
    assert np.count_nonzero(accumulator) > 0


def test_decode_rejects_a_payload_of_the_wrong_size(vector):
    compressor = make_compressor("randk", 3)
    payload = compressor.encode(vector, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected"):
        compressor.decode_add(np.zeros(DIM), payload, 3)


@pytest.mark.parametrize("name,param,key", [
    ("topk", 0, "method.compressor"),
    ("randk", 0, "method.K"),
    ("randk", -3, "method.K"),
    ("randk", 2.5, "method.K"),
    ("randk", True, "method.K"),
    ("quantize", 0, "method.levels"),
    ("quantize", 128, "method.levels"),
    ("quantize", "4", "method.levels"),
])
def test_bad_names_and_parameters_name_the_key(name, param, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_compressor(name, param)


def test_randk_larger_than_the_dimension_is_a_config_error():
    compressor = make_compressor("randk", 20)
    for call in (lambda: compressor.omega(10), lambda: compressor.payload_floats(10),
                 lambda: compressor.encode(np.ones(10), 1, np.random.default_rng(0))):
        with pytest.raises(ConfigError, match=r"method\.K"):
            call()


@pytest.mark.parametrize("name,param", [("identity", 0), ("randk", 7), ("quantize", 5)])
def test_compressor_from_code_round_trips(name, param):
    compressor = make_compressor(name, param)
    assert COMPRESSOR_CODES[compressor.code] == name and COMPRESSORS[name] is type(compressor)
    for code, value in ((compressor.code, compressor.param), (float(compressor.code), float(compressor.param))):
        again = compressor_from_code(code, value)  # the wire carries floats
        assert again == compressor
        assert (again.name, again.code, again.param) == (name, compressor.code, param)


def test_unknown_compressor_code_is_rejected():
    with pytest.raises(ConfigError, match=r"method\.compressor"):
        compressor_from_code(9, 0)
