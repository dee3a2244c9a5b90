"""conftest.run_cli's forked commands see what a fresh process would: the caller's environment and folder, and a timeout."""

from __future__ import annotations

import subprocess

import pytest

from conftest import run_cli

SIM = ["run", "--backend", "sim", "--quiet", "--set", "workers.n=2"]


@pytest.mark.timeout(120)
def test_a_forked_command_takes_the_callers_environment_and_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "17")  # read by output.path's {array_task} when the run starts
    done = run_cli([*SIM, "--set", "stop.iterations=3", "--set", 'output.path="r/{array_task}.h5"'])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "17.h5").is_file()


@pytest.mark.timeout(120)
def test_a_forked_command_past_its_timeout_is_killed_and_the_next_one_runs(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli([*SIM, "--set", "stop.time=1e6", "--output", str(tmp_path / "long.h5")], timeout=2)
    done = run_cli(["summary", "/dev/null"])
    assert done.returncode == 2 and done.stderr.startswith("asyncopt: error: /dev/null"), done.stderr  # its own answer
