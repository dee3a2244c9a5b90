"""The SGD family's defining behaviours, read back from real results files (simulator runtime)."""

from __future__ import annotations


import numpy as np
import pytest

from asyncopt_mpi.methods.assignment import Assignment
from asyncopt_mpi.problems import PROBLEMS
from asyncopt_mpi.problems.base import Problem

from conftest import attrs, events, read, replay_collection, simulate

QUADRATIC = ["problem.name=quadratic", "problem.dim=20", "problem.noise=0.05"]


def test_rennala_uses_exactly_s_fresh_gradients_per_step(tmp_path):
    path = simulate(tmp_path, "rennala_sgd", QUADRATIC + [
        "workers.n=6", "workers.compute=exponential", "method.batch=4", "method.lr=0.5", "stop.time=3"])
    steps = replay_collection(path, batch=4)
    trace = read(path, "trace/grads_used", "trace/max_delay")
    assert steps == len(trace["trace/grads_used"]) > 10
    assert np.all(trace["trace/grads_used"] == 4) and np.all(trace["trace/max_delay"] == 0)
    assert not events(path)["accepted"].all()  # stale gradients did occur and were dropped


def test_rennala_batch_from_sigma2_and_eps(tmp_path):
    path = simulate(tmp_path, "rennala_sgd", QUADRATIC + [
        "workers.n=4", "method.sigma2=0.5", "method.eps=0.1", "method.lr=0.5", "stop.time=1"])
    assert np.all(read(path, "trace/grads_used")["trace/grads_used"] == 5)  # ceil(0.5 / 0.1)


def test_ringmaster_never_applies_a_gradient_with_delay_at_least_r(tmp_path):
    R = 3
    path = simulate(tmp_path, "ringmaster_asgd", QUADRATIC + [
        "workers.n=8", "workers.compute=exponential", f"method.R={R}", "method.lr=0.1", "stop.time=2"])
    data = events(path)
    assert np.all(data["delay"][data["accepted"] == 1] < R)
    assert np.all(data["delay"][data["accepted"] == 0] >= R)
    assert (data["accepted"] == 0).any() and (data["accepted"] == 1).any()
    assert read(path, "trace/max_delay")["trace/max_delay"].max() < R


def test_async_max_delay_drops_older_gradients(tmp_path):
    path = simulate(tmp_path, "async_sgd", QUADRATIC + [
        "workers.n=8", "workers.compute=sqrt", "method.max_delay=4", "method.lr=0.1", "stop.time=1"])
    data = events(path)
    assert np.array_equal(data["accepted"] == 1, data["delay"] <= 4)
    assert (data["accepted"] == 0).any()


def test_delay_adaptive_steps_shrink_with_delay(tmp_path):
    lr, L, tau_c = 0.2, 1.0, 3
    path = simulate(tmp_path, "async_sgd", QUADRATIC + [
        "workers.n=10", "workers.compute=sqrt", "method.delay_adaptive=true", f"method.lr={lr}",
        f"method.L={L}", f"method.tau_c={tau_c}", "stop.time=1"])
    trace = read(path, "trace/max_delay", "trace/lr")
    delay, used = trace["trace/max_delay"], trace["trace/lr"]
    expected = np.where(delay <= tau_c, lr, np.minimum(lr, 1.0 / (4 * L * np.maximum(delay, 1))))
    np.testing.assert_allclose(used, expected, rtol=1e-12)
    assert used.min() < lr and (delay > tau_c).any()
    # Larger delays never get larger steps.
    order = np.argsort(delay, kind="stable")
    assert np.all(np.diff(used[order]) <= 1e-15)


def test_hero_uses_only_the_fastest_worker(tmp_path):
    path = simulate(tmp_path, "hero_sgd", QUADRATIC + [
        "workers.n=4", "workers.compute_times=[0.3, 0.1, 0.2, 0.4]", "method.lr=0.5", "stop.time=2.05"])
    data = events(path)
    assert set(data["worker"].tolist()) == {1}
    assert len(data["worker"]) == 20  # 2 s / 0.1 s


