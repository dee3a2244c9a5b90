"""Malenia's worker-mean objective evaluated in blocks (equal shards as rows) gives the numbers of the per-shard loop.

The reported objective (1/n) sum_i f_i (asyncopt_mpi.objective) is what f*, every snapshot's loss and every
evaluated metric of a malenia_sgd run on heterogeneous data compute; at n = 10,000 its per-shard loop cost
seconds a call. The rows path must change no number: checked value by value against the loop, and file by file
(f* and every dataset, bit for bit) against runs whose objective is forced back onto the loop.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.objective import WorkerMeanObjective, reported
from asyncopt_mpi.problems.logistic import LogisticProblem
from asyncopt_mpi.runtime.build import build_problem, build_shards
from same_files import assert_same_files, simulate


def _objective(n: int, samples: int, classes: int, split: str = "by_label", seed: int = 0) -> WorkerMeanObjective:
    config = load_config(None, ["problem.name=logistic", f"problem.classes={classes}", "problem.dim=20",
                                f"problem.samples={samples}", f"workers.data_split={split}", f"workers.n={n}",
                                f"workers.seed={seed}", "stop.time=1"], method="malenia_sgd", backend="sim")
    problem = build_problem(config)
    build_shards(config, problem, n)
    objective = reported(problem)
    assert isinstance(objective, WorkerMeanObjective)
    return objective


def _loop(objective: WorkerMeanObjective, x: np.ndarray) -> tuple[float, np.ndarray, float]:
    """loss, full gradient and accuracy shard by shard, as b887210 computed them."""
    problem, shards = objective.problem, objective.shards
    loss = float(np.mean([problem.loss_of(x, shard) for shard in shards]))
    gradient = np.zeros(problem.dim)
    for shard in shards:
        gradient += problem.grad(x, shard)
    hits = problem.predict(x) == problem.labels()
    return loss, gradient / len(shards), float(np.mean([hits[shard].mean() for shard in shards]))


@pytest.mark.parametrize("n, samples, classes", [(10, 30, 3), (9, 1998, 3), (16, 1600, 5), (7, 700, 2)])
def test_rows_give_the_per_shard_numbers(n, samples, classes):
    objective = _objective(n, samples, classes)
    assert objective.rows is not None  # equal shards: evaluated as rows
    rng = np.random.default_rng(n)
    for scale in (0.1, 1.0, 30.0):
        x = scale * rng.normal(size=objective.problem.dim)
        loss, gradient, accuracy = _loop(objective, x)
        assert objective.loss(x) == loss
        assert np.array_equal(objective.full_grad(x), gradient)
        assert objective.accuracy(x) == accuracy


def test_unequal_shards_keep_the_loop():
    objective = _objective(9, 2000, 3)  # 2000 = 9 x 222 + 2: two shards one longer
    assert objective.rows is None
    x = np.random.default_rng(1).normal(size=objective.problem.dim)
    loss, gradient, accuracy = _loop(objective, x)
    assert objective.loss(x) == loss and np.array_equal(objective.full_grad(x), gradient)


def _per_shard(monkeypatch) -> None:
    """Every WorkerMeanObjective made from here on evaluates shard by shard (the path before the rows)."""
    made = WorkerMeanObjective.__init__

    def init(self, *args, **kwargs):
        made(self, *args, **kwargs)
        self.rows = None

    monkeypatch.setattr(WorkerMeanObjective, "__init__", init)


@pytest.mark.parametrize("seed", [0, 1])
def test_malenia_files_equal_with_rows_and_per_shard(tmp_path, monkeypatch, seed):
    overrides = ["problem.name=logistic", "problem.classes=3", "problem.dim=20", "problem.samples=480",
                 "workers.n=16", "workers.compute=sqrt", "workers.data_split=by_label", f"workers.seed={seed}",
                 "method.batch=64", "method.lr=32", "stop.time=3", "output.snapshot_every=0.25"]
    calls = []
    rows = LogisticProblem.loss_rows

    def counted(self, x, indices):
        calls.append(len(indices))
        return rows(self, x, indices)

    monkeypatch.setattr(LogisticProblem, "loss_rows", counted)
    assert simulate(tmp_path / "rows.h5", "malenia_sgd", overrides) == 0
    assert calls and set(calls) == {16}  # f*, snapshots and metrics went through the rows
    taken = len(calls)
    _per_shard(monkeypatch)
    assert simulate(tmp_path / "loop.h5", "malenia_sgd", overrides) == 0
    assert len(calls) == taken  # the second run looped over the shards
    assert assert_same_files(tmp_path / "rows.h5", tmp_path / "loop.h5") > 100
    with h5py.File(tmp_path / "rows.h5") as first, h5py.File(tmp_path / "loop.h5") as second:
        assert first["problem"].attrs["f_star"] == second["problem"].attrs["f_star"]
        assert len(first["metrics/loss"]) > 10 and np.isfinite(first["metrics/loss"][()]).all()
