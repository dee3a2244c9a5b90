"""Heterogeneous data: which samples each worker may draw from (Malenia and Amelie SGD, seed 001).

A split gives worker i a shard D_i of the finite-sum's sample indices; None means all
samples (iid). Every split is a pure function of its arguments and seed, so each MPI rank
computes the same shards without communicating.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

SPLITS = ("iid", "partition", "by_label", "dirichlet")
LABEL_SPLITS = ("by_label", "dirichlet")
LABELLED_PROBLEMS = "logistic, nonconvex_logistic"


def shard_indices(
    n_samples: int | None,
    n_workers: int,
    split: str,
    labels: np.ndarray | None = None,
    alpha: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray | None]:
    """For each worker, the sorted int64 array of sample indices it may draw from (None = all).

    - iid: every worker samples from all data.
    - partition: a seeded permutation cut into n_workers contiguous shards (sizes differ by <= 1).
    - by_label: samples sorted by label (ties in seeded random order), cut like partition, so
      each worker sees one or a few labels.
    - dirichlet: per class, proportions ~ Dirichlet(alpha * ones(n_workers)) share out that
      class's (shuffled) samples; small alpha means strong label skew. A worker left empty
      takes one sample from the largest shard, so every shard is non-empty.
    Non-iid splits partition the samples: the shards are disjoint and cover every index once.
    """
    if split not in SPLITS:
        raise ConfigError(f"workers.data_split: {split!r} is not accepted; accepted: {', '.join(SPLITS)}")
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise ConfigError(f"workers.n: must be an integer >= 1, got {n_workers!r}")
    if split == "iid":
        return [None] * n_workers
    if n_samples is None:
        raise ConfigError(
            f"workers.data_split = {split} splits the samples of a finite sum, but this problem is "
            "stochastic (no samples); use workers.data_split = iid or a finite-sum problem (problem.samples > 0)"
        )
    if n_workers > n_samples:
        raise ConfigError(
            f"workers.data_split = {split} gives each worker its own samples, but workers.n = {n_workers} "
            f"exceeds the {n_samples} samples; use fewer workers or more samples"
        )
    if split in LABEL_SPLITS:
        if labels is None:
            raise ConfigError(
                f"workers.data_split = {split} needs a problem with class labels ({LABELLED_PROBLEMS})"
            )
        labels = np.asarray(labels)
        if labels.shape != (n_samples,):
            raise ValueError(f"labels of shape {labels.shape} for {n_samples} samples")
    if split == "dirichlet":
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (math.isfinite(alpha) and alpha > 0):
            raise ConfigError(f"workers.dirichlet_alpha: must be a finite number > 0, got {alpha!r}")
    rng = np.random.default_rng(seed)

    if split == "partition":
        shards = np.array_split(rng.permutation(n_samples), n_workers)
    elif split == "by_label":
        shuffled = rng.permutation(n_samples)
        # A stable sort of shuffled indices: grouped by label, random order within a label.
        by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
        shards = np.array_split(by_label, n_workers)
    else:
        shards = _dirichlet_shards(labels, n_workers, alpha, rng)
    return [np.sort(shard).astype(np.int64) for shard in shards]


def _dirichlet_shards(labels: np.ndarray, n_workers: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-class Dirichlet(alpha) shares of the samples, then every empty shard given one sample."""
    parts: list[list[np.ndarray]] = [[] for _ in range(n_workers)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        proportions = rng.dirichlet(np.full(n_workers, float(alpha)))
        # Rounding the cumulative sum (not each share) keeps the cuts ordered and ending at len(members).
        cuts = np.round(np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
        for worker, piece in enumerate(np.split(members, cuts)):
            parts[worker].append(piece)
    shards = [np.concatenate(pieces) for pieces in parts]

    # n_workers <= n_samples, so the largest shard has >= 2 samples while any shard is empty.
    for worker in range(n_workers):
        if shards[worker].size == 0:
            largest = int(np.argmax([shard.size for shard in shards]))  # first of equal sizes
            shards[worker] = shards[largest][-1:]
            shards[largest] = shards[largest][:-1]
    return shards


def split_summary(
    shards: list[np.ndarray | None], labels: np.ndarray | None = None, n_samples: int | None = None
) -> dict[str, np.ndarray]:
    """Per-worker shard sizes and number of distinct labels, for the results file.

    A None shard (all samples) has size n_samples, or len(labels) when n_samples is not
    given; -1 marks what is unknown (size of a stochastic problem's stream, labels of an
    unlabelled problem).
    """
    if labels is not None:
        labels = np.asarray(labels)
        n_samples = labels.size if n_samples is None else n_samples
    all_size = -1 if n_samples is None else int(n_samples)
    sizes = np.array([all_size if shard is None else len(shard) for shard in shards], dtype=np.int64)
    if labels is None:
        distinct = np.full(len(shards), -1, dtype=np.int64)
    else:
        all_distinct = np.unique(labels).size
        distinct = np.array(
            [all_distinct if shard is None else np.unique(labels[shard]).size for shard in shards], dtype=np.int64
        )
    return {"sizes": sizes, "distinct_labels": distinct}
