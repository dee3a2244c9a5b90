"""Logistic regression's stochastic gradients on the simulator's bulk path (issue 26, freya-fig2) change no number.

A gradient's sample indices are drawn as a noise model's draws (problems.base.SampledTerms:
size=(k, batch) gives the numbers of k calls) and the gradients of a block of points are
computed at once (LogisticProblem.grad_rows). The files of async_sgd and rennala_sgd with
runs, with the per-event path (runs off) and with every gradient through stochastic_grad (a
problem without a noise model, the path of 444d8d8) must be equal, dataset by dataset and bit
for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.problems import LogisticProblem
from asyncopt_mpi.problems.base import Problem
from asyncopt_mpi.runtime.sim import runs as sim_runs, server as sim
from same_files import assert_bulk_path_is_the_event_path, assert_same_files, registered, simulate

BASE = ["problem.name=logistic", "problem.dim=6", "problem.samples=300", "problem.classes=10", "workers.n=40",
        "workers.compute=sqrt", "method.lr=0.05", "output.snapshot_every=0.7"]
CASES = [
    ("async_sgd", 0, ["stop.gradients=1500"]),
    ("async_sgd", 1, ["method.batch=3", "problem.l2=0.01", "stop.iterations=1200"]),
    ("async_sgd", 2, ["workers.compute=fixed", "workers.compute_scale=0.1", "stop.time=15"]),
    ("rennala_sgd", 0, ["method.batch=20", "stop.gradients=1500"]),
    ("rennala_sgd", 1, ["method.batch=4", "problem.l2=0.01", "workers.comm=sqrt", "workers.comm_scale=1e-3",
                        "stop.gradients=1500"]),
    ("rennala_sgd", 2, ["method.batch=300", "stop.gradients=1500"]),
]


class EveryGradientLogistic(LogisticProblem):
    """Logistic regression without a noise model nor grad_rows: the simulator calls stochastic_grad for every
    gradient and grad for every job's own indices."""

    name = "logistic_every_gradient"
    grad_rows = Problem.grad_rows

    def noise_model(self, batch):
        return None


@pytest.fixture
def reference_problem():
    with registered(EveryGradientLogistic) as name:
        yield name


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, seed, extra", CASES, ids=[f"{m}-seed{s}" for m, s, _ in CASES])
def test_logistic_runs_and_events_give_the_stochastic_grad_files_bit_for_bit(tmp_path, monkeypatch,
                                                                             reference_problem, method, seed, extra):
    overrides = BASE + extra + [f"workers.seed={seed}", f"problem.seed={seed}"]
    if seed == 1:  # flushes in chunks of 7 steps with prefix sums row by row, as MNIST's d = 7840 has them
        for module in (sim, sim_runs):
            monkeypatch.setattr(module, "CHUNK_FLOATS", 7 * 60)
        monkeypatch.setattr(sim_runs, "PREFIX_LOOP_WIDTH", 60)
    assert_bulk_path_is_the_event_path(tmp_path, monkeypatch, method, overrides, reference_problem)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, extra", [
    ("minibatch_sgd", ["method.batch=2", "stop.gradients=1500"]),  # deferred sums of results read one by one
    ("async_sgd", ["problem.classes=2", "stop.gradients=1500"]),  # binary: grad_rows point by point
    ("async_sgd", ["workers.data_split=partition", "stop.gradients=1500"]),  # shards: no noise model, per event
    ("freya_page", ["stop.gradients=1500"]),  # jobs of their own indices: deferred terms of the sums
    ("freya_page", ["method.gradient_sampling=permutation", "problem.l2=0.01", "stop.gradients=1500"]),
    ("soviet_page", ["stop.gradients=3000"]),
])
def test_other_paths_give_the_stochastic_grad_files_bit_for_bit(tmp_path, reference_problem, method, extra):
    overrides = BASE + extra
    assert simulate(tmp_path / "model.h5", method, overrides) == 0
    assert simulate(tmp_path / "reference.h5", method, overrides + [f"problem.name={reference_problem}"]) == 0
    assert assert_same_files(tmp_path / "model.h5", tmp_path / "reference.h5") >= 750


@pytest.mark.parametrize("classes, batch, l2", [(10, 1, 0.0), (10, 4, 0.0), (10, 1, 0.1), (3, 30, 0.1), (2, 2, 0.0)])
def test_grad_rows_is_grad_of_each_point_bit_for_bit(classes, batch, l2):
    rng = np.random.default_rng(classes + batch)
    features = rng.random((200, 12)) * (rng.random((200, 12)) < 0.4)  # zeros as in images
    features[:, 1] *= -1.0  # and negative features: -0.0 products
    problem = LogisticProblem(features, rng.integers(classes, size=200), classes=classes, l2=l2)
    points = rng.standard_normal((70, problem.dim))
    points[:, ::5], points[:, 1::7] = 0.0, -0.0
    indices = rng.integers(200, size=(70, batch))
    block = problem.grad_rows(points, indices)
    for row, x in enumerate(points):
        expected = problem.grad(x, indices[row])
        assert np.array_equal(block[row], expected), row
        assert np.array_equal(np.signbit(block[row]), np.signbit(expected)), row


def test_a_block_of_index_draws_is_the_draws_of_one_call_per_gradient():
    problem = LogisticProblem(np.zeros((60_000, 3)), np.arange(60_000) % 2)  # binary: dim = 3
    model = problem.noise_model(3)
    block, scalar = np.random.default_rng(7), np.random.default_rng(7)
    draws = np.empty((50, 3))
    model.draw(block, draws[:20])
    model.draw(block, draws[20:])
    expected = [problem.sample_indices(scalar, 3).tolist() for _ in range(50)]
    assert draws.astype(np.int64).tolist() == expected
    assert block.random() == scalar.random()  # the stream goes on where the per-gradient calls leave it
    assert problem.noise_model(4) is None  # a gradient's 4 indices do not fit a row of dim = 3 floats
