"""Noise models: a stochastic gradient stated as the full gradient changed by a few draws, for the simulator's blocks.

A problem whose stochastic_grad(x, rng, batch, shard) is full_grad(x) changed by draws from
rng in a fixed way says so with Problem.noise_model(batch). The simulator then makes the
draws when a job completes (in blocks per worker: one `draw` call for the draws of k
consecutive gradients gives the numbers of k stochastic_grad calls) and computes the
gradients of many points in one block (full_grad_rows, then `apply`), with the same numbers
as stochastic_grad.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GradientNoise:
    """Exact gradients: stochastic_grad is full_grad, with no draw (the base of every noise model)."""

    width = 0  # floats drawn per gradient (0: none)

    def draw(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """out[k] (a (k, width) array) = the draws of the k-th of len(out) consecutive gradients, in order."""

    def apply(self, gradients: np.ndarray, points: np.ndarray, draws: np.ndarray) -> None:
        """In place: rows of full gradients at the rows of `points` become the stochastic gradients of `draws`."""

    def gradient(self, problem: Any, x: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """The stochastic gradient at x with one gradient's `draws` (a row of width floats); a new array."""
        gradient = problem.full_grad(x)
        self.apply(gradient[None], x[None], draws[None])
        return gradient

    def gradients(self, problem: Any, points: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """Rows: the stochastic gradients at the rows of `points` with the rows of `draws`; a new array.

        A model whose draws pick the terms of a finite sum (problems.base.SampledTerms) overrides
        both, so no full gradient is computed."""
        gradients = problem.full_grad_rows(points)
        self.apply(gradients, points, draws)
        return gradients


EXACT = GradientNoise()


class AdditiveNoise(GradientNoise):
    """stochastic_grad = full_grad + scale * N(0, I): `width` (= dim) standard normal draws per gradient."""

    def __init__(self, scale: float, dim: int):
        self.scale = scale
        self.width = dim

    def draw(self, rng: np.random.Generator, out: np.ndarray) -> None:
        rng.standard_normal(out=out)

    def apply(self, gradients: np.ndarray, points: np.ndarray, draws: np.ndarray) -> None:
        gradients += draws * self.scale


class ZeroLastNoise(GradientNoise):
    """The coordinates after prog(x), the last nonzero coordinate of the point, times Binomial(batch, p)/(batch p).

    One draw per gradient (rng.binomial(batch, p)): the mean of `batch` shared Bernoulli(p)/p
    factors (Tyurin's construction, problems/quadratic.py).
    """

    width = 1

    def __init__(self, batch: int, p: float):
        self.batch, self.p = batch, p
        self.denominator = batch * p

    def draw(self, rng: np.random.Generator, out: np.ndarray) -> None:
        # size=k gives the numbers (and leaves the stream where) k scalar calls would.
        np.divide(rng.binomial(self.batch, self.p, size=len(out)), self.denominator, out=out[:, 0])

    def apply(self, gradients: np.ndarray, points: np.ndarray, draws: np.ndarray) -> None:
        dim = points.shape[1]
        kept = prefix_lengths(points)  # coordinates up to prog(x) keep their value
        first = int(kept.min())
        if first == dim:
            return
        # Columns from the shortest prefix on: a factor of 1.0 inside each row's prefix is exact.
        factors = np.where(np.arange(first, dim) < kept[:, None], 1.0, draws)
        gradients[:, first:] *= factors


def prefix_lengths(points: np.ndarray) -> np.ndarray:
    """prog(x) + 1 for each row x of `points`: the index after its last nonzero coordinate (0 for a zero row)."""
    nonzero = points[:, ::-1] != 0
    return np.where(nonzero.any(axis=1), points.shape[1] - nonzero.argmax(axis=1), 0)
