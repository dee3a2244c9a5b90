"""--overwrite and --resume replace the file only once the new run has set up and the method's start()
returned on every rank: a failure or a stop signal before that leaves the old file byte for byte, and
its one line says so; a resumed run's hint suggests a stop.time beyond the time reached."""

from __future__ import annotations

import os
import signal

import pytest

from asyncopt_mpi import ConfigError, RunError
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import prepare_resume, run_sim, simulate
from conftest import MPIEXEC, MPIEXEC_FLAGS, run_mpi
from hook_plugin import digest, lines_of, loaded_plugin, run_command, signal_when_stuck

DEMO = "jobs/demo.toml"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> str:
    return loaded_plugin(tmp_path_factory)


@pytest.fixture
def old(plugin, tmp_path) -> str:
    """A good finished run (4 s of hook_test) at tmp_path/run.h5, the file the tests try to replace."""
    path = str(tmp_path / "run.h5")
    simulate(load_config(DEMO, ["workers.n=4", "stop.time=4"], method="hook_test", backend="sim", output=path))
    return path


def _only_the_old_file(old: str) -> None:
    """Nothing but the old file (and the plugin's mark) beside it: no staged or side file left."""
    assert sorted(os.listdir(os.path.dirname(old))) in (["run.h5"], ["run.h5", "stuck"])


def test_sim_start_failure_leaves_the_old_file(old, capsys, command_lines):
    before = digest(old)
    config = load_config(DEMO, ['method.mode="start"', "workers.n=4"], method="hook_test", backend="sim", output=old)
    assert run_sim(config, overwrite=True) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("asyncopt: error: method 'hook_test' failed in start: RuntimeError: no first jobs today")
    assert lines[0].endswith(f"; {old!r} left as it was")
    assert digest(old) == before
    _only_the_old_file(old)


def test_sim_resume_whose_start_fails_leaves_the_file(old):
    before = digest(old)
    with pytest.raises(RunError, match="failed in start"):
        simulate(*prepare_resume(old, ['method.mode="start"', "stop.time=8"], "sim"))
    assert digest(old) == before
    _only_the_old_file(old)


def test_resume_hint_suggests_a_time_beyond_the_one_reached(old):
    with pytest.raises(ConfigError, match=r"already reached 4 s; continue it with e\.g\. --set stop\.time=6$"):
        prepare_resume(old, ["stop.time=2"], "sim")
    with pytest.raises(ConfigError, match=r"--set stop\.time=8$"):
        prepare_resume(old, ["stop.time=4"], "sim")


@pytest.mark.timeout(180)
def test_sim_signal_during_set_up_leaves_the_old_file(plugin, old, tmp_path):
    before = digest(old)
    done = signal_when_stuck(run_command(DEMO, "--backend", "sim", "--plugin", plugin, "--method", "slow_set_up",
                                         "--set", "workers.n=4", "--output", old, "--overwrite", "--quiet"),
                             tmp_path / "stuck", signal.SIGTERM)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert done.stderr.splitlines() == [f"asyncopt: stopped before the run started (SIGTERM); {old!r} left as it was"]
    assert digest(old) == before
    _only_the_old_file(old)


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_mpi_start_failure_leaves_the_old_file(plugin, old):
    before = digest(old)
    done = run_mpi(2, ["run", DEMO, "--plugin", plugin, "--method", "hook_test", "--set", 'method.mode="start"',
                       "--output", old, "--overwrite", "--quiet"], timeout=120)
    assert done.returncode == 1, done.stderr
    lines = lines_of(done.stderr)
    assert len(lines) == 1 and "method 'hook_test' failed in start: RuntimeError" in lines[0], lines
    assert lines[0].endswith(f"; {old!r} left as it was")
    assert digest(old) == before
    _only_the_old_file(old)


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_mpi_signal_during_set_up_leaves_the_old_file(plugin, old, tmp_path):
    before = digest(old)
    command = [MPIEXEC, *MPIEXEC_FLAGS, "-n", "2"] + run_command(
        DEMO, "--plugin", plugin, "--method", "slow_set_up", "--output", old, "--overwrite", "--quiet")
    done = signal_when_stuck(command, tmp_path / "stuck", signal.SIGTERM)  # to rank 0, building the method
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert lines_of(done.stderr) == [f"asyncopt: stopped before the run started (SIGTERM); {old!r} left as it was"]
    assert digest(old) == before
    _only_the_old_file(old)
