"""The quadratic's zero_last noise on the simulator's bulk path (issue 29, item 6) changes no number.

zero_last's one Binomial(batch, p) draw per gradient is made in blocks per worker and applied
to blocks of gradients (problems.noise.ZeroLastNoise). The files of async_sgd and rennala_sgd
with runs, with the per-event path (runs off) and with every gradient through
QuadraticProblem.stochastic_grad (a problem without a noise model, as before) must be equal,
dataset by dataset and bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.problems import QuadraticProblem
from asyncopt_mpi.problems.noise import ZeroLastNoise
from same_files import EveryGradientQuadratic, assert_bulk_path_is_the_event_path, registered

BASE = ["problem.dim=30", "problem.noise_type=zero_last", "workers.n=60", "workers.compute=sqrt", "method.lr=0.02",
        "output.snapshot_every=0.7"]
CASES = [
    ("async_sgd", 0, ["problem.noise=0.3", "stop.gradients=1500"]),
    ("async_sgd", 1, ["problem.noise=0.05", "method.batch=3", "stop.iterations=1200"]),
    ("async_sgd", 2, ["problem.noise=0.5", "workers.compute=fixed", "workers.compute_scale=0.1", "stop.time=10"]),
    ("rennala_sgd", 0, ["problem.noise=0.3", "method.batch=20", "stop.gradients=1500"]),
    ("rennala_sgd", 1, ["problem.noise=0.1", "method.batch=1500", "stop.gradients=6000"]),
    ("rennala_sgd", 2, ["problem.noise=0.5", "method.batch=10", "workers.comm=sqrt", "workers.comm_scale=1e-3",
                        "stop.time=5"]),
]


@pytest.fixture
def reference_problem():
    with registered(EveryGradientQuadratic) as name:
        yield name


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, seed, extra", CASES, ids=[f"{m}-seed{s}" for m, s, _ in CASES])
def test_zero_last_runs_and_events_give_the_stochastic_grad_files_bit_for_bit(tmp_path, monkeypatch,
                                                                              reference_problem, method, seed, extra):
    overrides = BASE + extra + [f"workers.seed={seed}"]
    assert_bulk_path_is_the_event_path(tmp_path, monkeypatch, method, overrides, reference_problem)


@pytest.mark.parametrize("batch, p", [(1, 0.001), (1, 0.5), (1, 1.0), (3, 0.3), (40, 0.9), (1000, 0.2)])
def test_a_block_of_draws_is_the_draws_of_one_call_per_gradient(batch, p):
    # Large batch * p takes numpy's other binomial algorithm (BTPE): it must give the scalar calls' numbers too.
    model = ZeroLastNoise(batch, p)
    block, scalar = np.random.default_rng(7), np.random.default_rng(7)
    draws = np.empty((50, 1))
    model.draw(block, draws[:20])
    model.draw(block, draws[20:])
    expected = [scalar.binomial(batch, p) / (batch * p) for _ in range(50)]
    assert draws[:, 0].tolist() == expected
    assert block.random() == scalar.random()  # the stream goes on where the scalar calls leave it


def test_a_block_of_zero_last_gradients_is_stochastic_grad_of_each_point_bit_for_bit():
    problem = QuadraticProblem(12, noise=0.4, noise_type="zero_last")
    rng = np.random.default_rng(3)
    points = rng.standard_normal((9, 12))
    for row, last in enumerate([-1, 0, 1, 5, 5, 10, 11]):  # prog(x) at each edge, a zero point, the full length
        points[row, last + 1:] = 0.0
    points[7, [2, 6]] = 0.0  # zeros inside the prefix do not end it
    points[8, 4] = np.nan  # a nan counts as nonzero (as np.flatnonzero has it)
    points[8, 5:] = 0.0
    model = problem.noise_model(1)
    draws = np.empty((len(points), 1))
    model.draw(np.random.default_rng(11), draws)
    gradients = problem.full_grad_rows(points)
    model.apply(gradients, points, draws)
    stream = np.random.default_rng(11)
    for row, x in enumerate(points):
        expected = problem.stochastic_grad(x, stream, 1)
        assert np.array_equal(gradients[row], expected, equal_nan=True), row
        assert np.array_equal(np.signbit(gradients[row]), np.signbit(expected)), row


def test_noise_model_follows_additive_noise_for_other_problems():
    class Plain(QuadraticProblem):  # a plugin that keeps every gradient on stochastic_grad (tests/test_worker_exits.py)
        def additive_noise(self, batch):
            return None

    assert Plain(10, noise=0.1).noise_model(4) is None
    additive = QuadraticProblem(10, noise=0.1).noise_model(4)
    assert additive.width == 10 and additive.scale == 0.1 / 2
    assert QuadraticProblem(10, noise=0.0, noise_type="zero_last").noise_model(1).width == 0  # exact: no draw
    assert QuadraticProblem(10, samples=20).noise_model(1).width == 1  # a finite sum's draws are its terms' indices
