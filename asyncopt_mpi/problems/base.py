"""The objective interface every problem implements (numpy/scipy only, sparse data stays sparse)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


class Problem(ABC):
    """An objective f on R^dim, either stochastic (n_samples None) or a finite sum of n_samples terms.

    Subclasses declare `params`: their own config keys (beyond the common ones of
    ProblemConfig) with defaults, so that config validation can reject unknown keys.
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
        """Mean of `batch` independent stochastic gradients at x.

        For a finite sum the samples are drawn uniformly with replacement from `shard`
        (an array of sample indices; None means all samples).
        """

    def additive_noise(self, batch: int) -> float | None:
        """s when stochastic_grad(x, rng, batch, shard) is full_grad(x) + s * rng.standard_normal(dim)
        with exactly those draws (s = 0: no draw at all), else None. The simulator then draws the
        noise when a job completes and computes gradients of many points in one block."""
        return None

    def full_grad_rows(self, points: np.ndarray) -> np.ndarray:
        """full_grad of each row of `points` (a new array); override to compute them in one block."""
        return np.array([self.full_grad(x) for x in points]).reshape(points.shape)

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
