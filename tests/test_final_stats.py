"""Held-out rows (problem.test_data / test_fraction), test_loss / test_accuracy metrics, and `asyncopt final-stats`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import make_problem

from conftest import read, run_cli, simulate


def write_split(tmp_path, seed: int = 0):
    """A linearly separable-ish 3-class set: 300 training rows, 100 test rows, as .npz files."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(3, 5))

    def draw(rows):
        y = rng.integers(3, size=rows)
        return centres[y] + rng.normal(size=(rows, 5)), y

    (X, y), (X_test, y_test) = draw(300), draw(100)
    np.savez(tmp_path / "train.npz", X=X, y=y)
    np.savez(tmp_path / "test.npz", X=X_test, y=y_test)
    return X_test, y_test


def test_test_fraction_holds_rows_out_of_the_finite_sum():
    config = load_config(None, ["problem.name=logistic", "problem.samples=400", "problem.dim=5",
                                "problem.test_fraction=0.25", "stop.time=1"], backend="sim")
    problem = make_problem(config.problem)
    assert problem.n_samples == 300 and problem.X_test.shape == (100, 5)
    x = np.zeros(problem.dim)
    assert problem.test_metrics(x)["test_loss"] == pytest.approx(np.log(2))  # binary, score 0
    full = make_problem(load_config(None, ["problem.name=logistic", "problem.samples=400", "problem.dim=5",
                                           "stop.time=1"], backend="sim").problem)
    assert abs(problem.compute_f_star() - full.compute_f_star()) > 1e-6  # trained on fewer rows


def test_a_run_with_a_test_file_reports_test_accuracy_and_final_stats_averages_it(tmp_path):
    X_test, y_test = write_split(tmp_path)
    path = simulate(tmp_path, "freya_page", [
        "problem.name=logistic", f'problem.data="{tmp_path / "train.npz"}"', "problem.classes=3",
        f'problem.test_data="{tmp_path / "test.npz"}"', "workers.n=4", "method.lr=1.0", "stop.time=30"])
    data = read(path, "metrics/time", "metrics/test_accuracy", "metrics/test_loss", "snapshots/x", "metrics/accuracy")
    x = data["snapshots/x"][-1].reshape(5, 3)
    assert data["metrics/test_accuracy"][-1] == pytest.approx(np.mean(np.argmax(X_test @ x, axis=1) == y_test))
    assert data["metrics/test_accuracy"][-1] > 0.8 and data["metrics/test_loss"][-1] < data["metrics/test_loss"][0]
    result = run_cli(["final-stats", str(path), "--final", "0.5", "--json"])
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    times, accuracy = data["metrics/time"], data["metrics/test_accuracy"]
    window = accuracy[times >= 0.5 * times[-1]]
    assert row["rows"] == len(window) and row["method"] == "freya_page"
    assert row["mean"] == pytest.approx(window.mean()) and row["variance"] == pytest.approx(window.var())
    table = run_cli(["final-stats", str(path)]).stdout
    assert "| freya_page |" in table and "mean test_accuracy" in table


def test_final_stats_names_a_missing_metric_and_exits_2(tmp_path):
    path = simulate(tmp_path, "rennala_sgd", ["workers.n=2", "stop.time=1"])
    result = run_cli(["final-stats", str(path), "--metric", "nope"])
    assert result.returncode == 2 and "metrics/nope" in result.stderr
    result = run_cli(["final-stats", str(path), "--final", "0"])
    assert result.returncode == 2 and "--final" in result.stderr


def test_test_data_and_test_fraction_together_are_refused(tmp_path):
    write_split(tmp_path)
    result = run_cli(["run", "--backend", "sim", "--set", "problem.name=logistic",
                      "--set", f'problem.data="{tmp_path / "train.npz"}"', "--set", f'problem.test_data="{tmp_path / "test.npz"}"',
                      "--set", "problem.test_fraction=0.2", "--set", "workers.n=2", "--set", "stop.time=1",
                      "--output", str(tmp_path / "x.h5")])
    assert result.returncode == 2 and "test_fraction" in result.stderr
