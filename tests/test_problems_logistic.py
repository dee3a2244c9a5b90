"""Tests for logistic regression: gradients (dense/sparse, binary/multinomial), sampling, labels, f*, L."""

from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.sparse as sp

from asyncopt_mpi.errors import ConfigError, DataError
from asyncopt_mpi.problems import LogisticProblem, make_problem
from asyncopt_mpi.problems.data import save_libsvm
from asyncopt_mpi.problems.logistic import class_codes


def config(**overrides):
    params = dict(LogisticProblem.params)  # the problem's own keys with their defaults, as validate.py fills them
    params.update(overrides.pop("params", {}))
    values = dict(name="logistic", dim=5, samples=40, noise=0.0, noise_type="add", data="", seed=0, params=params)
    values.update(overrides)
    return types.SimpleNamespace(**values)


def small_data(classes: int, sparse: bool, n: int = 40, features: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    X[rng.random((n, features)) < 0.5] = 0.0  # the same zeros for the dense and sparse versions
    y = rng.integers(classes, size=n).astype(float) if classes > 2 else rng.choice([-1.0, 1.0], size=n)
    return (sp.csr_matrix(X) if sparse else X), y


def central_differences(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


CASES = [
    pytest.param(classes, sparse, l2, bias, id=f"C{classes}-{'sparse' if sparse else 'dense'}-l2={l2}-bias={bias}")
    for classes in (2, 4)
    for sparse in (False, True)
    for l2, bias in ((0.0, False), (0.1, True))
]


@pytest.mark.parametrize("classes, sparse, l2, bias", CASES)
def test_full_grad_matches_finite_differences(classes, sparse, l2, bias):
    X, y = small_data(classes, sparse)
    problem = LogisticProblem(X, y, l2=l2, bias=bias)
    assert problem.dim == (6 + bias) * (1 if classes == 2 else classes)
    x = np.random.default_rng(1).standard_normal(problem.dim)
    np.testing.assert_allclose(problem.full_grad(x), central_differences(problem.loss, x), atol=1e-7)
    loss, g = problem.loss_and_grad(x)
    assert loss == problem.loss(x)
    np.testing.assert_array_equal(g, problem.full_grad(x))


@pytest.mark.parametrize("classes, sparse, l2, bias", CASES)
def test_grad_over_all_rows_is_full_grad(classes, sparse, l2, bias):
    X, y = small_data(classes, sparse)
    problem = LogisticProblem(X, y, l2=l2, bias=bias)
    x = np.random.default_rng(2).standard_normal(problem.dim)
    np.testing.assert_allclose(problem.grad(x, np.arange(40)), problem.full_grad(x), rtol=0, atol=1e-12)
    g0, g1 = problem.grad(x, np.array([0])), problem.grad(x, np.array([1]))
    np.testing.assert_allclose(problem.grad(x, np.array([1, 0, 1])), (g0 + 2 * g1) / 3, atol=1e-12)


@pytest.mark.parametrize("classes", [2, 3])
def test_dense_and_sparse_data_give_the_same_problem(classes):
    X, y = small_data(classes, sparse=False)
    dense = LogisticProblem(X, y, l2=0.05, bias=True)
    sparse = LogisticProblem(sp.csr_matrix(X), y, l2=0.05, bias=True)
    assert sp.isspmatrix_csr(sparse.X)
    x = np.random.default_rng(3).standard_normal(dense.dim)
    assert sparse.loss(x) == pytest.approx(dense.loss(x), rel=1e-13)
    np.testing.assert_allclose(sparse.full_grad(x), dense.full_grad(x), atol=1e-13)
    assert sparse.smoothness() == pytest.approx(dense.smoothness(), rel=1e-10)


def test_loss_is_stable_for_huge_scores():
    X, y = small_data(2, sparse=False)
    problem = LogisticProblem(X, y)
    x = 1e6 * np.random.default_rng(4).standard_normal(problem.dim)
    assert np.isfinite(problem.loss(x)) and np.all(np.isfinite(problem.full_grad(x)))
    multi = LogisticProblem(*small_data(3, sparse=True))
    assert np.isfinite(multi.loss(1e6 * np.ones(multi.dim) * np.arange(multi.dim)))


@pytest.mark.slow
@pytest.mark.parametrize("classes", [2, 3])
def test_stochastic_grad_is_unbiased_and_batches_reduce_variance(classes):
    problem = LogisticProblem(*small_data(classes, sparse=True), l2=0.01)
    x = np.random.default_rng(5).standard_normal(problem.dim)
    per_row = np.array([problem.grad(x, np.array([i])) for i in range(40)])
    rng = np.random.default_rng(6)
    single = np.array([problem.stochastic_grad(x, rng) for _ in range(3000)])
    batched = np.array([problem.stochastic_grad(x, rng, batch=8) for _ in range(3000)])
    bound = 5 * per_row.std(axis=0) / np.sqrt(3000) + 1e-12
    assert np.all(np.abs(single.mean(axis=0) - problem.full_grad(x)) <= bound)
    assert np.all(np.abs(batched.mean(axis=0) - problem.full_grad(x)) <= bound)
    ratio = batched.var(axis=0).sum() / single.var(axis=0).sum()
    assert ratio == pytest.approx(1 / 8, rel=0.15)


def test_stochastic_grad_draws_from_the_shard():
    problem = LogisticProblem(*small_data(2, sparse=False))
    x = np.ones(problem.dim)
    shard = np.array([3, 17])
    allowed = np.array([problem.grad(x, shard[:1]), problem.grad(x, shard[1:])])
    rng = np.random.default_rng(7)
    for _ in range(30):
        g = problem.stochastic_grad(x, rng, shard=shard)
        assert np.any(np.all(np.isclose(g, allowed, rtol=0, atol=1e-14), axis=1))


@pytest.mark.parametrize("classes, sparse", [(2, False), (2, True), (3, False), (3, True)])
def test_f_star_is_a_stationary_minimum(classes, sparse):
    problem = LogisticProblem(*small_data(classes, sparse), l2=0.1, bias=True)
    f_star = problem.compute_f_star()
    x_star = problem.minimizer()
    assert isinstance(f_star, float)
    assert np.linalg.norm(problem.full_grad(x_star)) < 1e-7
    assert f_star <= problem.loss(problem.x0())
    rng = np.random.default_rng(8)
    assert all(f_star <= problem.loss(x_star + 0.1 * rng.standard_normal(problem.dim)) for _ in range(10))


def test_f_star_on_separable_data_without_l2_goes_to_zero():
    X = np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.5], [-2.0, -1.0]])
    problem = LogisticProblem(X, np.array([1.0, 1.0, -1.0, -1.0]))
    assert 0 <= problem.compute_f_star() < 1e-3


