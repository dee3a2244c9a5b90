"""A two-layer polynomial neural network (quadratic activation, smooth hinge loss) over a nuclear-norm ball (seed 003).

Livni et al. (2014); the PNN experiment of the SFW-asyn paper. With samples (a_i, y_i),
a_i in R^D and y_i in {-1, +1}, the network output is a_i^T W a_i for a D x D matrix W:
a hidden layer of quadratic units sum_j (w_j^T a)^2 convexifies to W = sum_j w_j w_j^T,
relaxed to the ball ||W||_* <= theta. The objective is

    f(W) = (1/m) sum_i l(y_i a_i^T W a_i),
    l(z) = 0 (z >= 1),  1/2 - z (z <= 0),  (1 - z)^2 / 2 otherwise,

convex in W (the score is linear in W, l is convex) and smooth (0 <= l'' <= 1).

Data: problem.data is a file read by load_dataset (MNIST IDX, .npz, .h5, LIBSVM; sparse
features are made dense). IDX unsigned bytes come scaled to [0, 1] by the loader; any other
data is used exactly as stored (scale it to [0, 1] yourself to match the paper's set-up).
problem.samples > 0 keeps the first rows. y = +1 for rows whose raw label equals
positive_label, -1 otherwise. problem.data "" or "synthetic" gives a seeded set of
`samples` (default 500) square images with problem.dim pixels: two classes of blurred blobs
at different places plus noise, values in [0, 1], labels 0 and 1.

The variable has D^2 entries, so the number of features is capped at MAX_FEATURES.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, DataError
from . import f_star_cache
from .data import FORMATS, load_dataset
from .matrix import MatrixProblem

SYNTHETIC = ("", "synthetic")
DEFAULT_SYNTHETIC_SAMPLES = 500
# D x D matrices of float64: 4096 features is 128 MiB per matrix (MNIST's 784 is 4.7 MiB).
MAX_FEATURES = 4096
# compute_f_star runs full SVDs of D x D matrices; beyond this D it returns nan.
F_STAR_MAX_FEATURES = 100
F_STAR_ITERATIONS = 2000
F_STAR_TOLERANCE = 1e-9


def smooth_hinge(z: np.ndarray) -> np.ndarray:
    """l(z): 0 for z >= 1, 1/2 - z for z <= 0, (1 - z)^2 / 2 in between (elementwise)."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z >= 1.0, 0.0, np.where(z <= 0.0, 0.5 - z, 0.5 * (1.0 - z) ** 2))


def smooth_hinge_derivative(z: np.ndarray) -> np.ndarray:
    """l'(z) = clip(z - 1, -1, 0): -1 for z <= 0, z - 1 in between, 0 for z >= 1."""
    return np.clip(np.asarray(z, dtype=np.float64) - 1.0, -1.0, 0.0)


