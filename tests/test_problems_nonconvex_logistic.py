"""Tests for AsGrad's nonconvex logistic problem: gradients, regulariser, L, f*, config and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.problems import LogisticProblem, make_problem
from asyncopt_mpi.problems.nonconvex_logistic import NonconvexLogisticProblem


def small_data(sparse: bool, n: int = 30, features: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    X[rng.random((n, features)) < 0.5] = 0.0
    y = rng.choice([-1.0, 1.0], size=n)
    return (sp.csr_matrix(X) if sparse else X), y


def central_differences(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_full_grad_matches_finite_differences(sparse, l2):
    X, y = small_data(sparse)
    problem = NonconvexLogisticProblem(X, y, l2=l2, lam=0.7)
    x = 2.0 * np.random.default_rng(1).standard_normal(problem.dim)
    np.testing.assert_allclose(problem.full_grad(x), central_differences(problem.loss, x), atol=1e-7)
    # Minibatch gradients carry the whole regulariser too: over all rows they equal the full gradient.
    np.testing.assert_allclose(problem.grad(x, np.arange(problem.n_samples)), problem.full_grad(x), atol=1e-12)


def test_regulariser_values_at_known_points():
    X, y = small_data(False)
    lam = 0.4
    problem = NonconvexLogisticProblem(X, y, lam=lam)
    plain = LogisticProblem(X, y)
    zero, ones = np.zeros(problem.dim), np.ones(problem.dim)
    assert problem.loss(zero) == pytest.approx(plain.loss(zero))  # regulariser 0 at x = 0
    assert problem.loss(ones) - plain.loss(ones) == pytest.approx(problem.dim * lam / 2)
    # Its gradient 2 lam x_j/(1 + x_j^2)^2 is lam/2 per coordinate at x_j = 1.
    np.testing.assert_allclose(problem.full_grad(ones) - plain.full_grad(ones), lam / 2)


def test_smoothness_bounds_observed_gradient_changes():
    X, y = small_data(False)
    problem = NonconvexLogisticProblem(X, y, lam=1.0)
    rng = np.random.default_rng(2)
    ratios = []
    for _ in range(200):
        x = rng.standard_normal(problem.dim)
        y_ = x + 0.05 * rng.standard_normal(problem.dim)  # close pairs near 0 probe the regulariser's peak curvature
        ratios.append(np.linalg.norm(problem.full_grad(x) - problem.full_grad(y_)) / np.linalg.norm(x - y_))
    assert problem.smoothness() >= max(ratios)
    assert problem.smoothness() == pytest.approx(LogisticProblem(X, y).smoothness() + 2.0)


def test_lam_zero_is_plain_logistic():
    X, y = small_data(True)
    problem, plain = NonconvexLogisticProblem(X, y, lam=0.0), LogisticProblem(X, y)
    x = np.random.default_rng(3).standard_normal(problem.dim)
    assert problem.loss(x) == pytest.approx(plain.loss(x), rel=1e-14)
    np.testing.assert_allclose(problem.full_grad(x), plain.full_grad(x), rtol=1e-14)
    assert problem.smoothness() == pytest.approx(plain.smoothness())
    assert problem.compute_f_star() == pytest.approx(plain.compute_f_star(), rel=1e-9)


def test_f_star_is_a_stationary_value_below_x0():
    X, y = small_data(False)
    problem = NonconvexLogisticProblem(X, y, lam=0.5)
    f_star = problem.compute_f_star()
    assert f_star < problem.loss(problem.x0())
    assert f_star == pytest.approx(problem.loss(problem.minimizer()))
    assert np.linalg.norm(problem.full_grad(problem.minimizer())) < 1e-6


def test_config_round_trip():
    config = load_config(None, ["problem.name=nonconvex_logistic", "problem.lam=0.2", "stop.time=1"], backend="sim")
    assert config.problem.params["lam"] == 0.2
    problem = make_problem(config.problem)
    assert isinstance(problem, NonconvexLogisticProblem)
    assert problem.lam == 0.2
    x = np.ones(problem.dim)
    plain = LogisticProblem(problem.X, 2.0 * problem.codes - 1)
    assert problem.loss(x) - plain.loss(x) == pytest.approx(0.2 * problem.dim / 2)
    assert "lam = 0.2" in config.to_toml()


def test_default_lam_from_config():
    config = load_config(None, ["problem.name=nonconvex_logistic", "problem.samples=50", "stop.time=1"], backend="sim")
    assert make_problem(config.problem).lam == 0.1


def test_multiclass_is_rejected():
    rng = np.random.default_rng(4)
    with pytest.raises(ConfigError, match="problem.classes"):
        NonconvexLogisticProblem(rng.standard_normal((12, 3)), rng.integers(3, size=12).astype(float))
    config = load_config(
        None, ["problem.name=nonconvex_logistic", "problem.classes=3", "problem.samples=30", "stop.time=1"],
        backend="sim",
    )
    with pytest.raises(ConfigError, match="problem.classes"):
        make_problem(config.problem)


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf")])
def test_bad_lam_is_rejected(lam):
    X, y = small_data(False)
    with pytest.raises(ConfigError, match="problem.lam"):
        NonconvexLogisticProblem(X, y, lam=lam)
