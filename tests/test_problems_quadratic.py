"""Tests for the tridiagonal quadratic: gradients, noise models, finite-sum construction, f*."""

from __future__ import annotations

import types

import numpy as np
import pytest

from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.problems import QuadraticProblem, make_problem


def config(**overrides):
    params = {"L": 1.0, "lam": 0.5, "mu": 1e-6}
    params.update(overrides.pop("params", {}))
    values = dict(name="quadratic", dim=12, samples=0, noise=0.0, noise_type="add", data="", seed=0, params=params)
    values.update(overrides)
    return types.SimpleNamespace(**values)


def dense_matrix(grad_at, d: int) -> np.ndarray:
    """The matrix of an affine gradient map g(x) = A x - b, column by column."""
    base = grad_at(np.zeros(d))
    return np.column_stack([grad_at(e) - base for e in np.eye(d)])


def central_differences(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


@pytest.fixture
def finite_sum() -> QuadraticProblem:
    return make_problem(config(samples=25, params={"lam": 0.5, "mu": 1e-3}))


def test_base_problem_is_tyurins_construction():
    problem = make_problem(config(dim=6, params={"L": 2.0}))
    A = dense_matrix(problem.full_grad, 6)
    expected = (2.0 / 4) * (2 * np.eye(6) - np.eye(6, k=1) - np.eye(6, k=-1))
    np.testing.assert_allclose(A, expected, atol=1e-15)
    np.testing.assert_allclose(problem.full_grad(np.zeros(6)), [0.5, 0, 0, 0, 0, 0])  # -b
    np.testing.assert_allclose(problem.x0(), [np.sqrt(6), 0, 0, 0, 0, 0])
    assert problem.n_samples is None
    assert problem.smoothness() == pytest.approx(2.0)


@pytest.mark.parametrize("samples", [0, 25])
def test_full_grad_matches_finite_differences(samples):
    problem = make_problem(config(samples=samples))
    x = np.random.default_rng(1).standard_normal(problem.dim)
    np.testing.assert_allclose(problem.full_grad(x), central_differences(problem.loss, x), atol=1e-7)


def test_grad_over_all_indices_is_full_grad(finite_sum):
    x = np.random.default_rng(2).standard_normal(finite_sum.dim)
    np.testing.assert_allclose(finite_sum.grad(x, np.arange(25)), finite_sum.full_grad(x), rtol=0, atol=1e-12)


def test_grad_counts_repeated_indices(finite_sum):
    x = np.random.default_rng(3).standard_normal(finite_sum.dim)
    g0, g1 = finite_sum.grad(x, np.array([0])), finite_sum.grad(x, np.array([1]))
    np.testing.assert_allclose(finite_sum.grad(x, np.array([0, 1, 0])), (2 * g0 + g1) / 3, atol=1e-12)


def test_grad_of_one_sample_matches_its_finite_differences(finite_sum):
    x = np.random.default_rng(4).standard_normal(finite_sum.dim)
    A = dense_matrix(lambda v: finite_sum.grad(v, np.array([7])), finite_sum.dim)
    b = -finite_sum.grad(np.zeros(finite_sum.dim), np.array([7]))
    np.testing.assert_allclose(A, A.T, atol=1e-15)
    np.testing.assert_allclose(finite_sum.grad(x, np.array([7])), A @ x - b, atol=1e-12)


def test_mean_matrix_has_smallest_eigenvalue_mu():
    for mu in (1e-3, 0.05):
        problem = make_problem(config(dim=15, samples=40, params={"lam": 0.8, "mu": mu}))
        A = dense_matrix(problem.full_grad, 15)
        assert np.linalg.eigvalsh(A)[0] == pytest.approx(mu, rel=1e-9)


def test_single_functions_can_be_indefinite():
    problem = make_problem(config(dim=10, samples=20, params={"lam": 2.0, "mu": 1e-3}))
    lowest = [
        np.linalg.eigvalsh(dense_matrix(lambda v, j=j: problem.grad(v, np.array([j])), 10))[0]
        for j in range(20)
    ]
    assert min(lowest) < 0


def test_smoothness_bounds_every_sample_matrix(finite_sum):
    for j in range(25):
        A = dense_matrix(lambda v, j=j: finite_sum.grad(v, np.array([j])), finite_sum.dim)
        assert np.abs(np.linalg.eigvalsh(A)).max() <= finite_sum.smoothness() + 1e-12


@pytest.mark.parametrize("samples", [0, 25])
def test_f_star_is_the_minimum(samples):
    problem = make_problem(config(samples=samples, params={"mu": 1e-3}))
    x_star = problem.minimizer()
    f_star = problem.compute_f_star()
    assert isinstance(f_star, float)
    assert np.linalg.norm(problem.full_grad(x_star)) < 1e-9
    assert f_star == pytest.approx(problem.loss(x_star), rel=1e-12)
    rng = np.random.default_rng(5)
    for _ in range(20):
        assert f_star <= problem.loss(x_star + rng.standard_normal(problem.dim))
    assert f_star <= problem.loss(problem.x0())


def test_finite_sum_is_seeded(finite_sum):
    again = make_problem(config(samples=25, params={"lam": 0.5, "mu": 1e-3}))
    other = make_problem(config(samples=25, seed=1, params={"lam": 0.5, "mu": 1e-3}))
    x = np.ones(finite_sum.dim)
    assert np.array_equal(finite_sum.grad(x, np.array([3])), again.grad(x, np.array([3])))
    assert not np.allclose(finite_sum.grad(x, np.array([3])), other.grad(x, np.array([3])))


def test_finite_sum_sampling_is_unbiased_and_respects_the_shard(finite_sum):
    x = np.random.default_rng(6).standard_normal(finite_sum.dim)
    rng = np.random.default_rng(7)
    draws = np.array([finite_sum.stochastic_grad(x, rng, batch=4) for _ in range(4000)])
    per_sample = np.array([finite_sum.grad(x, np.array([j])) for j in range(25)])
    bound = 5 * per_sample.std(axis=0) / np.sqrt(4 * 4000) + 1e-12
    assert np.all(np.abs(draws.mean(axis=0) - finite_sum.full_grad(x)) <= bound)

    shard = np.array([2, 5, 11])
    shard_draws = [finite_sum.stochastic_grad(x, rng, batch=1, shard=shard) for _ in range(60)]
    allowed = per_sample[shard]
    assert all(np.any(np.all(np.isclose(g, allowed, rtol=0, atol=1e-12), axis=1)) for g in shard_draws)


def test_noise_zero_gives_exact_gradients():
    for noise_type in ("add", "zero_last"):
        problem = make_problem(config(noise=0.0, noise_type=noise_type))
        x = problem.x0()
        assert np.array_equal(problem.stochastic_grad(x, np.random.default_rng(0), batch=3), problem.full_grad(x))


@pytest.mark.parametrize("batch", [1, 16])
def test_add_noise_has_mean_grad_and_variance_noise_squared_over_batch(batch):
    problem = make_problem(config(noise=0.7, noise_type="add"))
    x = np.random.default_rng(8).standard_normal(problem.dim)
    rng = np.random.default_rng(9)
    draws = np.array([problem.stochastic_grad(x, rng, batch=batch) for _ in range(3000)])
    variance = 0.7**2 / batch
    assert np.all(np.abs(draws.mean(axis=0) - problem.full_grad(x)) < 5 * np.sqrt(variance / 3000))
    assert draws.var(axis=0).mean() == pytest.approx(variance, rel=0.05)


@pytest.mark.parametrize("batch", [1, 10])
def test_zero_last_noise_scales_only_coordinates_after_the_last_nonzero(batch):
    p = 0.3
    problem = make_problem(config(noise=p, noise_type="zero_last"))
    x = np.zeros(problem.dim)
    x[:4] = [1.0, 2.0, -1.0, 0.5]  # prog(x) = 3: coordinate 4 is the only nonzero one beyond it
    g = problem.full_grad(x)
    assert g[4] != 0
    rng = np.random.default_rng(10)
    draws = np.array([problem.stochastic_grad(x, rng, batch=batch) for _ in range(4000)])
    np.testing.assert_array_equal(draws[:, :4], np.broadcast_to(g[:4], (4000, 4)))
    factors = draws[:, 4] / g[4]
    # Each draw is Binomial(batch, p) / (batch p): mean 1, variance (1 - p) / (batch p).
    assert np.allclose(factors * batch * p, np.round(factors * batch * p))
    variance = (1 - p) / (batch * p)
    assert abs(factors.mean() - 1) < 5 * np.sqrt(variance / 4000)
    assert factors.var() == pytest.approx(variance, rel=0.1)


def test_zero_last_at_zero_scales_the_whole_gradient():
    problem = make_problem(config(noise=0.5, noise_type="zero_last"))
    rng = np.random.default_rng(11)
    g = problem.full_grad(np.zeros(problem.dim))
    draws = [problem.stochastic_grad(np.zeros(problem.dim), rng) for _ in range(50)]
    assert all(np.array_equal(d, 0 * g) or np.allclose(d, 2 * g) for d in draws)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dim": 1}, "problem.dim must be an integer >= 2, got 1"),
        ({"noise_type": "gauss"}, "problem.noise_type: 'gauss' is not accepted; accepted: add, zero_last"),
        ({"noise_type": "zero_last", "noise": 1.5}, "problem.noise"),
        ({"noise": -1.0}, "problem.noise"),
        ({"params": {"L": 0.0}}, "problem.L"),
        ({"samples": 5, "params": {"mu": 0.0}}, "problem.mu"),
    ],
)
def test_bad_settings_raise_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make_problem(config(**overrides))


def test_unknown_problem_name():
    with pytest.raises(ConfigError, match="problem.name: unknown problem 'x'; accepted: .*logistic.*quadratic"):
        make_problem(config(name="x"))


def test_stochastic_problem_has_no_sample_gradients():
    problem = make_problem(config())
    with pytest.raises(NotImplementedError):
        problem.grad(problem.x0(), np.array([0]))


@pytest.mark.parametrize("dim", [2, 3, 7, 100])
def test_full_grad_rows_are_full_grad_of_each_row_bit_for_bit(dim):
    problem = QuadraticProblem(dim)
    points = np.random.default_rng(dim).normal(size=(5, dim))
    rows = problem.full_grad_rows(points[::-1])  # a non-contiguous block too
    assert np.array_equal(rows, np.array([problem.full_grad(x) for x in points[::-1]]))


def test_dimension_two_has_a_gradient_of_dimension_two():
    problem = QuadraticProblem(2)
    x = np.array([1.0, 2.0])
    a = problem.L / 4 * np.array([[2.0, -1.0], [-1.0, 2.0]])
    np.testing.assert_allclose(problem.full_grad(x), a @ x + problem.L / 4 * np.array([1.0, 0.0]))
