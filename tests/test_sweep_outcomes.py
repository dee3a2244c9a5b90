"""Sweeps a researcher can script: a diverged run is a result, worker counts vary over MPI, tidy columns."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from conftest import run_cli

DEMO = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")
SMALL = ["--set", "workers.n=4", "--set", "stop.time=2", "--set", "problem.dim=10"]


def _sweep(tmp_path, *args: str):
    return CliRunner().invoke(cli, ["sweep", DEMO, "--out", str(tmp_path / "out"), *SMALL, *args])


def test_a_diverged_step_size_is_a_result_named_in_the_last_line_with_exit_0(tmp_path):
    done = _sweep(tmp_path, "--grid", "method.lr=0.1,30")
    assert done.exit_code == 0, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == "asyncopt: 2 runs: 1 ended by a stop rule, 1 diverged (async_sgd-lr=30)"


def test_every_run_of_a_method_diverging_is_exit_1_and_says_so(tmp_path):
    done = _sweep(tmp_path, "--grid", "method.lr=30,40")
    assert done.exit_code == 1
    assert "every run of async_sgd diverged" in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_summary_of_a_sweep_has_a_column_per_swept_key_and_the_seed(tmp_path):
    done = _sweep(tmp_path, "--grid", "method.lr=0.1,0.2", "--grid", "workers.compute_scale=0.01,0.02", "--seeds", "2")
    assert done.exit_code == 0, done.stderr
    table = CliRunner().invoke(cli, ["summary", str(tmp_path / "out"), "--csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 8
    assert list(rows[0])[:5] == ["file", "method", "method.lr", "workers.compute_scale", "seed"]
    assert {(row["method.lr"], row["workers.compute_scale"], row["seed"]) for row in rows} == {
        (lr, scale, seed) for lr in ("0.1", "0.2") for scale in ("0.01", "0.02") for seed in ("0", "1")}
    assert {row["status"] for row in rows} == {"completed"} and {row["backend"] for row in rows} == {"sim"}
    listed = json.loads(CliRunner().invoke(cli, ["summary", str(tmp_path / "out"), "--json"]).stdout)
    assert {entry["method.lr"] for entry in listed} == {0.1, 0.2}  # numbers stay numbers in JSON
    every = CliRunner().invoke(cli, ["summary", str(tmp_path / "out"), "--csv", "--all-keys"]).stdout
    header = every.splitlines()[0].split(",")
    assert "problem.dim" in header and "stop.time" in header and "output.path" not in header


def test_ranks_that_contradict_a_swept_worker_count_are_refused_before_anything_runs(tmp_path):
    done = CliRunner().invoke(cli, ["sweep", DEMO, "--backend", "mpi", "--ranks", "5", "--grid",
                                                    "workers.n=2,4", "--out", str(tmp_path / "out")])
    assert done.exit_code == 2
    assert "--ranks 5" in done.stderr and "workers.n = 2" in done.stderr
    assert not list((tmp_path / "out").glob("*.h5"))


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_an_mpi_sweep_over_worker_counts_gives_each_run_its_own_ranks(tmp_path):
    out = tmp_path / "out"
    done = run_cli(["sweep", DEMO, "--backend", "mpi", "--grid", "workers.n=1,2", "--out", str(out),
                    "--set", "stop.iterations=10", "--set", "problem.dim=10"], timeout=240)  # not 1 wall second each
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(run_cli(["summary", str(out), "--csv"]).stdout)))
    assert sorted((row["workers.n"], row["workers"]) for row in rows) == [("1", "1"), ("2", "2")]


def test_run_without_a_launcher_or_backend_runs_the_simulator(tmp_path):
    path = tmp_path / "default.h5"
    done = run_cli(["run", DEMO, *SMALL, "--output", str(path)])
    assert done.returncode == 0, done.stderr
    import h5py

    with h5py.File(path, "r") as handle:
        assert handle.attrs["backend"] == "sim" and handle.attrs["status"] == "completed"
