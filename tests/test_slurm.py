"""The Slurm batch scripts of jobs/slurm, submitted to a real single-node Slurm; results files checked."""

from __future__ import annotations

import os
import time
from pathlib import Path

import h5py
import pytest

from slurm_cluster import SlurmCluster, missing_reason

from conftest import BIN, MPI_IMPLEMENTATION, read

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "jobs" / "slurm"
DEMO = str(ROOT / "jobs" / "demo.toml")

# Longer than SlurmCluster.wait's 180 s: a job that does not end fails with its state and Slurm's reason.
pytestmark = [pytest.mark.mpi, pytest.mark.timeout(240),
              pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


def environment() -> dict:
    """The batch scripts find asyncopt and mpiexec on PATH, as after activating the venv."""
    return {"PATH": f"{BIN}:{os.environ['PATH']}"}


# Both launchers of jobs/slurm/*.sbatch: the venv's mpiexec (hydra places the ranks with Slurm's
# help) and srun, which starts every rank itself. The mpich wheel's PMI-1 client talks to Slurm's
# pmi2 plugin; --mpi=pmix is not usable here (Debian's slurm-wlm plugin finds no libpmix, and
# Open MPI 5 under srun needs it too), so the srun runs need MPICH and are skipped under Open MPI.
LAUNCHERS = {"mpiexec": None, "srun": "srun --mpi=pmi2"}


def launcher_environment(launcher: str) -> dict:
    if LAUNCHERS[launcher] is None:
        return environment()
    if MPI_IMPLEMENTATION != "mpich":
        pytest.skip(f"srun --mpi=pmi2 starts MPICH's PMI-1 client; this venv's MPI is {MPI_IMPLEMENTATION}")
    return {**environment(), "LAUNCHER": LAUNCHERS[launcher]}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_single_run(slurm, tmp_path, launcher):
    path = tmp_path / "run.h5"
    env = launcher_environment(launcher)
    job = slurm.submit("--ntasks=4", f"--chdir={tmp_path}", str(SCRIPTS / "run.sbatch"), DEMO,
                       "--output", str(path), "--set", "stop.time=2", "--set", "stop.target=1e-12", env=env)
    output = tmp_path / f"asyncopt-{job}.out"
    assert slurm.wait(job) == "COMPLETED", output.read_text()
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "completed" and handle.attrs["n_workers"] == 3
        assert len(handle["metrics/loss"]) >= 3
    shown = output.read_text()
    assert "asyncopt on 1 node(s), 4 ranks" in shown and f": {LAUNCHERS[launcher] or 'mpiexec -n 4'} asyncopt run" in shown


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_run_over_two_nodes(slurm, tmp_path, launcher):
    path = tmp_path / "two.h5"
    env = launcher_environment(launcher)
    job = slurm.submit("--nodes=2", "--ntasks=4", "--ntasks-per-node=2", f"--chdir={tmp_path}",
                       str(SCRIPTS / "run.sbatch"), DEMO, "--output", str(path), "--set", "stop.time=2",
                       "--set", "stop.target=1e-12", env=env)
    output = tmp_path / f"asyncopt-{job}.out"
    assert slurm.wait(job) == "COMPLETED", output.read_text()
    assert "asyncopt on 2 node(s), 4 ranks" in output.read_text()
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "completed" and handle.attrs["n_workers"] == 3
        assert (handle["workers/grads"][:] > 0).all()
    if launcher == "srun":  # srun starts ranks on both nodes; hydra sees one host name and forks them all here
        assert f"launch task StepId={job}.0" in slurm.steps_on(slurm.nodes[1])


def test_a_job_array_over_methods_and_seeds(slurm, tmp_path):
    folder = tmp_path / "array"
    env = {**environment(), "METHODS": "async_sgd rennala_sgd", "SEEDS": "2"}
    job = slurm.submit("--array=0-3", "--ntasks=3", f"--chdir={tmp_path}", str(SCRIPTS / "array.sbatch"), DEMO,
                       str(folder), "--set", "stop.time=1.5", "--set", "stop.target=1e-12", env=env)
    assert slurm.wait(job) == "COMPLETED"
    names = sorted(path.name for path in folder.glob("*.h5"))
    assert names == ["async_sgd-seed0.h5", "async_sgd-seed1.h5", "rennala_sgd-seed0.h5", "rennala_sgd-seed1.h5"]
    for path in folder.glob("*.h5"):
        with h5py.File(path, "r") as handle:
            assert handle.attrs["status"] == "completed"
            assert f"seed = {path.stem[-1]}" in handle.attrs["config"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_usr1_before_the_time_limit_ends_the_run_cleanly(slurm, tmp_path, launcher):
    path = tmp_path / "signal.h5"
    job = slurm.submit("--ntasks=4", f"--chdir={tmp_path}", str(SCRIPTS / "signal.sbatch"), DEMO,
                       "--output", str(path), "--set", "stop.time=1e9", "--set", "stop.target=1e-12",
                       env=launcher_environment(launcher))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until the run records, then do what --signal=B:USR1@60 does
        try:
            if len(read(path, "snapshots/time")["snapshots/time"]) >= 3:
                break
        except (OSError, KeyError):
            pass
        time.sleep(0.3)
    slurm.signal_batch(job, "USR1")
    assert slurm.wait(job, timeout=60) == "COMPLETED"
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "stopped" and "SIGUSR1" in handle.attrs["stop_reason"]
        assert len(handle["metrics/loss"]) == len(handle["snapshots/time"])
    assert "asking asyncopt to stop" in (tmp_path / f"asyncopt-{job}.out").read_text()
