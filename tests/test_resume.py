"""`asyncopt run --resume FILE`: a stopped or killed run continues from its last snapshot in the same file."""

from __future__ import annotations

import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, kill_session, read, run_cli, run_mpi

BASE = ["--set", "problem.name=logistic", "--set", "problem.samples=300", "--set", "problem.dim=10",
        "--set", "method.lr=0.05", "--set", "method.batch=4", "--set", "output.snapshot_every=0.25"]


def trace_and_snapshots(path) -> dict:
    with h5py.File(path, "r") as handle:
        return {
            "iteration": handle["trace/iteration"][:], "time": handle["trace/time"][:],
            "event_time": handle["events/time"][:], "snapshot_time": handle["snapshots/time"][:],
            "snapshot_iteration": handle["snapshots/iteration"][:], "k": handle["snapshots/state/k"][:, 0],
            "metrics": handle["metrics/suboptimality"][:], "segments": int(handle.attrs["segments"]),
            "status": handle.attrs["status"], "jobs": handle["workers/jobs"][:],
        }


def test_a_stopped_run_continues_without_a_seam(tmp_path):
    path = str(tmp_path / "run.h5")
    first = run_cli(["run", "--backend", "sim", "--method", "accelerated_rennala_sgd", "--output", path,
                     "--set", "workers.n=4", "--set", "stop.time=2"] + BASE)
    assert first.returncode == 0, first.stderr
    before = trace_and_snapshots(path)
    second = run_cli(["run", "--resume", path, "--set", "stop.time=4"])
    assert second.returncode == 0, second.stderr
    after = trace_and_snapshots(path)
    assert after["segments"] == 2 and after["status"] == "completed"
    # Iterations and times continue where the first segment ended.
    assert np.array_equal(after["iteration"], np.arange(1, len(after["iteration"]) + 1))
    assert np.all(np.diff(after["time"]) >= 0) and np.all(np.diff(after["event_time"]) >= 0)
    assert after["time"][-1] > 3.5 and len(after["iteration"]) > 1.5 * len(before["iteration"])
    # The first segment's rows up to its last snapshot are kept as they were.
    kept = len(before["iteration"])
    assert np.array_equal(after["iteration"][:kept], before["iteration"])
    # The method's own state (AC-SA's counter k) continues too.
    assert np.all(np.diff(after["k"]) >= 0) and after["k"][-1] > before["k"][-1]
    # Metrics cover both segments and keep improving.
    assert len(after["metrics"]) == len(after["snapshot_time"]) and after["metrics"][-1] < before["metrics"][-1]
    # Per-worker totals accumulate over the segments.
    assert np.all(after["jobs"] > before["jobs"])


def test_resume_rejects_a_finished_time_and_a_new_method(tmp_path):
    path = str(tmp_path / "run.h5")
    assert run_cli(["run", "--backend", "sim", "--output", path, "--set", "workers.n=2",
                    "--set", "stop.time=1"] + BASE).returncode == 0
    again = run_cli(["run", "--resume", path])
    assert again.returncode == 2 and "stop.time" in again.stderr and "already reached" in again.stderr
    other = run_cli(["run", "--resume", path, "--set", "method.name=rennala_sgd", "--set", "stop.time=3"])
    assert other.returncode == 2 and "method.name" in other.stderr
    missing = run_cli(["run", "--resume", str(tmp_path / "nope.h5"), "--backend", "sim"])
    assert missing.returncode == 2 and "nope.h5" in missing.stderr


@pytest.mark.mpi
def test_a_killed_mpi_run_resumes_from_its_last_snapshot(tmp_path):
    path = str(tmp_path / "run.h5")
    args = ["run", "--method", "async_sgd", "--output", path, "--set", "problem.dim=20", "--set", "method.lr=0.2",
            "--set", "stop.time=60", "--set", "output.snapshot_every=0.2"]
    process = subprocess.Popen([MPIEXEC, *MPIEXEC_FLAGS, "-n", "3"] + asyncopt_command() + args,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            if len(read(path, "snapshots/time")["snapshots/time"]) >= 6:
                break
        except (OSError, KeyError):
            pass
    kill_session(process.pid)
    process.wait(timeout=30)
    done = run_mpi(3, ["run", "--resume", path, "--set", "stop.time=3"], timeout=90)
    assert done.returncode == 0, done.stderr
    with h5py.File(path, "r") as handle:
        iterations = handle["trace/iteration"][:]
        assert handle.attrs["status"] == "completed" and handle.attrs["segments"] == 2
        assert np.array_equal(iterations, np.arange(1, len(iterations) + 1))
        assert np.all(np.diff(handle["snapshots/time"][:]) > 0)
        assert handle["snapshots/time"][-1] >= 3.0
        assert len(handle["metrics/loss"]) == len(handle["snapshots/time"])