def synthetic_blobs(n_samples: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n_samples flattened side x side images in [0, 1] and labels 0/1 (seeded).

    Class 0 is a Gaussian blob around (side/2, 0.3 side), class 1 around (side/2, 0.7 side);
    each image jitters the centre by N(0, (0.12 side)^2) per axis, draws the blob width from
    [0.1, 0.2] side and its height from [0.5, 1], adds N(0, 0.1^2) pixel noise and clips to
    [0, 1]. The jitter and noise make the classes overlap a little.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(2, size=n_samples)
    centres = np.stack([np.full(n_samples, 0.5), np.where(labels == 1, 0.7, 0.3)], axis=1) * side
    centres += rng.normal(0.0, 0.12 * side, size=(n_samples, 2))
    width = rng.uniform(0.1, 0.2, size=n_samples) * side
    height = rng.uniform(0.5, 1.0, size=n_samples)
    grid = np.arange(side) + 0.5  # pixel centres
    rows = np.exp(-((grid[None, :] - centres[:, :1]) ** 2) / (2 * width[:, None] ** 2))
    cols = np.exp(-((grid[None, :] - centres[:, 1:]) ** 2) / (2 * width[:, None] ** 2))
    images = height[:, None, None] * rows[:, :, None] * cols[:, None, :]
    images += rng.normal(0.0, 0.1, size=images.shape)
    return np.clip(images, 0.0, 1.0).reshape(n_samples, side * side), labels.astype(np.float64)


class PolynomialNetworkProblem(MatrixProblem):
    """Mean smooth hinge loss of the scores a_i^T W a_i over ||W||_* <= theta; W flattened row-major."""

    name: ClassVar[str] = "pnn"
    params: ClassVar[dict[str, Any]] = {"positive_label": 0, "radius": 10.0, "format": "auto"}
    description: ClassVar[str] = (
        "two-layer polynomial network (quadratic activation, smooth hinge loss) over a nuclear-norm ball"
    )

    def __init__(
        self,
        A: Any,
        labels: np.ndarray,
        positive_label: float = 0,
        radius: float = 10.0,
        source: str = "data",
    ) -> None:
        if isinstance(radius, bool) or not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
            raise ConfigError(f"problem.radius: must be a finite number > 0, got {radius!r}")
        A = A.toarray() if sp.issparse(A) else np.asarray(A)
        A = np.ascontiguousarray(A, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64)
        if A.ndim != 2 or labels.ndim != 1 or A.shape[0] != labels.shape[0] or A.shape[0] == 0 or A.shape[1] == 0:
            raise DataError(f"{source}: features of shape {A.shape} do not fit labels of shape {labels.shape}")
        if A.shape[1] > MAX_FEATURES:
            raise DataError(
                f"{source}: {A.shape[1]} features; pnn keeps D x D matrices and accepts at most {MAX_FEATURES}"
            )
        if not np.isfinite(A).all():
            raise DataError(f"{source}: features contain nan or inf")
        codes = (labels == positive_label).astype(np.int64)
        if codes.min() == codes.max():
            which = "every" if codes[0] else "no"
            raise ConfigError(
                f"problem.positive_label: {which} sample of {source} has label {positive_label!r}, "
                "so there is a single class; pick a label that occurs but not everywhere"
            )
        self.A = A
        self.codes = codes
        self.y = 2.0 * codes - 1.0  # +1 for positive_label, -1 otherwise
        self.positive_label = positive_label
        self.radius = float(radius)
        self.n_features = A.shape[1]
        self.n_samples = A.shape[0]
        self.shape = (self.n_features, self.n_features)
        self.dim = self.n_features * self.n_features
        self._smoothness: float | None = None
        self._f_star: float | None = None

    @classmethod
    def memory_estimate(cls, config: Any) -> tuple[int, int]:
        """Synthetic images: samples x dim pixels; the model is a dim x dim matrix (a data file: its loader checks)."""
        if config.data not in SYNTHETIC:
            return 0, 1
        dim, samples = max(int(config.dim), 0), int(config.samples or DEFAULT_SYNTHETIC_SAMPLES)
        return 16 * samples * dim + 8 * 4 * dim * dim, dim * dim

    @classmethod
    def from_config(cls, config: Any) -> PolynomialNetworkProblem:
        """Synthetic images (data "" or "synthetic", dim pixels) or a data file (samples > 0 keeps the first rows)."""
        p = config.params
        if p["format"] not in FORMATS:
            raise ConfigError(f"problem.format: {p['format']!r} is not accepted; accepted: {', '.join(FORMATS)}")
        if config.data in SYNTHETIC:
            side = math.isqrt(config.dim) if config.dim >= 1 else 0
            if config.dim < 1 or side * side != config.dim:
                raise ConfigError(
                    f"problem.dim: synthetic pnn images are square, so dim (the number of pixels) must be "
                    f"a perfect square such as 64 or 100, got {config.dim}"
                )
            A, labels = synthetic_blobs(config.samples or DEFAULT_SYNTHETIC_SAMPLES, side, seed=config.seed)
            source = "synthetic data"
        else:
            A, labels = load_dataset(config.data, p["format"], max_memory=getattr(config, "max_memory", 0))
            if config.samples > A.shape[0]:
                raise ConfigError(f"problem.samples = {config.samples} but {config.data} has {A.shape[0]} rows")
            if config.samples > 0:
                A, labels = A[: config.samples], labels[: config.samples]
            source = config.data
        return cls(A, labels, positive_label=p["positive_label"], radius=p["radius"], source=source)

    # -- rows of the finite sum

    def scores(self, x: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """a_i^T W a_i for rows idx (all rows when None)."""
        A = self.A if idx is None else self.A[idx]
        return np.einsum("ij,ij->i", A @ self.as_matrix(x), A)

    def _rows_loss_grad(self, x: np.ndarray, idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Margins y_i z_i and the mean gradient (1/|idx|) A^T diag(l'(y z) y) A (flattened) over rows idx."""
        A = self.A if idx is None else self.A[idx]
        y = self.y if idx is None else self.y[idx]
        margins = y * np.einsum("ij,ij->i", A @ self.as_matrix(x), A)
        weights = smooth_hinge_derivative(margins) * y
        gradient = (A.T @ (A * weights[:, None])) / A.shape[0]
        return margins, gradient.ravel()

    # -- Problem interface

    def loss(self, x: np.ndarray) -> float:
        return float(np.mean(smooth_hinge(self.y * self.scores(x))))

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        return self._rows_loss_grad(x, None)[1]

    def loss_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """f(x) and its gradient sharing one pass over the data."""
        margins, gradient = self._rows_loss_grad(x, None)
        return float(np.mean(smooth_hinge(margins))), gradient

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mean gradient of the terms for rows idx (repeats count)."""
        return self._rows_loss_grad(x, np.asarray(idx))[1]

    stochastic_grad = MatrixProblem.finite_sum_grad

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted signs in {-1, +1} for the rows (a zero score is +1)."""
        return np.where(self.scores(x) >= 0, 1.0, -1.0)

    def metrics(self, x: np.ndarray) -> dict[str, float]:
        margins, g = self._rows_loss_grad(x, None)
        # sign(z) == y with sign(0) = +1: a positive row is right when y z >= 0, a negative one when y z > 0.
        correct = np.where(self.y > 0, margins >= 0, margins > 0)
        return {
            "loss": float(np.mean(smooth_hinge(margins))),
            "grad_norm_sq": float(g @ g),
            "accuracy": float(np.mean(correct)),
        }

    def smoothness(self) -> float:
        """(1/m) sum_i ||a_i||^4: the Hessian is (1/m) sum_i l'' vec(a_i a_i^T) vec(a_i a_i^T)^T with 0 <= l'' <= 1."""
        if self._smoothness is None:
            self._smoothness = float(np.mean(np.einsum("ij,ij->i", self.A, self.A) ** 2))
        return self._smoothness

    def minimizer(self) -> np.ndarray | None:
        """argmin over the ball by FISTA with adaptive restart (None when D > F_STAR_MAX_FEATURES)."""
        if self.n_features > F_STAR_MAX_FEATURES:
            return None
        L = self.smoothness()
        if L <= 0:  # all features zero: f is constant
            return self.x0()
        x = self.x0()
        y = x.copy()
        t = 1.0
        for _ in range(F_STAR_ITERATIONS):
            _, g = self.loss_and_grad(y)
            x_next = self.project(y - g / L)
            mapping = L * (y - x_next)  # gradient mapping at y
            if float(np.linalg.norm(mapping)) < F_STAR_TOLERANCE:
                x = x_next
                break
            # Restart the momentum when it points uphill (O'Donoghue and Candes 2015).
            if float(mapping @ (x_next - x)) > 0:
                t = 1.0
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            y = x_next + ((t - 1.0) / t_next) * (x_next - x)
            x, t = x_next, t_next
        return x

    def compute_f_star(self) -> float:
        """min f over the ball by FISTA (projections by full SVD) for D <= 100; nan for larger D (too slow).

        Never more than f(x0), so that it bounds every iterate's loss from below as well as FISTA allows.
        Kept in the f* cache (problems.f_star_cache) per data, labels, radius and solver: every run of a
        sweep or a reproduction needs the same number, and a solve takes seconds.
        """
        if self._f_star is None:
            if self.n_features > F_STAR_MAX_FEATURES:
                self._f_star = math.nan
            else:
                start = self.loss(self.x0())
                identity = f_star_cache.identity(type(self).__module__, type(self).__qualname__, self.radius, "FISTA",
                                                 F_STAR_ITERATIONS, F_STAR_TOLERANCE, self.A, self.y)
                self._f_star = f_star_cache.cached(identity, lambda: min(self.loss(self.minimizer()), start),
                                                   accept=lambda value: value <= start)
        return self._f_star

    def labels(self) -> np.ndarray:
        """0/1 class codes (1 for positive_label) for label-based data splits."""
        return self.codes.copy()
