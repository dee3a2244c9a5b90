"""`asyncopt plot` choices: --all draws every run, a folder defaults to each method's best parameters
with the chosen lr in the legend and a note when it is at the edge of the values tried; lines are
ordered with numbers compared as numbers; runs of a problem without a known f* are drawn on the loss."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

import asyncopt_mpi as ao
from asyncopt_mpi.cli import cli
from asyncopt_mpi.plot import plot

BASE = {"problem.name": "quadratic", "problem.dim": 10, "workers.compute": "sqrt", "stop.time": 2,
        "output.snapshot_every": 0.2}


def simulate(folder, name: str, **settings) -> str:
    path = folder / f"{name}.h5"
    ao.run({}, overrides={**BASE, "method.name": "async_sgd", **settings}, output=path)
    return str(path)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """async_sgd with three step sizes on 4, 8 and 16 workers (1 virtual s each), named so that n16 sorts before n4."""
    folder = tmp_path_factory.mktemp("sweep")
    for n in (4, 8, 16):
        for lr in (0.001, 0.003, 0.01):
            simulate(folder, f"n{n}-lr{lr}", **{"workers.n": n, "method.lr": lr, "stop.time": 1})
    return folder


def plot_cli(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


def labels_of(table) -> list[str]:
    with open(table, newline="") as handle:
        return list(dict.fromkeys(row["label"] for row in csv.DictReader(handle)))


def test_all_draws_every_run_of_a_folder(sweep, tmp_path):
    table = tmp_path / "all.csv"
    done = plot_cli(str(sweep), "--all", "-o", str(tmp_path / "all.png"), "--export", str(table))
    assert done.exit_code == 0, done.output
    assert "(9 runs, 9 lines)" in done.output
    assert len(labels_of(table)) == 9


def test_a_folder_shows_the_best_lr_in_numeric_order_with_a_note_at_the_grid_edge(sweep, tmp_path):
    table = tmp_path / "best.csv"
    done = plot_cli(str(sweep), "-o", str(tmp_path / "best.png"), "--export", str(table))
    assert done.exit_code == 0, done.output
    labels = labels_of(table)
    assert labels == ["async_sgd (n=4, lr=0.01)", "async_sgd (n=8, lr=0.01)", "async_sgd (n=16, lr=0.01)"]
    notes = [f"asyncopt: note: async_sgd (n={n}): best method.lr = 0.01 is the largest of its grid "
             "(0.001, 0.003, 0.01); extend the grid" for n in (4, 8, 16)]  # the grid should go further
    assert all(note in done.output for note in notes), done.output
    assert [done.output.index(note) for note in notes] == sorted(done.output.index(note) for note in notes)


def test_a_best_lr_inside_the_grid_has_no_note(tmp_path):
    runs = [simulate(tmp_path, f"lr{lr}", **{"workers.n": 4, "method.lr": lr}) for lr in (0.1, 0.5, 1.0)]
    drawn = plot(runs, str(tmp_path / "inner.png"), best=True)  # lr = 1 diverges, 0.1 is slower than 0.5
    assert drawn.labels == ["async_sgd (lr=0.5)"], drawn.labels
    assert not [note for note in drawn.notes if "grid" in note], drawn.notes


class Bowl(ao.Problem):
    """f(x) = ||x - 1||^2 / 2 - 5 with gradient noise, and no compute_f_star: f* is unknown to the run."""

    name = "bowl_without_f_star"
    description = "a shifted bowl whose minimum the run is not told"

    def __init__(self, dim: int):
        self.dim = dim

    @classmethod
    def from_config(cls, config) -> "Bowl":
        return cls(config.dim)

    def x0(self) -> np.ndarray:
        return np.zeros(self.dim)

    def loss(self, x: np.ndarray) -> float:
        return 0.5 * float((x - 1) @ (x - 1)) - 5.0

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        return x - 1.0

    def stochastic_grad(self, x, rng, batch=1, shard=None) -> np.ndarray:
        return self.full_grad(x) + rng.standard_normal(self.dim) / np.sqrt(batch)


@pytest.fixture(scope="module")
def no_f_star_run(tmp_path_factory):
    ao.register_problem(Bowl.name, Bowl)
    path = tmp_path_factory.mktemp("bowl") / "bowl.h5"
    ao.run({}, overrides={**BASE, "problem.name": Bowl.name, "method.name": "async_sgd", "method.lr": 0.1,
                          "workers.n": 4}, output=path)
    return str(path)


def test_a_run_without_f_star_is_drawn_on_the_loss_not_called_diverged(no_f_star_run, tmp_path):
    table = tmp_path / "bowl.csv"
    done = plot_cli(no_f_star_run, "-o", str(tmp_path / "bowl.png"), "--export", str(table))
    assert done.exit_code == 0, done.output
    assert "diverged" not in done.output
    assert "(1 runs, 1 lines)" in done.output
    assert "asyncopt: note: f* unknown, drawn on the loss f(x): async_sgd (lr=0.1)" in done.output
    with open(table, newline="") as handle:
        values = [float(row["suboptimality_median"]) for row in csv.DictReader(handle)]
    assert values and all(np.isfinite(values)) and values[-1] < -4  # the loss itself, below zero near x = 1
