"""Tests for heterogeneous data splits: coverage, balance, label skew, determinism, errors, summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.problems.splits import shard_indices, split_summary

N_CLASSES = 10
PER_CLASS = 20
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(N_CLASSES), PER_CLASS))
N = LABELS.size


def distinct_labels(shards) -> list[int]:
    return [np.unique(LABELS[shard]).size for shard in shards]


@pytest.mark.parametrize("split", ["partition", "by_label", "dirichlet"])
@pytest.mark.parametrize("n_workers", [1, 7, 30])
def test_shards_are_disjoint_and_cover_all_samples(split, n_workers):
    shards = shard_indices(N, n_workers, split, labels=LABELS, seed=1)
    assert len(shards) == n_workers
    assert all(shard.size >= 1 and shard.dtype == np.int64 for shard in shards)
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(N))


@pytest.mark.parametrize("split", ["partition", "by_label"])
def test_partition_and_by_label_sizes_differ_by_at_most_one(split):
    sizes = [shard.size for shard in shard_indices(N + 3, 7, split, labels=np.append(LABELS, [0, 1, 2]), seed=2)]
    assert max(sizes) - min(sizes) <= 1


def test_iid_gives_every_worker_all_samples():
    assert shard_indices(N, 4, "iid") == [None] * 4
    assert shard_indices(None, 3, "iid") == [None] * 3  # a stochastic problem


@pytest.mark.parametrize("n_workers", [3, 4, 5, 10, 20])
def test_by_label_gives_each_worker_few_labels(n_workers):
    shards = shard_indices(N, n_workers, "by_label", labels=LABELS, seed=3)
    assert max(distinct_labels(shards)) <= math.ceil(N_CLASSES / n_workers) + 1


def test_by_label_breaks_ties_by_seed():
    shards = shard_indices(N, 20, "by_label", labels=LABELS, seed=4)
    other = shard_indices(N, 20, "by_label", labels=LABELS, seed=5)
    # Same labels per worker, different samples: only the order within a label depends on the seed.
    assert [set(LABELS[s]) for s in shards] == [set(LABELS[s]) for s in other]
    assert any(not np.array_equal(a, b) for a, b in zip(shards, other))


def test_dirichlet_small_alpha_skews_labels_more():
    def mean_distinct(alpha: float) -> float:
        return np.mean([np.mean(distinct_labels(shard_indices(N, 10, "dirichlet", LABELS, alpha, seed)))
                        for seed in range(5)])

    skewed, balanced = mean_distinct(0.05), mean_distinct(100.0)
    assert skewed < 5 and balanced > 9  # observed about 2.6 and 10 (all labels)


def test_dirichlet_repairs_empty_shards():
    # With 40 workers and alpha tiny, most workers get nothing from the Dirichlet draw itself.
    shards = shard_indices(N, 40, "dirichlet", labels=LABELS, alpha=0.01, seed=6)
    assert min(shard.size for shard in shards) >= 1
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(N))


@pytest.mark.parametrize("split", ["partition", "by_label", "dirichlet"])
def test_deterministic_for_a_seed(split):
    first = shard_indices(N, 6, split, labels=LABELS, seed=7)
    again = shard_indices(N, 6, split, labels=LABELS.copy(), seed=7)
    other = shard_indices(N, 6, split, labels=LABELS, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((N, 3, "x"), {}, "workers.data_split: 'x' is not accepted; accepted: iid, partition, by_label, dirichlet"),
        (
            (N, 3, "by_label"), {},
            r"workers.data_split = by_label needs a problem with class labels \(logistic, nonconvex_logistic\)",
        ),
        ((N, 3, "dirichlet"), {}, r"workers.data_split = dirichlet needs a problem with class labels"),
        ((None, 3, "partition"), {}, "workers.data_split = partition .* stochastic"),
        ((None, 3, "by_label"), {"labels": LABELS}, "workers.data_split = by_label .* stochastic"),
        ((5, 6, "partition"), {}, "workers.n = 6 exceeds the 5 samples"),
        ((5, 6, "by_label"), {"labels": np.zeros(5)}, "workers.n = 6 exceeds the 5 samples"),
        ((N, 3, "dirichlet"), {"labels": LABELS, "alpha": 0.0}, "workers.dirichlet_alpha"),
        ((N, 3, "dirichlet"), {"labels": LABELS, "alpha": -1.0}, "workers.dirichlet_alpha"),
        ((N, 0, "partition"), {}, "workers.n"),
    ],
)
def test_errors_name_the_key(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        shard_indices(*args, **kwargs)


def test_split_summary():
    labels = np.array([0, 0, 1, 1, 2, 2])
    summary = split_summary([np.array([0, 1]), np.array([2, 3, 4])], labels)
    np.testing.assert_array_equal(summary["sizes"], [2, 3])
    np.testing.assert_array_equal(summary["distinct_labels"], [1, 2])
    iid = split_summary([None, None], labels)
    np.testing.assert_array_equal(iid["sizes"], [6, 6])
    np.testing.assert_array_equal(iid["distinct_labels"], [3, 3])
    unlabelled = split_summary([np.array([0, 1, 2]), None], n_samples=10)
    np.testing.assert_array_equal(unlabelled["sizes"], [3, 10])
    np.testing.assert_array_equal(unlabelled["distinct_labels"], [-1, -1])