@pytest.mark.parametrize("rule", ["pure", "random", "shuffle"])
def test_assignment_rules_match_their_definitions(rule):
    n, jobs = 5, 5000
    assignment = Assignment(rule, n, np.random.default_rng(3))
    finished = np.random.default_rng(4).integers(n, size=jobs)
    chosen = np.array([assignment.next(int(worker)) for worker in finished])
    if rule == "pure":
        assert np.array_equal(chosen, finished)
    elif rule == "shuffle":
        # Every block of n consecutive jobs visits each worker exactly once.
        assert all(sorted(block) == list(range(n)) for block in chosen.reshape(-1, n).tolist())
        assert len({tuple(block) for block in chosen.reshape(-1, n).tolist()}) > 10  # reshuffled
    else:
        counts = np.bincount(chosen, minlength=n)
        chi2 = ((counts - jobs / n) ** 2 / (jobs / n)).sum()
        assert chi2 < 20.5  # chi-square, 4 degrees of freedom, p ~ 0.0004
        assert not all(sorted(block) == list(range(n)) for block in chosen.reshape(-1, n).tolist())


@pytest.mark.parametrize("rule", ["random", "shuffle"])
def test_random_and_shuffle_queue_jobs_and_converge(tmp_path, rule):
    path = simulate(tmp_path, "async_sgd", QUADRATIC + [
        "workers.n=6", "workers.compute=sqrt", f"method.assign={rule}", "method.lr=0.1", "stop.time=2"])
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert subopt[-1] < 0.3 * subopt[0]
    jobs = read(path, "workers/jobs")["workers/jobs"]
    # Jobs no longer follow speed: the slowest worker gets far more than its pure-async share.
    assert jobs[-1] > 0.5 * jobs[0]


class SpreadTargets(Problem):
    """f(x) = (1/m) sum_j 1/2 ||x - c_j||^2 where worker j's gradient is exactly x - c_j (one sample each)."""

    name = "test_spread_targets"

    def __init__(self, m: int, dim: int):
        self.dim, self.n_samples = dim, m
        self.targets = np.arange(m * dim, dtype=float).reshape(m, dim) / (m * dim)

    @classmethod
    def from_config(cls, config):
        return cls(config.samples, config.dim)

    def x0(self):
        return np.ones(self.dim)

    def loss(self, x):
        return float(0.5 * np.mean(np.sum((x - self.targets) ** 2, axis=1)))

    def full_grad(self, x):
        return x - self.targets.mean(axis=0)

    def stochastic_grad(self, x, rng, batch=1, shard=None):
        return x - self.targets[shard].mean(axis=0)

    def compute_f_star(self):
        return self.loss(self.targets.mean(axis=0))


@pytest.mark.slow
def test_malenia_weighs_every_worker_equally_and_waits_for_all(tmp_path, monkeypatch):
    monkeypatch.setitem(PROBLEMS, SpreadTargets.name, SpreadTargets)
    n, lr = 4, 0.5
    path = simulate(tmp_path, "malenia_sgd", [
        f"problem.name={SpreadTargets.name}", f"problem.samples={n}", "problem.dim=3", f"workers.n={n}",
        "workers.data_split=partition", "workers.compute_times=[0.01, 0.02, 0.05, 0.2]", f"method.lr={lr}",
        "method.batch=8", "stop.time=3", "output.snapshot_every=0"])
    snapshots = read(path, "snapshots/x", "snapshots/iteration")
    xs, iterations = snapshots["snapshots/x"], snapshots["snapshots/iteration"]
    assert iterations[-1] > 5
    problem = SpreadTargets(n, 3)
    # x_{k+1} = x_k - lr * (x_k - mean_i c_i): fast workers' many gradients do not outweigh the slow one.
    for k in range(1, len(xs)):
        if iterations[k] == iterations[k - 1] + 1:
            np.testing.assert_allclose(xs[k], xs[k - 1] - lr * problem.full_grad(xs[k - 1]), atol=1e-12)
    # Each step waited until every worker contributed and the harmonic rule held.
    data = events(path)
    version, counts = 0, np.zeros(n)
    for worker, point_version, accepted in zip(data["worker"], data["point_version"], data["accepted"]):
        if not accepted:
            continue
        counts[worker] += 1
        if np.all(counts > 0) and n / np.mean(1 / counts) >= 8:
            version, counts = version + 1, np.zeros(n)
    assert version == len(read(path, "trace/iteration")["trace/iteration"])


