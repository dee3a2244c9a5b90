"""SPIDER and SYNTHESIS: SPIDER's estimator recursion and SYNTHESIS's semi-asynchronous rule replayed exactly, convergence in the simulator and over mpiexec."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi import ConfigError
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.methods.spider import Spider
from asyncopt_mpi.methods.synthesis import Synthesis
from asyncopt_mpi.problems import make_problem

from conftest import attrs, events, read, registered_methods, run_mpi, sets, simulate

FINITE_QUADRATIC = ["problem.name=quadratic", "problem.dim=12", "problem.samples=40", "problem.lam=0.5"]


class RecordedSpider(Spider):
    """SPIDER that keeps the indices of every difference batch it draws, in order."""

    name = "spider_recorded"
    batches: list[np.ndarray] = []

    def batch_indices(self, server):
        indices = super().batch_indices(server)
        self.batches.append(indices.copy())
        return indices


class RecordedSynthesis(Synthesis):
    """SYNTHESIS that keeps every difference job it gives and the order in which their results are applied."""

    name = "synthesis_recorded"
    jobs: dict[int, tuple[int, int, np.ndarray]] = {}  # job id -> (version, previous, indices)
    applied: list[tuple[int, int, int]] = []  # (job id, iteration at arrival, delay)

    def give_differences(self, server, workers, version, previous):
        ids, indices = super().give_differences(server, workers, version, previous)
        for job_id, row in zip(ids.tolist(), indices):
            self.jobs[job_id] = (version, previous, row.copy())
        return ids, indices

    def on_result(self, server, worker, result):
        if not self.full:
            self.applied.append((result.job_id, server.version, result.delay))
        return super().on_result(server, worker, result)


@pytest.fixture
def recorded():
    """The two recording methods, registered for one test."""
    RecordedSpider.batches.clear()
    RecordedSynthesis.jobs.clear()
    RecordedSynthesis.applied.clear()
    with registered_methods(RecordedSpider, RecordedSynthesis):
        yield


def iterates(path) -> tuple[np.ndarray, np.ndarray]:
    """x_k for k = 0, 1, ... (one snapshot per step) and the trace's full column (row k: v_k's kind)."""
    data = read(path, "snapshots/x", "snapshots/iteration", "trace/full")
    iterations = data["snapshots/iteration"]
    _, first = np.unique(iterations, return_index=True)
    assert np.array_equal(iterations[first], np.arange(len(first))), "a step without its snapshot"
    return data["snapshots/x"][first], data["trace/full"]


def problem_of(overrides: list[str]):
    return make_problem(load_config(None, overrides + ["stop.time=1"], backend="sim").problem)


def test_spider_estimator_is_the_path_integrated_recursion(tmp_path, recorded):
    lr, q, S, steps = 0.4, 4, 3, 14
    path = simulate(tmp_path, "spider_recorded", FINITE_QUADRATIC + [
        "workers.n=3", "workers.compute=exponential", f"method.lr={lr}", f"method.q={q}", f"method.S={S}",
        f"stop.iterations={steps}", "output.snapshot_every=0"])
    xs, full = iterates(path)
    assert len(xs) == steps + 1
    assert full.tolist() == [float(k % q == 0) for k in range(steps)]  # a full gradient exactly every q steps
    grads = read(path, "trace/grads_used")["trace/grads_used"]
    assert grads.tolist() == [40 if k % q == 0 else S for k in range(steps)]
    problem, batches = problem_of(FINITE_QUADRATIC), iter(RecordedSpider.batches)
    x, previous, v = problem.x0(), None, None
    for k in range(steps):
        if k % q == 0:
            v = problem.full_grad(x)
        else:  # v_k = grad_S(x_k) - grad_S(x_{k-1}) + v_{k-1}
            indices = next(batches)
            v = problem.grad(x, indices) - problem.grad(previous, indices) + v
        previous, x = x, x - lr * v
        np.testing.assert_allclose(xs[k + 1], x, rtol=0, atol=1e-10, err_msg=f"step {k}")


def test_synthesis_applies_delayed_differences_on_arrival_within_each_epoch(tmp_path, recorded):
    lr, q, S, steps = 0.2, 6, 3, 30
    path = simulate(tmp_path, "synthesis_recorded", FINITE_QUADRATIC + [
        "workers.n=4", "workers.compute=exponential", f"method.lr={lr}", f"method.q={q}", f"method.S={S}",
        f"stop.iterations={steps}", "output.snapshot_every=0"])
    xs, full = iterates(path)
    assert len(xs) == steps + 1
    assert full.tolist() == [float(k % q == 0) for k in range(steps)]
    problem, applied = problem_of(FINITE_QUADRATIC), iter(RecordedSynthesis.applied)
    x, v, delays = problem.x0(), None, []
    for k in range(steps):
        if k % q == 0:  # synchronous: the full gradient at x_k
            v, epoch = problem.full_grad(x), k
        else:  # asynchronous: the difference a worker took at (x_j, x_{j-1}), applied at k = j + delay
            job_id, iteration, delay = next(applied)
            j, previous, indices = RecordedSynthesis.jobs[job_id]
            assert iteration == k and previous == j - 1 and delay == k - j
            assert epoch < j <= k, "a difference from another epoch was applied"
            v = v + problem.grad(xs[j], indices) - problem.grad(xs[j - 1], indices)
            delays.append(delay)
        x = x - lr * v
        np.testing.assert_allclose(xs[k + 1], x, rtol=0, atol=1e-10, err_msg=f"step {k}")
    assert max(delays) >= 2 and min(delays) == 0  # differences were applied both fresh and delayed
    # Epoch barriers abandoned the differences still running: more were given than applied, and none
    # of them came back late to be dropped (a barrier that waited for them would show rejected events).
    assert len(RecordedSynthesis.jobs) > len(RecordedSynthesis.applied) + 4
    assert events(path)["accepted"].all()


def test_synthesis_with_one_worker_is_spider(tmp_path):
    """No delays: the semi-asynchronous rule reduces to SPIDER's recursion (same draws, same points)."""
    overrides = FINITE_QUADRATIC + ["workers.n=1", "method.lr=0.3", "method.q=5", "method.S=4", "stop.iterations=12",
                                    "output.snapshot_every=0"]
    spider = iterates(simulate(tmp_path, "spider", overrides, name="spider"))[0]
    synthesis = iterates(simulate(tmp_path, "synthesis", overrides, name="synthesis"))[0]
    np.testing.assert_allclose(synthesis, spider, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["spider", "synthesis"])
