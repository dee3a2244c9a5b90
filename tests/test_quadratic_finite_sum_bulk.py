"""The quadratic finite sum's gradients on the simulator's bulk path (freya-fig1's setting) change no number.

A gradient's sample indices are drawn as a noise model's draws (problems.base.SampledTerms) and
the gradients of a block of points are computed at once (QuadraticProblem.grad_rows). The files
of async_sgd and rennala_sgd with runs, with the per-event path and with every gradient through
stochastic_grad (a problem without a noise model) must be equal, dataset by dataset and bit for
bit; so must those of the methods whose jobs carry their own indices.
"""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.problems import QuadraticProblem
from same_files import (EveryGradientQuadratic, assert_bulk_path_is_the_event_path, assert_same_files, registered,
                        simulate)

BASE = ["problem.name=quadratic", "problem.dim=12", "problem.samples=40", "problem.lam=2.0", "workers.n=30",
        "workers.compute=sqrt", "output.snapshot_every=2.0"]


@pytest.fixture
def reference_problem():
    with registered(EveryGradientQuadratic) as name:
        yield name


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, seed, extra", [
    ("async_sgd", 0, ["method.lr=0.05", "stop.gradients=3000"]),
    ("async_sgd", 1, ["method.lr=0.05", "method.batch=3", "stop.gradients=4500"]),
    ("rennala_sgd", 0, ["method.lr=0.1", "method.batch=6", "stop.gradients=3000"]),
    ("rennala_sgd", 1, ["method.lr=0.1", "method.batch=12", "workers.comm=sqrt", "workers.comm_scale=1e-3",
                        "stop.gradients=3000"]),
], ids=["async-b1", "async-b3", "rennala-S6", "rennala-S12-comm"])
def test_runs_and_events_give_the_stochastic_grad_files_bit_for_bit(tmp_path, monkeypatch, reference_problem,
                                                                    method, seed, extra):
    overrides = BASE + extra + [f"workers.seed={seed}", f"problem.seed={seed}"]
    assert_bulk_path_is_the_event_path(tmp_path, monkeypatch, method, overrides, reference_problem)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, extra", [
    ("freya_page", ["method.lr=0.4", "stop.gradients=3000"]),
    ("freya_page", ["method.lr=0.4", "method.gradient_sampling=permutation", "stop.gradients=3000"]),
    ("soviet_page", ["method.lr=0.4", "stop.gradients=3000"]),
    ("spider", ["method.lr=0.2", "stop.gradients=3000"]),
    ("synthesis", ["method.lr=0.05", "stop.gradients=3000"]),
    ("async_sgd", ["method.lr=0.05", "workers.data_split=partition", "stop.gradients=1500"]),  # shards: per event
])
def test_other_paths_give_the_stochastic_grad_files_bit_for_bit(tmp_path, reference_problem, method, extra):
    overrides = BASE + extra
    assert simulate(tmp_path / "model.h5", method, overrides) == 0
    assert simulate(tmp_path / "reference.h5", method, overrides + [f"problem.name={reference_problem}"]) == 0
    assert assert_same_files(tmp_path / "model.h5", tmp_path / "reference.h5") >= 750


@pytest.mark.parametrize("batch", [1, 2, 5, 12])
def test_grad_rows_is_grad_of_each_point_bit_for_bit(batch):
    rng = np.random.default_rng(batch)
    problem = QuadraticProblem(12, lam=2.0, samples=40, seed=batch)
    points = rng.standard_normal((70, problem.dim))
    points[:, ::5], points[:, 1::7] = 0.0, -0.0
    indices = rng.integers(40, size=(70, batch))
    block = problem.grad_rows(points, indices)
    for row, x in enumerate(points):
        expected = problem.grad(x, indices[row])
        assert np.array_equal(block[row], expected), row
        assert np.array_equal(np.signbit(block[row]), np.signbit(expected)), row


def test_a_finite_sum_has_index_draws_and_a_stochastic_quadratic_has_none():
    finite_sum = QuadraticProblem(12, samples=40)
    model = finite_sum.noise_model(3)
    block, scalar = np.random.default_rng(7), np.random.default_rng(7)
    draws = np.empty((30, 3))
    model.draw(block, draws)
    assert draws.astype(np.int64).tolist() == [finite_sum.sample_indices(scalar, 3).tolist() for _ in range(30)]
    assert finite_sum.noise_model(13) is None  # 13 indices do not fit a row of dim = 12 floats
    assert QuadraticProblem(12, noise=0.5).noise_model(3).width == 12  # additive noise: dim normals
