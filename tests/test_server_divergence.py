"""A run whose loss explodes ends with status diverged, a hint to lower method.lr, and exit 1 (sim and MPI)."""

from __future__ import annotations

import h5py
import pytest

from conftest import read, run_cli, run_mpi


def status(path) -> str:
    with h5py.File(path, "r") as handle:
        return str(handle.attrs["status"])


def test_the_issue_command_with_1000_workers_diverges_and_exits_1(tmp_path):
    # `asyncopt run jobs/demo.toml --backend sim --set workers.n=1000` ended at f - f* = 8e84, exit 0.
    path = tmp_path / "diverged.h5"
    result = run_cli(["run", "jobs/demo.toml", "--backend", "sim", "--set", "workers.n=1000", "--output", str(path)])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "diverged" in result.stderr and "smaller method.lr" in result.stderr
    assert status(path) == "diverged"
    assert read(path, "trace/iteration")["trace/iteration"][-1] < 20_000  # stopped early, not at stop.time


@pytest.mark.parametrize("fix", [["--method", "ringmaster_asgd", "--set", "method.R=8"],
                                 ["--set", "method.delay_adaptive=true", "--set", "method.tau_c=8"]])
def test_the_demo_with_1000_workers_converges_with_readmes_fixes(tmp_path, fix):
    path = tmp_path / "demo.h5"
    result = run_cli(["run", "jobs/demo.toml", "--backend", "sim", "--set", "workers.n=1000", *fix,
                      "--output", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert status(path) == "completed" and subopt[-1] < 0.02 * subopt[0]


def test_a_non_finite_iterate_is_diverged_not_failed(tmp_path):
    path = tmp_path / "inf.h5"
    result = run_cli(["run", "--backend", "sim", "--method", "minibatch_sgd", "--set", "workers.n=2",
                      "--set", "method.lr=1e200", "--set", "stop.time=5", "--set", "output.snapshot_every=0.01",
                      "--output", str(path)])
    assert result.returncode == 1 and status(path) == "diverged"
    assert "smaller method.lr" in result.stdout + result.stderr


@pytest.mark.mpi
def test_divergence_over_mpi_exits_1(tmp_path):
    path = tmp_path / "mpi.h5"
    result = run_mpi(3, ["run", "jobs/demo.toml", "--set", "method.delay_adaptive=false", "--set", "method.lr=50",
                         # the run ends when it diverges; the time only bounds it (a loaded machine steps slower)
                         "--set", "stop.time=60", "--output", str(path)], timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert status(path) == "diverged" and "smaller method.lr" in result.stdout + result.stderr
