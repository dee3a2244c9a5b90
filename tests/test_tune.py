"""`asyncopt tune`: the grid is extended until each method's best step size is bracketed, tuning and
evaluation seeds are separate, and the table says what was chosen and how it did."""

from __future__ import annotations

import csv
import os

import h5py
import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from conftest import run_cli

DEMO = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")
SMALL = ["--set", "workers.n=4", "--set", "stop.time=3", "--set", "problem.dim=10"]


def _seed(path) -> int:
    import tomllib

    with h5py.File(path, "r") as handle:
        return tomllib.loads(handle.attrs["config"])["workers"]["seed"]


@pytest.mark.slow
def test_a_best_step_size_at_the_grid_edge_is_bracketed_by_extending_the_grid(tmp_path):
    out = tmp_path / "tuned"
    done = CliRunner().invoke(cli, ["tune", DEMO, "--grid", "method.lr=0.05,0.1", "--methods", "async_sgd",
                                    "--target", "1e-3", "--seeds", "2", "--eval-seeds", "3", "--out", str(out), *SMALL])
    assert done.exit_code == 0, done.stderr
    assert "best method.lr = 0.1 is at the edge of (0.05, 0.1); trying 0.2" in done.stderr
    rows = list(csv.DictReader((out / "tune.csv").open()))
    assert len(rows) == 1 and rows[0]["bracketed"] == "yes"
    tried = [float(value) for value in rows[0]["tried"].split()]
    best = float(rows[0]["method.lr"])
    assert tried[0] < best < tried[-1] and len(tried) > 2  # extended past the first grid, best inside
    assert rows[0]["evaluation_seeds"] == "3"
    assert "| async_sgd |" in done.stdout and "bracketed" in done.stdout  # the table, printed
    tuning = sorted((out / "tuning").glob("*.h5"))
    evaluation = sorted(out.glob("*.h5"))
    assert {_seed(path) for path in tuning} == {1000, 1001}
    assert sorted(_seed(path) for path in evaluation) == [0, 1, 2]  # never a tuning seed
    assert all(f"lr={rows[0]['method.lr']}" in path.name for path in evaluation)


def test_a_bound_on_extensions_is_said_when_the_best_stays_at_the_edge(tmp_path):
    done = CliRunner().invoke(cli, ["tune", DEMO, "--grid", "method.lr=0.001,0.002", "--extensions", "1",
                                    "--seeds", "1", "--eval-seeds", "1", "--out", str(tmp_path / "t"), *SMALL])
    assert done.exit_code == 0, done.stderr
    assert "still at the edge" in done.stderr and "not bracketed" in done.stderr
    assert list(csv.DictReader((tmp_path / "t" / "tune.csv").open()))[0]["bracketed"] == "no"


def test_tune_refuses_a_non_numeric_grid_and_two_keys_in_one_line(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli, ["tune", DEMO, "--grid", "method.assign=pure,random", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "not a positive number" in bad.stderr
    two = runner.invoke(cli, ["tune", DEMO, "--grid", "method.lr=0.1", "--grid", "method.batch=1,2",
                              "--out", str(tmp_path / "y")])
    assert two.exit_code == 2 and "exactly one key" in two.stderr


@pytest.mark.mpi
@pytest.mark.timeout(400)
def test_tune_over_mpi_runs_each_setting_under_mpiexec(tmp_path):
    # Two values, no extension (the grid's extension is the same code on either backend: the test above), one worker:
    # three jobs of two ranks. Each stops after 100 gradients, not a wall time (the time is a backstop).
    out = tmp_path / "mpi"
    done = run_cli(["tune", DEMO, "--backend", "mpi", "--grid", "method.lr=0.05,0.1", "--extensions", "0",
                    "--seeds", "1", "--eval-seeds", "1", "--set", "workers.n=1", "--set", "stop.gradients=100",
                    "--set", "stop.time=60", "--set", "problem.dim=10", "--out", str(out)], timeout=380)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((out / "tune.csv").open()))
    assert rows[0]["method"] == "async_sgd" and rows[0]["tried"].split() == ["0.05", "0.1"]
    files = sorted(out.glob("**/*.h5"))
    assert len(files) == 3  # each setting and the evaluation ran
    for path in files:
        with h5py.File(path, "r") as handle:
            assert handle.attrs["backend"] == "mpi" and handle.attrs["n_workers"] == 1


def test_a_link_where_the_table_goes_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "TUNE.md").symlink_to(victim)
    done = CliRunner().invoke(cli, ["tune", DEMO, "--grid", "method.lr=0.1", "--out", str(out), *SMALL])
    assert done.exit_code == 2 and "TUNE.md" in done.stderr and "symbolic link" in done.stderr
    assert victim.read_text() == "precious\n" and not list(out.glob("**/*.h5"))


def test_processes_left_idle_by_the_tuning_seeds_try_the_next_extensions_at_once(tmp_path):
    # One tuning seed and two processes: each extension round runs two values past the edge side by side, and the
    # two count against --extensions (so 3 allows one round of two and then one more value).
    out = tmp_path / "t"
    done = CliRunner().invoke(cli, ["tune", DEMO, "--grid", "method.lr=0.001,0.002", "--methods", "async_sgd",
                                    "--extensions", "3", "--seeds", "1", "--eval-seeds", "1", "--processes", "2",
                                    "--out", str(out), *SMALL])
    assert done.exit_code == 0, done.stderr
    assert "is at the edge of (0.001, 0.002); trying 0.004, 0.008" in done.stderr
    tried = [float(value) for value in list(csv.DictReader((out / "tune.csv").open()))[0]["tried"].split()]
    assert tried[:4] == [0.001, 0.002, 0.004, 0.008] and len(tried) <= 5
    assert len(list((out / "tuning").glob("*.h5"))) == len(tried)