@pytest.mark.parametrize("classes", [2, 3])
def test_smoothness_bounds_the_hessian(classes):
    problem = LogisticProblem(*small_data(classes, sparse=True), l2=0.2, bias=True)
    L = problem.smoothness()
    rng = np.random.default_rng(9)
    for x in (np.zeros(problem.dim), rng.standard_normal(problem.dim)):
        eps = 1e-6
        H = np.column_stack(
            [(problem.full_grad(x + eps * e) - problem.full_grad(x - eps * e)) / (2 * eps) for e in np.eye(problem.dim)]
        )
        assert np.abs(np.linalg.eigvalsh((H + H.T) / 2)).max() <= L + 1e-6
    if classes == 2:  # at x = 0 every sigmoid'(0) = 1/4, so the binary bound is attained
        X = problem.X.toarray()
        assert L == pytest.approx(np.linalg.norm(X, 2) ** 2 / (4 * 40) + 0.2, rel=1e-9)


def test_metrics_report_loss_gradient_and_accuracy():
    problem = make_problem(config(samples=300, dim=5, params={"l2": 1e-3}))
    at_zero = problem.metrics(problem.x0())
    assert at_zero["loss"] == pytest.approx(np.log(2))
    at_star = problem.metrics(problem.minimizer())
    assert at_star["grad_norm_sq"] < 1e-12
    assert 0.8 < at_star["accuracy"] <= 1.0
    assert set(at_star) == {"loss", "grad_norm_sq", "accuracy"}


def test_multiclass_accuracy_and_labels():
    X = np.eye(3).repeat(2, axis=0)
    problem = LogisticProblem(X, np.array([10.0, 10, 20, 20, 30, 30]))
    np.testing.assert_array_equal(problem.labels(), [0, 0, 1, 1, 2, 2])
    W = 5 * np.eye(3)  # features x classes: row k votes for class k
    assert problem.metrics(W.ravel())["accuracy"] == 1.0
    assert problem.metrics(np.roll(W, 1, axis=1).ravel())["accuracy"] == 0.0


