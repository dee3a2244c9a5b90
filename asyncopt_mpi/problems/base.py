"""The objective interface every problem implements (numpy/scipy only, sparse data stays sparse)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from .noise import EXACT, AdditiveNoise, GradientNoise


class Problem(ABC):
    """An objective f on R^dim, either stochastic (n_samples None) or a finite sum of n_samples terms.

    Subclasses declare `params`: their own config keys (beyond the common ones of
    ProblemConfig) with defaults, so that config validation can reject unknown keys.

    `dim` (the instance attribute) is the size of x for the run: its vectors, messages and
    results file all follow it. The config key problem.dim is only what `from_config` receives
    as `config.dim`: a problem whose size comes from its data (examples/least_squares.py) may
    ignore it, and then problem.dim serves only the checks made before the problem is built
    (the memory budget through memory_estimate, the disk room for the results file), so such a
    problem overrides memory_estimate.
    """

    name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    description: ClassVar[str] = ""

    dim: int
    n_samples: int | None = None

    @classmethod
    @abstractmethod
    def from_config(cls, config: Any) -> "Problem":
        """Build from a ProblemConfig (common keys as attributes, own keys in config.params)."""

    @classmethod
    def memory_estimate(cls, config: Any) -> tuple[int, int]:
        """(bytes of the problem's own data, length of the model vector) the config implies, before building.

        Config validation checks them against problem.max_memory (see asyncopt_mpi.memory), so
        a problem whose size follows from the config overrides this; problems whose size comes
        from a data file return (0, 1) and leave the check to the loader.
        """
        return 0, int(config.dim)

    @abstractmethod
    def x0(self) -> np.ndarray:
        """Starting point (a fresh float64 array)."""

    @abstractmethod
    def loss(self, x: np.ndarray) -> float:
        """f(x)."""

    @abstractmethod
    def full_grad(self, x: np.ndarray) -> np.ndarray:
        """Exact gradient of f at x."""

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mean gradient of the finite-sum terms with sample indices idx."""
        raise NotImplementedError(f"problem {self.name!r} is not a finite sum")

    @abstractmethod
    def stochastic_grad(
        self, x: np.ndarray, rng: np.random.Generator, batch: int = 1, shard: np.ndarray | None = None
    ) -> np.ndarray:
        """Mean of `batch` independent stochastic gradients at x, drawn with `rng` (the worker's own
        seeded stream, from workers.seed, the worker's number and the run segment).

        `shard` is the calling worker's part of the data under workers.data_split: a sorted int64
        array of the sample indices (rows of a finite sum, 0 .. n_samples - 1) that worker may
        draw from, the same on every rank (build_shards). It is None under the iid split and for
        a stochastic problem (n_samples None), meaning every sample. A finite sum draws its
        `batch` samples uniformly with replacement from `shard` (finite_sum_grad does exactly
        that); a purely stochastic problem ignores it.
        """

    def additive_noise(self, batch: int) -> float | None:
        """s when stochastic_grad(x, rng, batch, shard) is full_grad(x) + s * rng.standard_normal(dim)
        with exactly those draws (s = 0: no draw at all), else None (the simplest noise_model)."""
        return None

    def noise_model(self, batch: int) -> GradientNoise | None:
        """How stochastic_grad(x, rng, batch, shard) follows from full_grad(x) and draws from rng
        (problems.noise), or None: then the simulator calls stochastic_grad for every gradient.

        With a model, the simulator makes the draws when a job completes and computes the
        gradients of many points in one block. The default follows additive_noise; a problem
        with another noise (or a subclass that changes stochastic_grad) overrides this.
        """
        scale = self.additive_noise(batch)
        if scale is None:
            return None
        return AdditiveNoise(scale, self.dim) if scale else EXACT

    def full_grad_rows(self, points: np.ndarray) -> np.ndarray:
        """full_grad of each row of `points` (a new array); override to compute them in one block."""
        return np.array([self.full_grad(x) for x in points]).reshape(points.shape)

    def grad_rows(self, points: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """grad(points[k], indices[k]) for each row k (a new array); override to compute them in one block."""
        return np.array([self.grad(x, idx) for x, idx in zip(points, indices)]).reshape(points.shape)

    def sample_indices(self, rng: np.random.Generator, batch: int, shard: np.ndarray | None = None) -> np.ndarray:
        """`batch` sample indices drawn uniformly with replacement from `shard` (None: all samples)."""
        if shard is None:
            return rng.integers(self.n_samples, size=batch)
        return np.asarray(shard)[rng.integers(len(shard), size=batch)]

    def finite_sum_grad(
        self, x: np.ndarray, rng: np.random.Generator, batch: int = 1, shard: np.ndarray | None = None
    ) -> np.ndarray:
        """stochastic_grad of a finite sum: the mean gradient of `batch` sampled terms."""
        return self.grad(x, self.sample_indices(rng, batch, shard))

    def metrics(self, x: np.ndarray) -> dict[str, float]:
        """loss, grad_norm_sq and accuracy (nan where it does not apply) at x."""
        g = self.full_grad(x)
        return {"loss": float(self.loss(x)), "grad_norm_sq": float(g @ g), "accuracy": math.nan}

    def compute_f_star(self) -> float:
        """min f, computed with scipy (nan when unknown)."""
        return math.nan

    def smoothness(self) -> float:
        """An upper bound on the smoothness constant L (nan when unknown)."""
        return math.nan

    def labels(self) -> np.ndarray | None:
        """Per-sample class labels for label-based data splits (None when not a classification problem)."""
        return None


class SampledTerms(GradientNoise):
    """finite_sum_grad's draws as a noise model: `batch` sample indices per gradient, drawn from every sample.

    The simulator keeps them as floats in its rows (exact below 2^53) and computes grad(x, indices),
    one point at a time or a block at once (Problem.grad_rows), with the numbers finite_sum_grad
    gives; no full gradient is computed. It does not apply to workers restricted to a shard.
    """

    def __init__(self, n_samples: int, batch: int):
        self.n_samples = n_samples
        self.width = batch

    def draw(self, rng: np.random.Generator, out: np.ndarray) -> None:
        # size=(k, batch) gives the numbers (and leaves the stream where) k calls of size=batch would.
        out[...] = rng.integers(self.n_samples, size=out.shape)

    def gradient(self, problem: Problem, x: np.ndarray, draws: np.ndarray) -> np.ndarray:
        return problem.grad(x, draws.astype(np.int64))

    def gradients(self, problem: Problem, points: np.ndarray, draws: np.ndarray) -> np.ndarray:
        return problem.grad_rows(points, draws.astype(np.int64))
