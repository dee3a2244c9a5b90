"""Freya PAGE's method.full_gradient = "allreduce": local sums plus one ring AllReduce (seed 001's note, issue 27)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import make_problem

from conftest import attrs, read, run_mpi, sets, simulate

QUADRATIC = ["problem.name=quadratic", "problem.dim=30", "problem.samples=60", "problem.lam=0.5"]
DEMO = str(Path(__file__).resolve().parents[1] / "jobs" / "demo.toml")
LOGISTIC = {"name": "logistic", "samples": 300, "dim": 10}


def ring_allreduce_seconds(comm_times: list[float], dim: int) -> float:
    """The cost model written out: p = n + 1 ranks, 2(p - 1) steps of a ceil(d/p)-float chunk, the slowest link."""
    ranks = len(comm_times) + 1
    return 2 * (ranks - 1) * math.ceil(dim / ranks) * max(comm_times)


def first_step_is_the_full_gradient(path, lr: float) -> None:
    """x^1 = x^0 - lr * (1/m) sum of all m gradients at x^0, to rounding."""
    problem = make_problem(load_config(None, QUADRATIC + ["stop.time=1"], backend="sim").problem)
    snapshots = read(path, "snapshots/x", "snapshots/iteration")
    first = int(np.flatnonzero(snapshots["snapshots/iteration"] == 1)[0])
    x0 = problem.x0()
    every_term = np.mean([problem.grad(x0, np.array([j])) for j in range(problem.n_samples)], axis=0)
    np.testing.assert_allclose(snapshots["snapshots/x"][first], x0 - lr * every_term, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampling, block", [("unreceived", 1), ("unreceived", 7), ("permutation", 1)])
def test_allreduce_gives_the_sum_of_all_m_gradients_when_workers_race(tmp_path, sampling, block):
    lr = 0.3
    path = simulate(tmp_path, "freya_page", QUADRATIC + [
        "workers.n=6", "workers.compute=exponential", "workers.comm=fixed", "workers.comm_scale=0.001",
        f"method.lr={lr}", 'method.full_gradient="allreduce"', f'method.gradient_sampling="{sampling}"',
        f"method.block={block}", "stop.iterations=1", "output.snapshot_every=0"])
    first_step_is_the_full_gradient(path, lr)


def test_allreduce_collection_time_follows_the_ring_cost_model(tmp_path):
    # Equal compute (0.01 s a gradient) and a permutation of [m]: the 3 workers finish their 20
    # gradients each together at 0.2 s, uploading nothing; then the reduction lasts as long as the
    # slowest link needs for 2 n ceil(d/(n+1)) = 48 floats. p = 1: every step is a full gradient.
    n, m, dim, tau, comm = 3, 60, 30, 0.01, [0.001, 0.003, 0.002]
    common = QUADRATIC + [f"workers.n={n}", "workers.compute=fixed", f"workers.compute_times={[tau] * n}",
                          "workers.comm=fixed", f"workers.comm_times={comm}", "method.lr=0.3", "method.p=1",
                          'method.gradient_sampling="permutation"', "stop.iterations=5"]
    path = simulate(tmp_path, "freya_page", common + ['method.full_gradient="allreduce"'], name="allreduce")
    trace = read(path, "trace/time", "trace/full", "trace/grads_used")
    assert trace["trace/full"].all() and set(trace["trace/grads_used"].tolist()) == {m}
    step = m // n * tau + ring_allreduce_seconds(comm, dim)
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], trace["trace/time"]])), [step] * 5, rtol=1e-9)
    # Per gradient, every result pays its own upload of d floats: at least 60 uploads over the
    # three links, more than the reduction's time at these speeds.
    path = simulate(tmp_path, "freya_page", common, name="per_gradient")
    per_gradient = read(path, "trace/time")["trace/time"][0]
    assert per_gradient >= m / sum(1 / (tau + t * dim) for t in comm) - 1e-9 > step


def test_allreduce_converges_in_sim(tmp_path):
    path = simulate(tmp_path, "freya_page", [
        "problem.name=logistic", "problem.samples=300", "problem.dim=10", "workers.n=5", "workers.compute=sqrt",
        "workers.compute_scale=0.01", "workers.comm=fixed", "workers.comm_scale=0.001", "method.lr=1.0",
        'method.full_gradient="allreduce"', "stop.time=60"])
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert subopt[-1] < 0.2 * subopt[0]
    full = read(path, "trace/full")["trace/full"]
    assert full.sum() >= 2 and (full == 0).any()


def test_an_unknown_full_gradient_is_one_line_and_exit_2(tmp_path):
    done = CliRunner().invoke(cli, ["run", DEMO, "--backend", "sim", "--method", "freya_page",
                                    "--set", "problem.samples=50", "--set", f'method.full_gradient="{"x" * 500}"',
                                    "--output", str(tmp_path / "bad.h5")])
    assert done.exit_code == 2
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("asyncopt: error: method.full_gradient: must be one of"), lines
    assert "'allreduce'" in lines[0] and len(lines[0]) < 400


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_allreduce_over_mpi_is_exact_charges_the_reduction_and_converges(tmp_path):
    # A long step: f - f* falls to about 16% of its start in 2000 gradients (in the simulator; under 1 s idle).
    lr, tau, theta = 6.0, 0.0005, 0.0001
    share = 2 * (3 - 1) * math.ceil(LOGISTIC["dim"] / 3)  # floats a worker sends in a ring AllReduce over 3 ranks

    # One run, a snapshot after every result (the first step is the full gradient at x^0).
    path = tmp_path / "freya.h5"
    args = ["run", "--method", "freya_page", "--output", str(path)] + sets(
        problem=LOGISTIC, method={"lr": lr, "full_gradient": "allreduce", "p": 0.2, "S": 10},
        workers={"compute": "fixed", "compute_times": [tau, tau], "comm": "fixed", "comm_scale": theta},
        stop={"gradients": 2000, "time": 90.0}, output={"snapshot_every": 0})
    done = run_mpi(3, args, timeout=120)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["stop_reason"].startswith("gradients"), attrs(path)["stop_reason"]
    problem = make_problem(load_config(None, [f"problem.{k}={v!r}" for k, v in LOGISTIC.items()]
                                       + ["stop.time=1"], backend="sim").problem)
    snapshots = read(path, "snapshots/x", "snapshots/iteration")
    x1 = snapshots["snapshots/x"][int(np.flatnonzero(snapshots["snapshots/iteration"] == 1)[0])]
    x0 = problem.x0()
    np.testing.assert_allclose(x1, x0 - lr * problem.full_grad(x0), rtol=0, atol=1e-12)

    # Every job's modelled seconds add up in /workers/busy_time. Worker i sent b_i blocks (one
    # gradient, no upload), c_i differences (two gradients, d floats) and one share of each of
    # the R reductions (no gradient, 2 n ceil(d/(n+1)) floats): from its jobs and gradients,
    # c_i = grads_i - jobs_i + R. Per gradient, the blocks would pay d floats each as well.
    found = read(path, "workers/busy_time", "workers/grads", "workers/jobs", "trace/full")
    reductions = int(found["trace/full"].sum())
    grads, jobs = found["workers/grads"], found["workers/jobs"]
    differences = grads - jobs + reductions
    assert reductions >= 2 and (differences > 0).all()
    modelled = tau * grads + theta * (LOGISTIC["dim"] * differences + share * reductions)
    np.testing.assert_allclose(found["workers/busy_time"], modelled, rtol=1e-9)
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert subopt[-1] < 0.3 * subopt[0]
