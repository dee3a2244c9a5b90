"""Logistic regression, binary or multinomial (softmax), on dense or sparse CSR features with optional l2.

A finite sum over the data rows: f(x) = (1/m) sum_i loss(a_i, y_i; x) + reg(x). Binary
labels are mapped to {-1, +1} and the model is a weight vector; with C > 2 classes the
model is a (features x C) matrix flattened row-major. Subclasses change the regulariser
by overriding _reg_loss, _reg_grad and _reg_smoothness (_reg_grad elementwise: grad_rows
hands it a block of points).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg
from scipy.special import expit, logsumexp, softmax

from ..errors import ConfigError, DataError
from . import f_star_cache
from .base import Problem, SampledTerms
from .data import FORMATS, Features, load_dataset, synthetic_classification
from .noise import GradientNoise
from .scaling import scale_features

SYNTHETIC = ("", "synthetic")
DEFAULT_SYNTHETIC_SAMPLES = 1000
SOLVER_OPTIONS = {"maxiter": 10_000, "maxfun": 20_000, "gtol": 1e-10, "ftol": 1e-15, "maxcor": 20}  # f*'s L-BFGS-B
GRAD_BLOCK_FLOATS = 2**17  # floats of a point's rows and gradient that grad_rows computes in one block


def class_codes(y: np.ndarray, classes: int = 0, source: str = "data") -> tuple[np.ndarray, int]:
    """Integer class codes 0..C-1 for raw labels, and C.

    classes = 0 infers C from the distinct values. Two classes: {-1, 1}, {0, 1} and {1, 2}
    keep their meaning (the larger is the positive class); any other two values are taken
    in sorted order. More classes: the sorted distinct values are 0..C-1; if fewer values
    than `classes` occur, they must already be integers in 0..classes-1.
    """
    y = np.asarray(y, dtype=np.float64)
    values = np.unique(y)
    if classes == 0:
        if values.size < 2:
            raise DataError(f"{source}: all labels are {values[0] if values.size else 'missing'}; "
                            "set problem.classes to say how many classes there are")
        classes = values.size
    if values.size > classes:
        raise DataError(f"{source}: labels take {values.size} distinct values but problem.classes = {classes}")
    if classes == 2:
        for negative, positive in ((-1.0, 1.0), (0.0, 1.0), (1.0, 2.0)):
            if set(values.tolist()) <= {negative, positive}:
                return (y == positive).astype(np.int64), 2
        return (y == values[-1]).astype(np.int64), 2
    if values.size == classes:
        return np.searchsorted(values, y).astype(np.int64), classes
    if np.all(values == np.round(values)) and values[0] >= 0 and values[-1] < classes:
        return y.astype(np.int64), classes
    raise DataError(
        f"{source}: {values.size} distinct labels for problem.classes = {classes}; with fewer labels "
        f"than classes the labels must be integers in 0..{classes - 1}"
    )


def spectral_norm(X: Features) -> float:
    """||X||_2, the largest singular value (dense SVD when small, ARPACK otherwise)."""
    if min(X.shape) == 0:
        return 0.0
    if min(X.shape) < 3 or X.shape[0] * X.shape[1] <= 1_000_000:
        dense = X.toarray() if sp.issparse(X) else X
        return float(np.linalg.norm(dense, 2))
    start = np.random.default_rng(0).standard_normal(min(X.shape))  # deterministic ARPACK start
    top = scipy.sparse.linalg.svds(X, k=1, v0=start, return_singular_vectors=False)
    # ARPACK converges to the top singular value from below; the margin keeps it an upper bound.
    return float(top[0]) * (1 + 1e-8)


class LogisticProblem(Problem):
    """Mean logistic (or softmax cross-entropy) loss over data rows plus l2/2 ||x||^2."""

    name: ClassVar[str] = "logistic"
    # zero_based: None (auto) | true | false for LIBSVM indices; scale: none | standard | maxabs
    # test_data: a held-out data file (same format rules); test_fraction: share of the rows held out
    params: ClassVar[dict[str, Any]] = {
        "classes": 0, "l2": 0.0, "bias": False, "format": "auto", "zero_based": None, "scale": "none",
        "test_data": "", "test_fraction": 0.0,
    }
    description: ClassVar[str] = "logistic regression, binary or multinomial, dense or sparse, optional l2"

    def __init__(
        self, X: Features, y: np.ndarray, classes: int = 0, l2: float = 0.0, bias: bool = False, source: str = "data"
    ) -> None:
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 0 or classes == 1:
            raise ConfigError(f"problem.classes must be 0 (infer from the labels) or an integer >= 2, got {classes!r}")
        if not (math.isfinite(l2) and l2 >= 0):
            raise ConfigError(f"problem.l2 must be >= 0, got {l2}")
        X = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise DataError(f"{source}: features of shape {X.shape} do not fit labels of shape {y.shape}")
        if bias:
            ones = np.ones((X.shape[0], 1))
            X = sp.hstack([X, ones], format="csr") if sp.issparse(X) else np.hstack([X, ones])

        self.X = X
        self.l2 = float(l2)
        self.codes, self.classes = class_codes(y, int(classes), source)
        self.n_features = X.shape[1]
        self.n_samples = X.shape[0]
        self.dim = self.n_features if self.classes == 2 else self.n_features * self.classes
        # Binary targets as -1/+1 make the loss log(1 + exp(-y a^T x)).
        self._targets = 2.0 * self.codes - 1 if self.classes == 2 else self.codes
        self._smoothness: float | None = None
        self._solution: np.ndarray | None = None
        self.X_test: Features | None = None  # held-out rows (test_data or test_fraction), never trained on

    @classmethod
    def memory_estimate(cls, config: Any) -> tuple[int, int]:
        """Synthetic data: samples x dim features (and a copy while built); a data file is checked by its loader."""
        if config.data not in SYNTHETIC:
            return 0, 1
        classes = config.params.get("classes", 0) or 2
        dim, samples = max(int(config.dim), 0), int(config.samples or DEFAULT_SYNTHETIC_SAMPLES)
        return 16 * samples * dim, dim if classes == 2 else dim * classes

    @classmethod
    def from_config(cls, config: Any) -> "LogisticProblem":
        """Synthetic data (data "" or "synthetic") or a data file; samples > 0 keeps the first rows of a file."""
        p = config.params
        if p["format"] not in FORMATS:
            raise ConfigError(f"problem.format: {p['format']!r} is not accepted; accepted: {', '.join(FORMATS)}")
        if p["zero_based"] not in (None, "auto", True, False, "true", "false"):
            raise ConfigError(f"problem.zero_based: {p['zero_based']!r} is not accepted; accepted: auto, true, false")
        if config.data in SYNTHETIC:
            if config.dim < 1:
                raise ConfigError(f"problem.dim (number of features) must be >= 1, got {config.dim}")
            n = config.samples or DEFAULT_SYNTHETIC_SAMPLES
            X, y = synthetic_classification(n, config.dim, classes=p["classes"] or 2, seed=config.seed)
            source = "synthetic data"
        else:
            X, y = load_dataset(config.data, p["format"], max_memory=getattr(config, "max_memory", 0),
                                zero_based=p["zero_based"])
            if config.samples > X.shape[0]:
                raise ConfigError(f"problem.samples = {config.samples} but {config.data} has {X.shape[0]} rows")
            if config.samples > 0:
                X, y = X[: config.samples], y[: config.samples]
            source = config.data
        fraction = p["test_fraction"]
        if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
            raise ConfigError(f"problem.test_fraction: the share of rows held out, a number in [0, 1), got {fraction!r}")
        if p["test_data"] and fraction:
            raise ConfigError("problem.test_data and problem.test_fraction: give one of them (a test file or a share held out)")
        n_train = X.shape[0]
        if p["test_data"]:
            # Train and test rows are scaled and their labels coded together (one class mapping).
            X_test, y_test = load_dataset(p["test_data"], p["format"], max_memory=getattr(config, "max_memory", 0),
                                          zero_based=p["zero_based"],
                                          n_features=X.shape[1] if sp.issparse(X) else None)
            if X_test.shape[1] != X.shape[1]:
                raise DataError(f"{p['test_data']}: test rows have {X_test.shape[1]} features, "
                                f"the training data {source} has {X.shape[1]}")
            X = sp.vstack([sp.csr_matrix(X), sp.csr_matrix(X_test)], format="csr") if sp.issparse(X) \
                else np.vstack([np.asarray(X), np.asarray(X_test)])
            y = np.concatenate([np.asarray(y), np.asarray(y_test)])
        X = scale_features(X, p["scale"], source)
        problem = cls(X, y, classes=p["classes"], l2=p["l2"], bias=p["bias"], source=source)
        if p["test_data"]:
            problem.hold_out(np.arange(n_train, X.shape[0]))
        elif fraction:
            held = int(round(fraction * n_train))
            if held < 1 or held >= n_train:
                raise ConfigError(f"problem.test_fraction = {fraction} of {n_train} rows leaves no test or no training rows")
            # a seeded random choice of rows (files are often sorted by label)
            problem.hold_out(np.sort(np.random.default_rng(config.seed).permutation(n_train)[:held]))
        return problem

    def hold_out(self, rows: np.ndarray) -> None:
        """Move `rows` to the test set: the finite sum, f*, L and training accuracy use the others only."""
        keep = np.setdiff1d(np.arange(self.n_samples), rows)
        self.X_test, self._targets_test, self.codes_test = self.X[rows], self._targets[rows], self.codes[rows]
        self.X, self._targets, self.codes = self.X[keep], self._targets[keep], self.codes[keep]
        self.n_samples = self.X.shape[0]
        self._smoothness, self._solution = None, None

    def test_metrics(self, x: np.ndarray) -> dict[str, float]:
        """test_loss (mean loss over the held-out rows, no regulariser) and test_accuracy; nan without a test set."""
        if self.X_test is None:
            return {"test_loss": math.nan, "test_accuracy": math.nan}
        scores = self._scores(x, self.X_test)
        predicted = (scores >= 0).astype(np.int64) if self.classes == 2 else np.argmax(scores, axis=1)
        return {"test_loss": self._data_loss(scores, self._targets_test),
                "test_accuracy": float(np.mean(predicted == self.codes_test))}

    # -- regulariser hooks (a subclass overrides these three)

    def _reg_loss(self, x: np.ndarray) -> float:
        return 0.5 * self.l2 * float(x @ x)

    def _reg_grad(self, x: np.ndarray) -> np.ndarray:
        return self.l2 * x

    def _reg_smoothness(self) -> float:
        return self.l2

    # -- data term on a set of rows

    def _scores(self, x: np.ndarray, X: Features) -> np.ndarray:
        """a_i^T x per row (binary) or a_i^T W per row, shape (rows, C)."""
        return X @ (x if self.classes == 2 else x.reshape(self.n_features, self.classes))

    def _data_loss(self, scores: np.ndarray, targets: np.ndarray) -> float:
        if self.classes == 2:
            return float(np.mean(np.logaddexp(0.0, -targets * scores)))
        picked = scores[np.arange(scores.shape[0]), targets]
        return float(np.mean(logsumexp(scores, axis=1) - picked))

    def _data_grad(self, X: Features, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if self.classes == 2:
            residual = -targets * expit(-targets * scores)  # d loss / d score, stable for any sign
        else:
            residual = softmax(scores, axis=1)
            residual[np.arange(scores.shape[0]), targets] -= 1.0
        return np.asarray(X.T @ residual).ravel() / scores.shape[0]

    # -- Problem interface

    def x0(self) -> np.ndarray:
        return np.zeros(self.dim)

    def loss(self, x: np.ndarray) -> float:
        return self._data_loss(self._scores(x, self.X), self._targets) + self._reg_loss(x)

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        return self._data_grad(self.X, self._scores(x, self.X), self._targets) + self._reg_grad(x)

    def loss_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """f(x) and its gradient sharing one pass over the data."""
        scores = self._scores(x, self.X)
        loss = self._data_loss(scores, self._targets) + self._reg_loss(x)
        return loss, self._data_grad(self.X, scores, self._targets) + self._reg_grad(x)

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mean gradient of the terms for rows idx (repeats count)."""
        idx = np.asarray(idx)
        X = self.X[idx]
        return self._data_grad(X, self._scores(x, X), self._targets[idx]) + self._reg_grad(x)

    def loss_of(self, x: np.ndarray, idx: np.ndarray) -> float:
        """Mean loss of the terms for rows idx, regulariser included (a shard's f_i for Malenia/Amelie)."""
        idx = np.asarray(idx)
        return self._data_loss(self._scores(x, self.X[idx]), self._targets[idx]) + self._reg_loss(x)

    stochastic_grad = Problem.finite_sum_grad

    def noise_model(self, batch: int) -> GradientNoise | None:
        """finite_sum_grad's index draws (SampledTerms), so the simulator computes gradients in blocks;
        None when a gradient's indices do not fit a row of dim floats or stochastic_grad is another."""
        if batch > self.dim or type(self).stochastic_grad is not Problem.finite_sum_grad:
            return None
        return SampledTerms(self.n_samples, batch)

    def grad_rows(self, points: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """grad(points[k], indices[k]) for each row k, bit for bit, in blocks (multinomial, dense features).

        Each block's products are those grad makes for one point: the scores of each point by a
        stacked matmul (one BLAS product per point, as grad's), and with one row a point's X^T
        residual is every product plus 0.0 (as BLAS sums it from zero: a -0.0 product becomes 0.0).
        Otherwise (binary, sparse features, a subclass's own grad) one point at a time.
        """
        count, batch = indices.shape
        if self.classes == 2 or sp.issparse(self.X) or type(self).grad is not LogisticProblem.grad \
                or type(self)._data_grad is not LogisticProblem._data_grad \
                or type(self)._scores is not LogisticProblem._scores:
            return super().grad_rows(points, indices)
        gradients = np.empty((count, self.dim))
        chunk = max(1, GRAD_BLOCK_FLOATS // (self.dim * batch))  # points per block: its arrays stay in cache
        for start in range(0, count, chunk):
            end = min(start + chunk, count)
            self._grad_block(points[start:end], indices[start:end], gradients[start:end])
        return gradients

    def loss_rows(self, x: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """loss_of(x, indices[k]) for each row k, bit for bit, in blocks (multinomial, dense features).

        Each row's scores are one BLAS product as loss_of's (a stacked matmul), and its log-sum-exp,
        picked scores and mean run along that row alone. Otherwise one row at a time.
        """
        count, batch = indices.shape
        if self.classes == 2 or sp.issparse(self.X) or type(self).loss_of is not LogisticProblem.loss_of \
                or type(self)._data_loss is not LogisticProblem._data_loss \
                or type(self)._scores is not LogisticProblem._scores:
            return np.array([self.loss_of(x, idx) for idx in indices])
        losses = np.empty(count)
        weights = x.reshape(self.n_features, self.classes)
        chunk = max(1, GRAD_BLOCK_FLOATS // (self.dim * batch))
        for start in range(0, count, chunk):
            block = indices[start:start + chunk]
            scores = np.matmul(self.X[block], weights)  # (rows, batch, classes)
            picked = np.take_along_axis(scores, self._targets[block][..., None], axis=2)[..., 0]
            np.mean(logsumexp(scores, axis=2) - picked, axis=1, out=losses[start:start + len(block)])
        return losses + self._reg_loss(x)

    def _grad_block(self, points: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
        count, batch = indices.shape
        rows = self.X[indices]  # (points, batch, features)
        weights = points.reshape(count, self.n_features, self.classes)
        residual = softmax(np.matmul(rows, weights), axis=2)
        residual[np.arange(count)[:, None], np.arange(batch), self._targets[indices]] -= 1.0
        gradients = out.reshape(count, self.n_features, self.classes)
        if batch == 1:
            np.einsum("pf,pc->pfc", rows[:, 0], residual[:, 0], out=gradients)  # one product each, no sum
            out += 0.0
        else:
            np.matmul(rows.transpose(0, 2, 1), residual, out=gradients)
            out /= batch
        out += self._reg_grad(points)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class codes 0..C-1 for the training rows (binary: score >= 0 is class 1)."""
        scores = self._scores(x, self.X)
        return (scores >= 0).astype(np.int64) if self.classes == 2 else np.argmax(scores, axis=1)

    def metrics(self, x: np.ndarray) -> dict[str, float]:
        loss, g = self.loss_and_grad(x)
        accuracy = float(np.mean(self.predict(x) == self.codes))
        return {"loss": float(loss), "grad_norm_sq": float(g @ g), "accuracy": accuracy}

    def minimizer(self) -> np.ndarray:
        """argmin f by L-BFGS-B from zeros with tight tolerances (cached)."""
        if self._solution is None:
            import scipy.optimize  # here, not at start-up: it is slow to import

            result = scipy.optimize.minimize(
                self.loss_and_grad,
                self.x0(),
                jac=True,
                method="L-BFGS-B",
                options=SOLVER_OPTIONS,
            )
            self._solution = result.x if np.all(np.isfinite(result.x)) else self.x0()
        return self._solution

    def compute_f_star(self) -> float:
        """min f as reached by L-BFGS-B (0 is approached, not reached, on separable data without l2).

        Kept in the f* cache (problems.f_star_cache) per problem, settings and training data."""
        start = self.loss(self.x0())
        # Re-evaluate at the returned point and never report more than f(x0): f* must bound every iterate's loss.
        return f_star_cache.cached(self.f_star_identity(), lambda: min(self.loss(self.minimizer()), start),
                                   accept=lambda value: value <= start)

    def f_star_identity(self) -> str:
        """The f* cache's key: this class, what f depends on (a subclass adds its own settings) and the solver."""
        return f_star_cache.identity(type(self).__module__, type(self).__qualname__, self.classes, self.l2,
                                     self._f_star_settings(), "L-BFGS-B", SOLVER_OPTIONS, self.X, self._targets)

    def _f_star_settings(self) -> dict[str, float]:
        """A subclass's settings that change f (besides classes, l2 and the data)."""
        return {}

    def smoothness(self) -> float:
        """||X||_2^2 / (4m) (binary) or ||X||_2^2 / (2m) (multinomial) plus the regulariser's constant.

        The per-row Hessian is s(1-s) a a^T with s(1-s) <= 1/4 (binary) and
        (diag(p) - p p^T) kron a a^T with ||diag(p) - p p^T|| <= 1/2 (softmax).
        """
        if self._smoothness is None:
            curvature = 0.25 if self.classes == 2 else 0.5
            self._smoothness = curvature * spectral_norm(self.X) ** 2 / self.n_samples + self._reg_smoothness()
        return self._smoothness

    def labels(self) -> np.ndarray:
        return self.codes.copy()
