"""The objective a run reports: (1/n) sum_i f_i for Malenia/Amelie on shards, the sample mean otherwise."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.objective import WorkerMeanObjective
from asyncopt_mpi.problems import make_problem
from asyncopt_mpi.problems.splits import shard_indices

from conftest import read, simulate

SKEWED = ["problem.name=logistic", "problem.samples=600", "problem.dim=6", "problem.classes=3", "workers.n=4",
          "workers.data_split=dirichlet", "workers.dirichlet_alpha=0.3", "workers.compute_scale=0.01"]


def problem_and_shards():
    config = load_config(None, SKEWED + ["stop.time=1"], method="malenia_sgd", backend="sim")
    problem = make_problem(config.problem)
    shards = shard_indices(problem.n_samples, 4, "dirichlet", labels=problem.labels(), alpha=0.3,
                           seed=config.workers.seed)
    return problem, shards


def by_hand(problem, shards, x) -> float:
    """(1/n) sum_i of the mean loss over shard i, from the problem's own full loss on each shard's rows."""
    total = 0.0
    for shard in shards:
        rows = problem.X[shard]
        scores = rows @ x.reshape(problem.n_features, problem.classes)
        picked = scores[np.arange(len(shard)), problem.codes[shard]]
        total += np.mean(np.log(np.exp(scores).sum(axis=1)) - picked)
    return total / len(shards)


def test_worker_mean_is_the_mean_of_shard_means_and_differs_from_the_sample_mean():
    problem, shards = problem_and_shards()
    sizes = [len(shard) for shard in shards]
    assert max(sizes) > 1.5 * min(sizes)  # unequal shards: the two objectives differ
    objective = WorkerMeanObjective(problem, shards)
    x = np.random.default_rng(0).normal(size=problem.dim)
    assert objective.loss(x) == pytest.approx(by_hand(problem, shards, x), rel=1e-12)
    assert abs(objective.loss(x) - problem.loss(x)) > 1e-3
    # its gradient is the gradient of its loss (central differences along one direction)
    direction = np.random.default_rng(1).normal(size=problem.dim)
    h = 1e-6
    numeric = (objective.loss(x + h * direction) - objective.loss(x - h * direction)) / (2 * h)
    assert objective.full_grad(x) @ direction == pytest.approx(numeric, rel=1e-5)
    # f* of each objective is below the other objective's minimiser's value
    f_star = objective.compute_f_star()
    assert f_star <= objective.loss(problem.minimizer()) + 1e-12
    assert f_star < objective.loss(problem.minimizer()) - 1e-6


@pytest.mark.parametrize("method", ["malenia_sgd", "rennala_sgd"])
def test_a_run_reports_the_objective_its_method_minimises(tmp_path, method):
    path = simulate(tmp_path, method, SKEWED + ["method.lr=1.0", "method.batch=4", "stop.time=3"])
    problem, shards = problem_and_shards()
    with h5py.File(path, "r") as handle:
        name = handle["problem"].attrs["objective"]
        f_star = float(handle["problem"].attrs["f_star"])
    data = read(path, "snapshots/x", "metrics/loss", "metrics/suboptimality")
    x = data["snapshots/x"][-1]
    if method == "malenia_sgd":
        assert name.startswith("worker_mean")
        expected, best = by_hand(problem, shards, x), WorkerMeanObjective(problem, shards).compute_f_star()
    else:
        assert name.startswith("sample_mean")
        expected, best = problem.loss(x), problem.compute_f_star()
    assert data["metrics/loss"][-1] == pytest.approx(expected, rel=1e-9)
    assert f_star == pytest.approx(best, rel=1e-6, abs=1e-9)
    assert data["metrics/suboptimality"].min() > -1e-7
