"""jobs/slurm/requeue.sbatch: on a real Slurm, preempted and then near its time limit, the job requeues and resumes
into one complete file; a file that needs no run, or is no results file, ends a start with one line."""

from __future__ import annotations

import os
import subprocess
import time

import h5py
import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import run_sim
from conftest import BIN, read
from slurm_cluster import missing_reason
from test_slurm import DEMO, SCRIPTS, environment, slurm  # noqa: F401  (slurm: a fixture, one Slurm for this module)

REQUEUE = str(SCRIPTS / "requeue.sbatch")


@pytest.mark.parametrize("given", ["completed", "diverged", "text", "nothing"])
def test_a_start_that_has_nothing_to_resume_ends_at_once(tmp_path, given):
    """These exit before any launcher starts, so no Slurm is needed: the script alone, as a start would run it."""
    path = tmp_path / "run.h5"
    if given in ("completed", "diverged"):
        workers = 4 if given == "completed" else 1000  # jobs/demo.toml's lr = 0.2 diverges from about 16 workers
        config = load_config(DEMO, [f"workers.n={workers}", "stop.time=1"], backend="sim", output=str(path))
        assert run_sim(config) == (0 if given == "completed" else 1)
    else:
        path = tmp_path / "notes.h5"
        path.write_text("not a results file\n")
    arguments = [] if given == "nothing" else [DEMO, str(path)]
    done = subprocess.run(["bash", REQUEUE, *arguments], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "SLURM_NTASKS": "3"})
    expected = {"completed": (0, "is complete; nothing to do"), "diverged": (1, "diverged; resuming it would not"),
                "text": (2, "not a results file"), "nothing": (2, "usage: sbatch jobs/slurm/requeue.sbatch")}[given]
    shown = done.stdout + done.stderr
    assert (done.returncode, expected[1] in shown) == (expected[0], True), shown
    if given != "completed":
        assert done.stdout == "" and done.stderr.startswith("asyncopt: error: ") and done.stderr.count("\n") == 1
    assert not any(name.endswith((".partial", ".lock")) for name in os.listdir(tmp_path))  # no run was started


def recorded(path) -> dict:
    """What a reader sees in the file now: the trace and the snapshot times (a running file is read as SWMR)."""
    return read(path, "trace/iteration", "trace/time", "snapshots/time")


def wait_for_segment(path, segment: int, snapshots: int, seconds: float = 90) -> dict:
    """Wait until the file's `segment`-th start has recorded `snapshots` snapshots of its own; returns what it holds."""
    deadline = time.monotonic() + seconds
    before = 0
    while time.monotonic() < deadline:
        try:
            with h5py.File(path, "r", swmr=True, libver="latest") as handle:
                if int(handle.attrs["segments"]) < segment:
                    before = len(handle["snapshots/time"])
                elif len(handle["snapshots/time"]) >= before + snapshots:
                    return recorded(path)
        except (OSError, KeyError):
            pass  # not created yet, or being replaced by the resumed copy
        time.sleep(0.3)
    pytest.fail(f"start {segment} did not record {snapshots} snapshots within {seconds:g} s")


@pytest.mark.mpi
@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
@pytest.mark.timeout(240)
def test_a_requeued_job_resumes_into_one_complete_run(slurm, tmp_path):
    path = tmp_path / "long.h5"
    job = slurm.submit("--ntasks=3", f"--chdir={tmp_path}", REQUEUE, DEMO, str(path),
                       "--set", "stop.time=5", "--set", "stop.target=1e-12", env=environment())
    log = tmp_path / f"asyncopt-{job}.out"
    first = wait_for_segment(path, 1, snapshots=4)
    # Preemption: Slurm sends SIGTERM to every process of the job and queues it again.
    subprocess.run(["scontrol", "requeue", job], env=slurm.env, check=True, timeout=60)
    second = wait_for_segment(path, 2, snapshots=4)
    # The time limit near: what --signal=B:USR1@60 does; the script stops the run and requeues the job itself.
    slurm.signal_batch(job, "USR1")
    assert slurm.wait(job, timeout=150) == "COMPLETED", log.read_text()

    assert slurm.restarts(job) == 2
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "completed" and handle.attrs["segments"] == 3
        iterations, times = handle["trace/iteration"][:], handle["trace/time"][:]
        snapshot_times = handle["snapshots/time"][:]
        assert np.array_equal(iterations, np.arange(1, len(iterations) + 1))  # one run: no gap, no repeat
        assert np.all(np.diff(times) >= 0) and np.all(np.diff(snapshot_times) > 0)
        assert snapshot_times[-1] >= 5.0 and len(handle["metrics/loss"]) == len(snapshot_times)
    # No lost data: every row seen before an interruption is in the final file as it was
    # (the stops after SIGTERM and SIGUSR1 take a final snapshot, so resuming cuts nothing recorded).
    for seen in (first, second):
        rows = len(seen["trace/iteration"])
        assert np.array_equal(iterations[:rows], seen["trace/iteration"]) and np.array_equal(times[:rows], seen["trace/time"])
        assert np.array_equal(snapshot_times[:len(seen["snapshots/time"])], seen["snapshots/time"])
    text = log.read_text()  # --open-mode=append: one log over the three starts
    assert f"start 1: a new run into {path}" in text
    assert f"start 2: {path} is stopped; resuming it" in text and f"start 3: {path} is stopped; resuming it" in text
    assert "time limit near" in text and f"requeueing job {job}" in text
