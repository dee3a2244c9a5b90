"""Tyurin's worst-case quadratic (Tyurin & Richtarik 2023, Rennala SGD) and its finite-sum variant (Freya PAGE, 2024).

f(x) = 1/2 x^T A x - b^T x with A = (L/4) tridiag(-1, 2, -1), b = (L/4)(-1, 0, ..., 0),
x0 = (sqrt(d), 0, ..., 0). A gradient step can only make one more coordinate nonzero,
which is what makes the problem hard for first-order methods.

Stochastic version (samples = 0), noise_type:
  add        g + noise * N(0, I).
  zero_last  coordinates after prog(x), the last nonzero coordinate of x, are multiplied by
             xi/p with xi ~ Bernoulli(p), p = noise. One xi is shared by those coordinates
             of one stochastic gradient, as in Tyurin's construction.
noise = 0 gives exact gradients.

Finite-sum version (samples = m > 0): f = (1/m) sum_j f_j with A_j, b_j perturbed by
(1 + lam * N(0, 1)) factors and all main diagonals shifted by one constant so that the
mean matrix has smallest eigenvalue exactly mu; single A_j may be indefinite.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from . import tridiagonal
from .base import Problem, SampledTerms
from .noise import GradientNoise, ZeroLastNoise, prefix_lengths

NOISE_TYPES = ("add", "zero_last")


def tridiag_matvec(main: np.ndarray, off: np.ndarray, x: np.ndarray) -> np.ndarray:
    """T x for the symmetric tridiagonal T with diagonal `main` and off-diagonal `off`."""
    y = main * x
    y[:-1] += off * x[1:]
    y[1:] += off * x[:-1]
    return y


def gershgorin_bound(main: np.ndarray, off: np.ndarray) -> np.ndarray:
    """max_i |T_ii| + sum_{k != i} |T_ik| for tridiagonals stored along the last axis (a bound on |eigenvalues|)."""
    radius = np.abs(main).copy()
    radius[..., :-1] += np.abs(off)
    radius[..., 1:] += np.abs(off)
    return radius.max(axis=-1)


class QuadraticProblem(Problem):
    """Tyurin's tridiagonal quadratic; stochastic (add / zero_last noise) or a perturbed finite sum."""

    name: ClassVar[str] = "quadratic"
    params: ClassVar[dict[str, Any]] = {"L": 1.0, "lam": 0.5, "mu": 1e-6}
    description: ClassVar[str] = "Tyurin's worst-case tridiagonal quadratic (stochastic or nonconvex finite sum)"

    def __init__(
        self,
        dim: int,
        L: float = 1.0,
        noise: float = 0.0,
        noise_type: str = "add",
        samples: int = 0,
        lam: float = 0.5,
        mu: float = 1e-6,
        seed: int = 0,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
            raise ConfigError(f"problem.dim must be an integer >= 2, got {dim!r}")
        if noise_type not in NOISE_TYPES:
            raise ConfigError(f"problem.noise_type: {noise_type!r} is not accepted; accepted: {', '.join(NOISE_TYPES)}")
        if not (math.isfinite(L) and L > 0):
            raise ConfigError(f"problem.L must be > 0, got {L}")
        if not (math.isfinite(noise) and noise >= 0):
            raise ConfigError(f"problem.noise must be >= 0, got {noise}")
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
            raise ConfigError(f"problem.samples must be an integer >= 0, got {samples!r}")
        if samples == 0 and noise_type == "zero_last" and noise > 1:
            raise ConfigError(f"problem.noise is zero_last's probability p and must be in (0, 1], got {noise}")

        self.dim = int(dim)
        self.L = float(L)
        self.noise = float(noise)
        self.noise_type = noise_type
        self._main = np.full(self.dim, self.L / 2)
        self._off = np.full(self.dim - 1, -self.L / 4)
        self._b = np.zeros(self.dim)
        self._b[0] = -self.L / 4
        self._stencil = np.array([-self.L / 4, self.L / 2, -self.L / 4])
        self.n_samples = None
        if samples > 0:
            if not (math.isfinite(lam) and lam >= 0):
                raise ConfigError(f"problem.lam must be >= 0, got {lam}")
            if not (math.isfinite(mu) and mu > 0):
                raise ConfigError(f"problem.mu must be > 0 for a finite sum, got {mu}")
            self._build_finite_sum(int(samples), float(lam), float(mu), seed)

    def _build_finite_sum(self, m: int, lam: float, mu: float, seed: int) -> None:
        """Per-sample diagonals (m, d) / (m, d-1) and b scales (m,), shifted so the mean has lambda_min = mu."""
        rng = np.random.default_rng(seed)
        # main = base * (1 + lam * Z), computed in place (the same operations, no m x d temporaries).
        main = rng.standard_normal((m, self.dim))
        main *= lam
        main += 1
        main *= self._main
        off = rng.standard_normal((m, self.dim - 1))
        off *= lam
        off += 1
        off *= self._off
        # b has one nonzero coordinate, so b_j = b * (1 + lam * nu_j) is stored as one scale per sample.
        self._b_scale = 1 + lam * rng.standard_normal(m)
        mean_main, mean_off = main.mean(axis=0), off.mean(axis=0)
        import scipy.linalg  # here: a finite sum needs it, the stochastic quadratic does not (tridiagonal.py)

        lowest = scipy.linalg.eigvalsh_tridiagonal(mean_main, mean_off, select="i", select_range=(0, 0))[0]
        shift = mu - lowest
        main += shift
        self._sample_main = main
        self._sample_off = off
        # The full problem is the mean of the f_j: replace the base matrix by the mean one.
        self._main = mean_main + shift
        self._off = mean_off
        self._b = self._b * self._b_scale.mean()
        self.n_samples = m

    @classmethod
    def memory_estimate(cls, config: Any) -> tuple[int, int]:
        """A few vectors of dim; a finite sum keeps per-sample diagonals (samples x dim, built with temporaries)."""
        dim, samples = max(int(config.dim), 0), max(int(config.samples), 0)
        return 8 * dim * (4 + 4 * samples), dim

    @classmethod
    def from_config(cls, config: Any) -> "QuadraticProblem":
        p = config.params
        return cls(
            dim=config.dim,
            L=p["L"],
            noise=config.noise,
            noise_type=config.noise_type,
            samples=config.samples,
            lam=p["lam"],
            mu=p["mu"],
            seed=config.seed,
        )

    def x0(self) -> np.ndarray:
        x = np.zeros(self.dim)
        x[0] = math.sqrt(self.dim)
        return x

    def loss(self, x: np.ndarray) -> float:
        return float(0.5 * x @ tridiag_matvec(self._main, self._off, x) - self._b @ x)

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        if self.n_samples is None:
            if x.shape[-1] < 3:  # correlate's "same" output would have the stencil's length
                return self.full_grad_rows(x[None])[0]
            # A = (L/4) tridiag(-1, 2, -1) has constant, symmetric diagonals: one correlation is
            # A x (the simulator calls this for every event; one numpy call instead of five matters).
            g = np.correlate(x, self._stencil, mode="same")
        else:
            g = tridiag_matvec(self._main, self._off, x)
        g[0] -= self._b[0]  # b has one nonzero coordinate
        return g

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mean of A_j x - b_j over idx (repeats count): average the diagonals, then one matvec."""
        if self.n_samples is None:
            return super().grad(x, idx)
        idx = np.asarray(idx)
        if idx.size == 1:  # the mean of one row is the row (the same numbers, without np.mean's overhead)
            j = int(idx.reshape(-1)[0])
            main, off, b0 = self._sample_main[j], self._sample_off[j], self._b_scale[j] * (-self.L / 4)
        else:
            main = self._sample_main[idx].mean(axis=0)
            off = self._sample_off[idx].mean(axis=0)
            b0 = self._b_scale[idx].mean() * (-self.L / 4)
        g = tridiag_matvec(main, off, x)
        g[0] -= b0
        return g

    def loss_of(self, x: np.ndarray, idx: np.ndarray) -> float:
        """Mean of f_j = 1/2 x^T A_j x - b_j^T x over idx (a finite sum's shard)."""
        if self.n_samples is None:
            raise NotImplementedError("problem 'quadratic' without samples is not a finite sum")
        idx = np.asarray(idx)
        main, off = self._sample_main[idx].mean(axis=0), self._sample_off[idx].mean(axis=0)
        b0 = self._b_scale[idx].mean() * (-self.L / 4)
        return float(0.5 * x @ tridiag_matvec(main, off, x) - b0 * x[0])

    def additive_noise(self, batch: int) -> float | None:
        """The stochastic version's add noise: stochastic_grad = full_grad + (noise / sqrt(batch)) N(0, I)."""
        if self.n_samples is not None or (self.noise != 0 and self.noise_type != "add"):
            return None
        return self.noise / math.sqrt(batch) if self.noise else 0.0

    def noise_model(self, batch: int) -> GradientNoise | None:
        """zero_last's one Binomial(batch, p) draw per gradient, a finite sum's index draws (SampledTerms),
        or additive_noise's model."""
        if self.n_samples is None and self.noise != 0 and self.noise_type == "zero_last":
            return ZeroLastNoise(batch, self.noise)
        if self.n_samples is not None:
            if batch > self.dim or type(self).stochastic_grad is not QuadraticProblem.stochastic_grad:
                return None  # the indices must fit a row of dim floats; a subclass's own gradient is its own
            return SampledTerms(self.n_samples, batch)
        return super().noise_model(batch)

    def grad_rows(self, points: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """grad(points[k], indices[k]) for each row k of a finite sum, bit for bit, in one block.

        grad's elementwise operations on stacked rows: the terms' diagonals averaged per row (the
        same sequential sum over the batch as grad's mean over axis 0), then one tridiagonal matvec.
        """
        if self.n_samples is None or type(self).grad is not QuadraticProblem.grad:
            return super().grad_rows(points, indices)
        if indices.shape[1] == 1:
            rows = indices[:, 0]
            main, off = self._sample_main[rows], self._sample_off[rows]
            b0 = self._b_scale[rows] * (-self.L / 4)
        else:
            main = self._sample_main[indices].mean(axis=1)
            off = self._sample_off[indices].mean(axis=1)
            b0 = self._b_scale[indices].mean(axis=1) * (-self.L / 4)
        gradients = main * points
        gradients[:, :-1] += off * points[:, 1:]
        gradients[:, 1:] += off * points[:, :-1]
        gradients[:, 0] -= b0
        return gradients

    def full_grad_rows(self, points: np.ndarray) -> np.ndarray:
        """Rows A x - b in one pass over the block (the same operations, in the same order, as full_grad)."""
        if self.n_samples is not None:
            return super().full_grad_rows(points)
        left, centre, right = self._stencil
        rows, dim = points.shape
        # The rows with a zero on each side, laid end to end: one pass of the stencil over all of
        # them (few numpy calls for a block); the pads' outputs are dropped.
        padded = np.zeros((rows, dim + 2))
        padded[:, 1:-1] = points
        flat = padded.reshape(-1)
        out = np.empty(flat.size)
        products = out[:-2]
        np.multiply(flat[:-2], left, out=products)
        scratch = flat[1:-1] * centre
        products += scratch
        np.multiply(flat[2:], right, out=scratch)
        products += scratch
        g = out.reshape(rows, dim + 2)[:, :dim]
        g[:, 0] -= self._b[0]
        return g

    def stochastic_grad(
        self, x: np.ndarray, rng: np.random.Generator, batch: int = 1, shard: np.ndarray | None = None
    ) -> np.ndarray:
        if self.n_samples is not None:
            return self.finite_sum_grad(x, rng, batch, shard)
        g = self.full_grad(x)
        if self.noise == 0:
            return g
        if self.noise_type == "add":
            # The mean of `batch` draws of g + noise * N(0, I) has this same distribution.
            g += rng.normal(0.0, self.noise / math.sqrt(batch), self.dim)
            return g
        p = self.noise
        # Mean of `batch` shared Bernoulli(p)/p factors: one Binomial(batch, p)/(batch p) draw
        # scaling the coordinates after prog(x) (ZeroLastNoise does the same for blocks of points).
        g[int(prefix_lengths(x[None])[0]) :] *= rng.binomial(batch, p) / (batch * p)
        return g

    def minimizer(self) -> np.ndarray:
        """argmin f: the solution of the (mean) tridiagonal system A x = b."""
        bands = np.zeros((3, self.dim))
        bands[0, 1:] = self._off
        bands[1] = self._main
        bands[2, :-1] = self._off
        return tridiagonal.solve(bands, self._b)  # scipy.linalg.solve_banded's numbers

    def compute_f_star(self) -> float:
        # At A x* = b, f(x*) = -1/2 b^T x*; b has one nonzero coordinate.
        return float(-0.5 * self._b[0] * self.minimizer()[0])

    def smoothness(self) -> float:
        """Gershgorin bound on |eigenvalues|: of A (= L) when stochastic, max over j of A_j for a finite sum.

        For the finite sum this is the largest smoothness constant of the individual f_j,
        the L that PAGE-type analyses use.
        """
        if self.n_samples is None:
            return float(gershgorin_bound(self._main, self._off))
        return float(gershgorin_bound(self._sample_main, self._sample_off).max())