def test_spider_and_synthesis_converge_on_the_finite_sum_quadratic_in_sim(tmp_path, method):
    # mu = 0.1: strongly convex, so f - f* falls within a short run (with mu = 1e-6, f* lies 1/mu steps away).
    path = simulate(tmp_path, method, FINITE_QUADRATIC + [
        "problem.mu=0.1", "workers.n=4", "workers.compute=sqrt", "workers.compute_scale=0.01", "method.lr=0.3",
        "stop.time=5"])
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert attrs(path)["status"] == "completed"
    assert subopt[-1] < 1e-2 * subopt[0]


@pytest.mark.parametrize("method", ["spider", "synthesis"])
def test_spider_and_synthesis_need_a_finite_sum(tmp_path, method):
    from asyncopt_mpi.runtime.session import simulate as run_config

    config = load_config(None, ["problem.samples=0", "workers.n=2", "stop.time=1"], method=method, backend="sim",
                         output=str(tmp_path / "x.h5"))
    with pytest.raises(ConfigError, match="finite-sum"):
        run_config(config)


@pytest.mark.mpi
@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["spider", "synthesis"])
def test_spider_and_synthesis_over_mpi_complete_and_decrease_f(tmp_path, method):
    path = tmp_path / f"{method}.h5"
    args = ["run", "--method", method, "--output", str(path)] + sets(
        problem={"name": "quadratic", "dim": 12, "samples": 40, "lam": 0.5, "mu": 0.1},
        method={"lr": 0.3, "q": 5, "S": 4},
        workers={"compute": "sqrt", "compute_scale": 0.002},
        # A gradient budget, not a time, so that a loaded machine still takes enough steps; the time caps a hang.
        # (1000: about 1.4 s idle, 14 full steps and 55 others in the simulator, f - f* below 0.1% of its start.)
        stop={"gradients": 1000, "time": 60.0}, output={"snapshot_every": 0.05})
    done = run_mpi(3, args, timeout=100)
    assert done.returncode == 0, done.stderr
    found = attrs(path)
    assert found["status"] == "completed" and found["stop_reason"].startswith("gradients"), found["stop_reason"]
    full = read(path, "trace/full")["trace/full"]
    assert full[0] == 1 and full.sum() >= 2 and (full == 0).sum() >= 10  # both kinds of step ran
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert subopt[-1] < 0.1 * subopt[0]