@pytest.mark.parametrize(
    "raw, expected",
    [
        ([-1, 1, 1, -1], [0, 1, 1, 0]),
        ([0, 1, 1, 0], [0, 1, 1, 0]),
        ([1, 2, 2, 1], [0, 1, 1, 0]),
        ([7, 3, 3, 7], [1, 0, 0, 1]),
    ],
)
def test_binary_labels_map_to_minus_and_plus_one(raw, expected):
    codes, classes = class_codes(np.array(raw, dtype=float))
    assert classes == 2
    np.testing.assert_array_equal(codes, expected)


def test_class_codes_for_multiclass_labels():
    codes, classes = class_codes(np.array([5.0, 1.0, 3.0, 1.0]))
    assert classes == 3 and list(codes) == [2, 0, 1, 0]
    codes, classes = class_codes(np.array([0.0, 4.0, 4.0]), classes=10)  # a subset of 0..9 keeps its values
    assert classes == 10 and list(codes) == [0, 4, 4]
    codes, classes = class_codes(np.array([1.0, 1.0]), classes=2)
    assert classes == 2 and list(codes) == [1, 1]


@pytest.mark.parametrize(
    "labels, classes, message",
    [
        ([1.0, 1.0], 0, "set problem.classes"),
        ([0.0, 1.0, 2.0], 2, "3 distinct values but problem.classes = 2"),
        ([0.5, 2.5], 5, "integers in 0..4"),
    ],
)
def test_class_codes_errors(labels, classes, message):
    with pytest.raises(DataError, match=message):
        class_codes(np.array(labels), classes)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"classes": 1}, "problem.classes"),
        ({"l2": -1.0}, "problem.l2"),
        ({"format": "csv"}, "problem.format: 'csv' is not accepted; accepted: auto, h5, idx, libsvm, npz"),
    ],
)
def test_bad_settings_raise_config_error(params, message):
    with pytest.raises(ConfigError, match=message):
        make_problem(config(params=params))


def test_synthetic_data_from_config():
    binary = make_problem(config(samples=0, dim=4))
    assert binary.n_samples == 1000 and binary.dim == 4 and binary.classes == 2
    multi = make_problem(config(samples=50, dim=4, params={"classes": 3, "bias": True}))
    assert multi.n_samples == 50 and multi.dim == 5 * 3 and set(multi.labels()) == {0, 1, 2}
    again = make_problem(config(samples=50, dim=4, params={"classes": 3, "bias": True}))
    np.testing.assert_array_equal(again.labels(), multi.labels())


def test_data_file_from_config(tmp_path):
    X, y = small_data(2, sparse=True, n=30)
    path = tmp_path / "train.svm"
    save_libsvm(str(path), X, (y + 1) / 2)  # {0, 1} labels in the file
    problem = make_problem(config(data=str(path), samples=0, dim=100))
    assert problem.n_samples == 30 and problem.dim == X.shape[1]
    assert sp.issparse(problem.X)
    np.testing.assert_array_equal(problem.labels(), (y > 0).astype(int))
    first = make_problem(config(data=str(path), samples=10))
    assert first.n_samples == 10
    np.testing.assert_array_equal(first.labels(), problem.labels()[:10])
    with pytest.raises(ConfigError, match="problem.samples = 31"):
        make_problem(config(data=str(path), samples=31))


def test_missing_data_file():
    with pytest.raises(DataError, match="data file not found: /nonexistent/a9a"):
        make_problem(config(data="/nonexistent/a9a"))


class _Penalised(LogisticProblem):
    """A subclass that only swaps the regulariser, as a nonconvex variant would."""

    def _reg_loss(self, x):
        return 0.3 * float(np.sum(x**2 / (1 + x**2)))

    def _reg_grad(self, x):
        return 0.3 * 2 * x / (1 + x**2) ** 2


def test_regulariser_hooks_are_enough_for_a_variant():
    problem = _Penalised(*small_data(2, sparse=True))
    x = np.random.default_rng(10).standard_normal(problem.dim)
    np.testing.assert_allclose(problem.full_grad(x), central_differences(problem.loss, x), atol=1e-7)
    np.testing.assert_allclose(problem.grad(x, np.arange(40)), problem.full_grad(x), atol=1e-12)
