"""Tests for the polynomial network problem: smooth hinge, gradients, LMO, f*, Frank-Wolfe, data files and errors."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError, DataError
from asyncopt_mpi.problems import PROBLEMS, make_problem
from asyncopt_mpi.problems.data import save_idx, save_npz
from asyncopt_mpi.problems.pnn import (
    PolynomialNetworkProblem,
    smooth_hinge,
    smooth_hinge_derivative,
    synthetic_blobs,
)


def config(**overrides):
    params = {"positive_label": 0, "radius": 10.0, "format": "auto"}
    params.update(overrides.pop("params", {}))
    values = {
        "name": "pnn", "dim": 16, "samples": 60, "noise": 0.0, "noise_type": "add", "data": "", "seed": 0,
        "params": params,
    }
    values.update(overrides)
    return types.SimpleNamespace(**values)


def synthetic(**overrides) -> PolynomialNetworkProblem:
    return PolynomialNetworkProblem.from_config(config(**overrides))


def in_ball(problem: PolynomialNetworkProblem, rng: np.random.Generator, fraction: float = 0.8) -> np.ndarray:
    """A random (non-symmetric) matrix with nuclear norm fraction * theta."""
    x = rng.standard_normal(problem.dim)
    return fraction * problem.radius * x / problem.nuclear_norm(x)


def central_differences(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def frank_wolfe(problem: PolynomialNetworkProblem, steps: int) -> np.ndarray:
    x = problem.x0()
    for k in range(steps):
        eta = 2.0 / (k + 2)
        x = (1 - eta) * x + eta * problem.vertex(problem.full_grad(x))
    return x


def test_registered_and_declared():
    assert PROBLEMS["pnn"] is PolynomialNetworkProblem
    assert PolynomialNetworkProblem.params == {"positive_label": 0, "radius": 10.0, "format": "auto"}


def test_smooth_hinge_values_and_derivative():
    z = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(smooth_hinge(z), [1.5, 0.5, 0.125, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(smooth_hinge_derivative(z), [-1.0, -1.0, -0.5, 0.0, 0.0], atol=1e-15)
    # The derivative is the slope of l everywhere (l is C^1).
    grid = np.linspace(-2, 3, 101)
    eps = 1e-6
    numeric = (smooth_hinge(grid + eps) - smooth_hinge(grid - eps)) / (2 * eps)
    np.testing.assert_allclose(smooth_hinge_derivative(grid), numeric, atol=1e-6)


def test_shapes_and_synthetic_data():
    problem = synthetic()
    assert problem.shape == (16, 16) and problem.dim == 256 and problem.n_samples == 60
    assert problem.radius == 10.0
    np.testing.assert_array_equal(problem.x0(), np.zeros(256))
    A, labels = synthetic_blobs(60, 4, seed=0)
    assert A.shape == (60, 16) and A.min() >= 0.0 and A.max() <= 1.0
    assert set(labels.tolist()) == {0.0, 1.0}
    # Seeded: the same seed gives the same set, another seed another.
    np.testing.assert_array_equal(synthetic_blobs(60, 4, seed=0)[0], A)
    assert not np.array_equal(synthetic_blobs(60, 4, seed=1)[0], A)
    # positive_label 0 (default): y = +1 exactly for label 0; labels() gives the 0/1 codes.
    np.testing.assert_array_equal(problem.labels(), (labels == 0).astype(np.int64))
    assert synthetic(dim=64, samples=0).n_samples == 500  # default synthetic size


def test_full_grad_matches_finite_differences():
    problem = synthetic()
    rng = np.random.default_rng(1)
    # A random matrix alone gives small scores; mixing in a few Frank-Wolfe steps spreads the margins.
    x = 0.3 * in_ball(problem, rng) + 0.7 * frank_wolfe(problem, 10)
    assert problem.nuclear_norm(x) <= problem.radius * (1 + 1e-9)
    margins = problem.y * problem.scores(x)
    # The point exercises all three pieces of the smooth hinge.
    assert (margins <= 0).any() and ((margins > 0) & (margins < 1)).any() and (margins >= 1).any()
    np.testing.assert_allclose(problem.full_grad(x), central_differences(problem.loss, x), atol=1e-7)
    loss, g = problem.loss_and_grad(x)
    assert loss == pytest.approx(problem.loss(x), rel=1e-14)
    np.testing.assert_allclose(g, problem.full_grad(x), atol=1e-15)


def test_grad_over_rows_and_sampling():
    problem = synthetic()
    rng = np.random.default_rng(2)
    x = in_ball(problem, rng)
    np.testing.assert_allclose(problem.grad(x, np.arange(problem.n_samples)), problem.full_grad(x), atol=1e-14)
    # Repeats count: rows [3, 3, 7] weigh row 3 twice.
    expected = (2 * problem.grad(x, np.array([3])) + problem.grad(x, np.array([7]))) / 3
    np.testing.assert_allclose(problem.grad(x, np.array([3, 3, 7])), expected, atol=1e-14)
    # stochastic_grad draws with replacement from the shard (or from all rows).
    shard = np.array([5, 9, 11, 20])
    drawn = shard[np.random.default_rng(7).integers(len(shard), size=6)]
    np.testing.assert_allclose(
        problem.stochastic_grad(x, np.random.default_rng(7), batch=6, shard=shard), problem.grad(x, drawn), atol=1e-14
    )
    drawn = np.random.default_rng(8).integers(problem.n_samples, size=5)
    np.testing.assert_allclose(
        problem.stochastic_grad(x, np.random.default_rng(8), batch=5), problem.grad(x, drawn), atol=1e-14
    )


def test_metrics_and_zero_scores():
    problem = synthetic()
    at_zero = problem.metrics(problem.x0())
    assert at_zero["loss"] == pytest.approx(0.5)  # l(0) = 1/2 for every row
    # A zero score predicts +1, so at W = 0 the accuracy is the fraction of positive rows.
    assert at_zero["accuracy"] == pytest.approx(np.mean(problem.labels() == 1))
    g = problem.full_grad(problem.x0())
    assert at_zero["grad_norm_sq"] == pytest.approx(float(g @ g))
    x = in_ball(problem, np.random.default_rng(3))
    predicted = np.where(problem.scores(x) >= 0, 1, -1)
    assert problem.metrics(x)["accuracy"] == pytest.approx(np.mean(predicted == 2 * problem.labels() - 1))


def test_smoothness_bounds_gradient_changes():
    problem = synthetic()
    L = problem.smoothness()
    assert L == pytest.approx(np.mean(np.sum(problem.A**2, axis=1) ** 2))
    rng = np.random.default_rng(4)
    for _ in range(20):
        x1, x2 = in_ball(problem, rng), in_ball(problem, rng)
        change = np.linalg.norm(problem.full_grad(x1) - problem.full_grad(x2))
        assert change <= L * np.linalg.norm(x1 - x2) * (1 + 1e-12)


def test_lmo_gives_a_vertex_of_the_ball():
    problem = synthetic()
    rng = np.random.default_rng(5)
    for _ in range(5):
        g = problem.full_grad(in_ball(problem, rng))
        u, v = problem.lmo(g)
        assert np.linalg.norm(u) == pytest.approx(1.0) and np.linalg.norm(v) == pytest.approx(1.0)
        s = problem.vertex(g)
        assert abs(problem.nuclear_norm(s) - problem.radius) <= 1e-9
        for _ in range(10):
            assert s @ g <= in_ball(problem, rng, fraction=rng.uniform(0, 1)) @ g + 1e-12


def test_f_star_lower_bounds_and_frank_wolfe_reaches_it():
    problem = synthetic(samples=200)
    f_star = problem.compute_f_star()
    assert math.isfinite(f_star) and 0 <= f_star < problem.loss(problem.x0())
    rng = np.random.default_rng(6)
    for _ in range(20):
        assert f_star <= problem.loss(in_ball(problem, rng, fraction=rng.uniform(0, 1)))
    x = frank_wolfe(problem, 300)
    assert problem.nuclear_norm(x) <= problem.radius * (1 + 1e-9)
    assert f_star - 1e-9 <= problem.loss(x) <= f_star + 1e-2
    assert problem.compute_f_star() == f_star  # cached


def test_f_star_is_nan_for_large_images():
    rng = np.random.default_rng(0)
    problem = PolynomialNetworkProblem(rng.random((6, 101)), np.array([0, 1, 0, 1, 1, 0]))
    assert problem.shape == (101, 101)
    assert math.isnan(problem.compute_f_star())


def idx_files(tmp_path, images: np.ndarray, labels: np.ndarray) -> str:
    path = str(tmp_path / "train-images-idx3-ubyte")
    save_idx(path, images)
    save_idx(str(tmp_path / "train-labels-idx1-ubyte"), labels)
    return path


def test_idx_round_trip_through_config(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 3, 3), dtype=np.uint8)
    labels = np.array([3, 1, 3, 0, 7, 3, 2, 3, 1, 0, 3, 5], dtype=np.uint8)
    path = idx_files(tmp_path, images, labels)
    cfg = load_config(None, ["problem.name=pnn", f"problem.data={path}", "stop.time=1"], backend="sim")
    problem = make_problem(cfg.problem)
    assert isinstance(problem, PolynomialNetworkProblem)
    assert problem.shape == (9, 9) and problem.dim == 81 and problem.n_samples == 12
    np.testing.assert_allclose(problem.A, images.reshape(12, 9) / 255.0)  # bytes scaled to [0, 1]
    np.testing.assert_array_equal(problem.labels(), (labels == 0).astype(np.int64))
    # Own keys and samples: positive_label 3, the first 8 rows, another radius.
    cfg = load_config(
        None,
        ["problem.name=pnn", f"problem.data={path}", "problem.positive_label=3", "problem.samples=8",
         "problem.radius=2.5", "stop.time=1"],
        backend="sim",
    )
    problem = make_problem(cfg.problem)
    assert problem.n_samples == 8 and problem.radius == 2.5
    np.testing.assert_array_equal(problem.y, np.where(labels[:8] == 3, 1.0, -1.0))
    np.testing.assert_allclose(problem.full_grad(problem.x0()), problem.grad(problem.x0(), np.arange(8)))


def test_npz_features_are_used_as_stored(tmp_path):
    rng = np.random.default_rng(1)
    X = 10.0 * rng.standard_normal((10, 4))
    y = np.array([1, -1] * 5, dtype=float)
    path = str(tmp_path / "set.npz")
    save_npz(path, X, y)
    problem = PolynomialNetworkProblem.from_config(config(data=path, samples=0, params={"positive_label": 1}))
    np.testing.assert_array_equal(problem.A, X)
    np.testing.assert_array_equal(problem.y, y)
    with pytest.raises(ConfigError, match="problem.samples"):
        PolynomialNetworkProblem.from_config(config(data=path, samples=11, params={"positive_label": 1}))


def test_single_class_is_a_config_error(tmp_path):
    A = np.random.default_rng(0).random((5, 4))
    with pytest.raises(ConfigError, match="problem.positive_label"):
        PolynomialNetworkProblem(A, np.array([2, 2, 2, 2, 2]), positive_label=2)
    with pytest.raises(ConfigError, match="problem.positive_label"):
        PolynomialNetworkProblem(A, np.array([0, 1, 0, 1, 1]), positive_label=9)
    images = np.zeros((4, 2, 2), dtype=np.uint8)
    path = idx_files(tmp_path, images, np.array([0, 1, 0, 1], dtype=np.uint8))
    cfg = load_config(
        None, ["problem.name=pnn", f"problem.data={path}", "problem.positive_label=4", "stop.time=1"], backend="sim"
    )
    with pytest.raises(ConfigError, match="problem.positive_label"):
        make_problem(cfg.problem)
    with pytest.raises(ConfigError, match="problem.positive_label"):
        synthetic(params={"positive_label": 5})  # synthetic labels are 0 and 1


@pytest.mark.parametrize("dim", [15, 50, 2])
def test_synthetic_image_size_must_be_square(dim):
    with pytest.raises(ConfigError, match="problem.dim"):
        synthetic(dim=dim)


def test_bad_values():
    with pytest.raises(ConfigError, match="problem.radius"):
        synthetic(params={"radius": 0.0})
    with pytest.raises(ConfigError, match="problem.format"):
        synthetic(params={"format": "csv"})
    with pytest.raises(DataError):
        PolynomialNetworkProblem(np.ones((3, 2)), np.array([0, 1]))
