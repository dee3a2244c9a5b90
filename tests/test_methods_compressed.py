"""Shadowheart SGD and QSGD: plans from the equilibrium time, weighted aggregation, byte accounting, over MPI."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import make_problem
from asyncopt_mpi.theory import equilibrium_time, shadowheart_plan

from conftest import attrs, read, run_mpi, sets, simulate

QUADRATIC = ["problem.name=quadratic", "problem.dim=40", "problem.noise=0.05"]
SLOW_COMM = ["workers.comm=sqrt", "workers.comm_scale=0.002", "workers.compute=sqrt", "workers.compute_scale=0.01"]


def model_plan(n: int, dim: int, K: int, ratio: float, compute_scale=0.01, comm_scale=0.002):
    h = compute_scale * np.sqrt(np.arange(1, n + 1))
    t = comm_scale * np.sqrt(np.arange(1, n + 1)) * K  # one more RandK copy costs K floats
    omega = dim / K - 1
    t_star = equilibrium_time(omega, ratio, h, t)
    return t_star, shadowheart_plan(t_star, omega, ratio, h, t, dim, K)


def test_shadowheart_rounds_follow_the_equilibrium_plan(tmp_path):
    n, dim, K, ratio = 6, 40, 2, 10.0
    path = simulate(tmp_path, "shadowheart_sgd", QUADRATIC + SLOW_COMM + [
        f"workers.n={n}", f"method.K={K}", f"method.sigma2_over_eps={ratio}", "method.lr=0.3", "stop.time=3"])
    t_star, plan = model_plan(n, dim, K, ratio)
    trace = read(path, "trace/t_star", "trace/grads_used", "trace/bytes_up")
    rounds = len(trace["trace/grads_used"])
    assert rounds > 5
    np.testing.assert_allclose(trace["trace/t_star"], t_star, rtol=1e-12)
    assert np.all(trace["trace/grads_used"] == plan["b"].sum())
    # Per worker, every round: b_i gradients, and one seed plus m_i copies of K values uploaded
    # (the round under way at the stop may already have some answers in).
    answered = read(path, "workers/jobs")["workers/jobs"]
    assert np.all((answered == rounds) | (answered == rounds + 1))
    assert np.array_equal(read(path, "workers/grads")["workers/grads"], plan["b"] * answered)
    assert np.array_equal(read(path, "workers/bytes_up")["workers/bytes_up"], 8 * (1 + plan["m"] * K) * answered)


def test_a_worker_too_slow_to_matter_sits_out(tmp_path):
    n = 6
    times = [0.01] * (n - 1) + [1000.0]
    path = simulate(tmp_path, "shadowheart_sgd", QUADRATIC + [
        f"workers.n={n}", f"workers.compute_times={times}", "workers.comm=fixed", "workers.comm_scale=0.001",
        "method.K=4", "method.lr=0.3", "stop.time=3"])
    jobs = read(path, "workers/jobs")["workers/jobs"]
    assert jobs[-1] == 0 and np.all(jobs[:-1] > 5)
    assert np.all(read(path, "trace/active_workers")["trace/active_workers"] == n - 1)


def test_weighted_aggregation_is_the_exact_gradient_without_noise(tmp_path):
    # Identity compression, exact gradients: sum_i w_i m_i b_i grad / sum_i w_i m_i b_i = grad.
    lr = 0.2
    overrides = ["problem.name=quadratic", "problem.dim=40", "problem.noise=0.0"]
    path = simulate(tmp_path, "shadowheart_sgd", overrides + SLOW_COMM + [
        "workers.n=5", "method.compressor=identity", "method.lr=0.2", "stop.iterations=1",
        "output.snapshot_every=0"])
    problem = make_problem(load_config(None, overrides + ["stop.time=1"], backend="sim").problem)
    x0 = problem.x0()
    np.testing.assert_allclose(read(path, "snapshots/x")["snapshots/x"][-1], x0 - lr * problem.full_grad(x0), atol=1e-12)


def test_estimated_times_find_the_model_plan(tmp_path):
    n, dim, K, ratio = 5, 40, 2, 10.0
    path = simulate(tmp_path, "shadowheart_sgd", QUADRATIC + SLOW_COMM + [
        f"workers.n={n}", f"method.K={K}", f"method.sigma2_over_eps={ratio}", "method.estimate_times=true",
        "method.lr=0.3", "stop.time=5"])
    t_star, _ = model_plan(n, dim, K, ratio)
    found = read(path, "trace/t_star")["trace/t_star"]
    assert np.all(np.isnan(found[:3]))  # the calibration rounds
    np.testing.assert_allclose(found[3:], t_star, rtol=1e-6)


@pytest.mark.slow
def test_shadowheart_and_qsgd_converge(tmp_path):
    for method, lr in (("shadowheart_sgd", 0.3), ("qsgd", 0.02)):
        path = simulate(tmp_path, method, QUADRATIC + SLOW_COMM + ["workers.n=6", f"method.lr={lr}", "stop.time=20"],
                        name=method)
        subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
        assert subopt[-1] < 0.5 * subopt[0], method


def test_qsgd_quantized_messages_are_small(tmp_path):
    dim, n = 40, 4
    path = simulate(tmp_path, "qsgd", QUADRATIC + [f"workers.n={n}", "method.compressor=quantize", "method.levels=4",
                                                  "method.lr=0.2", "stop.time=1"])
    rounds = len(read(path, "trace/iteration")["trace/iteration"])
    per_message = 8 * (1 + -(-dim // 8))  # norm + int8 levels packed in float64 words
    assert np.all(read(path, "workers/bytes_up")["workers/bytes_up"] >= per_message * rounds)
    assert read(path, "workers/bytes_up")["workers/bytes_up"].max() <= per_message * (rounds + 1)


@pytest.mark.mpi
def test_shadowheart_uploads_far_fewer_bytes_than_minibatch_over_mpi(tmp_path):
    dim, K = 100, 25
    common = dict(
        problem={"name": "quadratic", "dim": dim, "noise": 0.01},
        workers={"compute": "fixed", "compute_profile": "equal", "compute_scale": 0.001, "comm": "fixed",
                 "comm_scale": 0.0004},
        # a count of rounds, not of seconds: on a loaded machine a run of a few seconds may finish few rounds
        # (40 rounds: about 1.5 s idle, f - f* falls below 1% of its start in the simulator)
        stop={"iterations": 40, "time": 60.0}, output={"snapshot_every": 0.2},
    )
    per_round = {}
    for method, options in (("shadowheart_sgd", {"lr": 0.5, "K": K}), ("minibatch_sgd", {"lr": 0.5})):
        path = tmp_path / f"{method}.h5"
        # Four workers: the plan already sends about 1 copy of K values each (ratio 3.8, as with eight).
        done = run_mpi(5, ["run", "--method", method, "--output", str(path)] + sets(method=options, **common), timeout=90)
        assert done.returncode == 0, done.stderr
        assert attrs(path)["status"] == "completed"
        bytes_up = read(path, "trace/bytes_up")["trace/bytes_up"]
        per_round[method] = np.median(np.diff(np.r_[0, bytes_up]))
        subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
        assert subopt[-1] < 0.5 * subopt[0], method
    assert per_round["minibatch_sgd"] / per_round["shadowheart_sgd"] >= dim / (2 * K)