@pytest.mark.slow
def test_malenia_beats_rennala_on_label_skewed_data(tmp_path):
    # Labels sorted across workers and fast workers far faster: Rennala's batches come mostly from
    # the fast workers' labels and it stalls at a biased point; Malenia weighs every worker equally.
    common = ["problem.name=logistic", "problem.samples=2000", "problem.dim=20", "workers.n=10",
              "workers.data_split=by_label", "workers.compute_profile=linear", "workers.compute_scale=0.02",
              "method.lr=2.0", "method.batch=10", "stop.time=150", "output.snapshot_every=5"]
    losses = {}
    for method in ("malenia_sgd", "rennala_sgd"):
        path = simulate(tmp_path, method, common, name=method)
        data = read(path, "metrics/loss", "metrics/time")
        losses[method] = data["metrics/loss"][data["metrics/time"] >= 125].mean()
    assert losses["malenia_sgd"] < losses["rennala_sgd"]


# logistic regression and a noisy quadratic both take the simulator's bulk path (Problem.noise_model), where a
# method's every_result rule replaces on_result: Rennala's rule would skip the accelerated step
@pytest.mark.parametrize("problem", [["problem.name=logistic", "problem.samples=500", "problem.l2=0.01"],
                                     ["problem.name=quadratic", "problem.noise=0.1"]], ids=["logistic", "quadratic"])
def test_accelerated_rennala_converges_faster_than_rennala_on_a_convex_problem(tmp_path, problem):
    common = problem + ["problem.dim=10", "workers.n=4", "workers.compute=sqrt", "method.lr=0.05", "method.batch=8",
                        "stop.time=5"]
    final = {}
    for method in ("accelerated_rennala_sgd", "rennala_sgd"):
        subopt = read(simulate(tmp_path, method, common, name=method), "metrics/suboptimality")["metrics/suboptimality"]
        final[method] = subopt[-1]
        assert subopt[-1] < subopt[0]
    assert final["accelerated_rennala_sgd"] < 0.2 * final["rennala_sgd"]


def test_dead_worker_stops_minibatch_but_not_asynchronous_methods(tmp_path):
    target = 0.05
    times = "[0.01, 0.02, 0.03, inf]"
    common = QUADRATIC + ["workers.n=4", f"workers.compute_times={times}", "stop.time=5", f"stop.target={target}"]
    for method, lr in (("rennala_sgd", 0.5), ("async_sgd", 0.2)):
        path = simulate(tmp_path, method, common + [f"method.lr={lr}", "method.batch=2"], name=method)
        assert attrs(path)["stop_reason"].startswith("target")
    path = simulate(tmp_path, "minibatch_sgd", common + ["method.lr=0.5"], name="minibatch")
    info = attrs(path)
    assert info["status"] == "completed" and info["stop_reason"].startswith("time")
    assert "never answered" in info["stop_reason"] and "worker 3" in info["stop_reason"]
    assert len(read(path, "trace/iteration")["trace/iteration"]) == 0


@pytest.mark.parametrize("cap", [0, 2])
def test_async_sgd_drops_gradients_older_than_max_arrival_delay_arrivals(tmp_path, cap):
    # Pure assignment: a worker's job is assigned when its previous result arrives (or at the
    # start), so the arrivals it waited for are the events between its two results.
    n = 4
    path = simulate(tmp_path, "async_sgd", [
        "workers.n=4", "workers.compute_times=[0.01, 0.013, 0.017, 0.09]", "method.lr=0.05",
        f"method.max_arrival_delay={cap}", "stop.time=3"])
    data = events(path)
    last_seen = {worker: -1 for worker in range(n)}
    limit = n if cap == 0 else cap
    for index, (worker, accepted) in enumerate(zip(data["worker"], data["accepted"])):
        waited = index - last_seen[worker] - 1
        assert bool(accepted) == (waited <= limit), (index, worker, waited)
        last_seen[worker] = index
    assert (data["accepted"] == 0).any() and (data["accepted"] == 1).sum() > 100
