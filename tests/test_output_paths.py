"""Results file names: output.path placeholders, the default name, and one name per MPI run."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from asyncopt_mpi.config import OUTPUT_PLACEHOLDERS
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError

from conftest import MPIEXEC, asyncopt_command, attrs, run_cli

BASE = ["problem.dim=5", "stop.iterations=20", "output.snapshot_every=0.05"]


def test_default_path_names_method_problem_backend_and_workers():
    config = load_config(None, BASE + ["workers.n=7"], backend="sim")
    assert config.output_path() == "results/async_sgd-quadratic-sim-n7.h5"
    other = load_config(None, BASE + ["workers.n=8"], method="minibatch_sgd", backend="sim")
    assert other.output_path() != config.output_path()


def test_every_placeholder_is_filled(monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "17")
    template = "-".join("{" + name + "}" for name in OUTPUT_PLACEHOLDERS)
    config = load_config(None, BASE + ["workers.n=3", "workers.seed=4", f"output.path=r/{template}.h5"], backend="sim")
    path = config.resolve_output_path(3)
    assert re.fullmatch(r"r/async_sgd-quadratic-sim-3-4-\d{8}-\d{6}-17\.h5", path), path
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    assert config.fill_output_path(3).endswith("-0.h5")  # outside a job array
    assert config.output_path() == path  # resolved once: the timestamp does not move


def test_unknown_placeholder_names_the_accepted_ones():
    with pytest.raises(ConfigError) as found:
        load_config(None, BASE + ["workers.n=2", "output.path=r/{rank}.h5"], backend="sim")
    message = str(found.value)
    assert "output.path" in message and "{array_task}" in message and "{timestamp}" in message


def test_sim_runs_of_different_sizes_write_different_files(tmp_path):
    template = str(tmp_path / "{method}-{backend}-n{workers}.h5")
    for n in (2, 3):
        done = run_cli(["run", "--backend", "sim", "--set", f"workers.n={n}", "--set", f"output.path={template}"]
                       + [arg for item in BASE for arg in ("--set", item)])
        assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["async_sgd-sim-n2.h5", "async_sgd-sim-n3.h5"]


@pytest.mark.mpi
def test_mpi_run_resolves_its_path_once_on_rank_0(tmp_path):
    template = str(tmp_path / "{method}-{backend}-n{workers}-{timestamp}-t{array_task}.h5")
    command = [MPIEXEC, "-n", "3"] + asyncopt_command() + ["run", "--set", f"output.path={template}"]
    command += [arg for item in BASE + ["workers.compute_scale=0.002"] for arg in ("--set", item)]
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="5")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    names = os.listdir(tmp_path)
    assert len(names) == 1 and re.fullmatch(r"async_sgd-mpi-n2-\d{8}-\d{6}-t5\.h5", names[0]), names
    assert attrs(tmp_path / names[0])["status"] == "completed"
    assert names[0] in done.stdout
