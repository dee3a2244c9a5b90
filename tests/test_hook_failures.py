"""A method hook that raises anything (SystemExit, KeyboardInterrupt, any BaseException) fails the run
with one line naming the method and hook; one that does not return is interrupted by a stop signal or,
under MPI, at stop.time + stop.grace; on the simulator and under real mpiexec."""

from __future__ import annotations

import signal

import pytest

from asyncopt_mpi import RunError
from asyncopt_mpi import run as api_run
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.server import failure_text
from asyncopt_mpi.runtime.session import run_sim
from conftest import MPIEXEC, MPIEXEC_FLAGS, attrs, run_mpi
from hook_plugin import lines_of, loaded_plugin, run_command, signal_when_stuck

DEMO = "jobs/demo.toml"
RAISED = {  # method.mode -> what the line and the file say was raised in on_result
    "exit": "SystemExit: 7",
    "interrupt": "KeyboardInterrupt",
    "odd": "Odd: an odd one",
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> str:
    return loaded_plugin(tmp_path_factory)


def _config(path, mode: str, *extra: str):
    overrides = [f'method.mode="{mode}"', "workers.n=4", "stop.time=4", *extra]
    return load_config(DEMO, overrides, method="hook_test", backend="sim", output=str(path))


@pytest.mark.parametrize("mode", sorted(RAISED))
def test_sim_hook_raising_any_base_exception_fails_the_run(plugin, tmp_path, capsys, command_lines, mode):
    out = tmp_path / "run.h5"
    assert run_sim(_config(out, mode)) == 1
    expected = f"method 'hook_test' failed in on_result: {RAISED[mode]}"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"asyncopt: error: {expected}"), lines
    stored = attrs(out)
    assert stored["status"] == "failed" and stored["stop_reason"].startswith(f"error: {expected}")


def test_sim_hook_failure_is_a_run_error_in_the_python_api(plugin, tmp_path):
    out = tmp_path / "api.h5"
    with pytest.raises(RunError, match="method 'hook_test' failed in on_result: SystemExit: 7") as raised:
        api_run(DEMO, overrides={"method.name": "hook_test", "method.mode": "exit", "workers.n": 4, "stop.time": 4},
                output=str(out))
    assert raised.value.path == str(out) and attrs(out)["status"] == "failed"


def test_long_exception_messages_are_cut():
    text = failure_text(ValueError("x" * 10_000))
    assert len(text) < 300 and text.startswith("ValueError: xxx") and "..." in text


@pytest.mark.timeout(180)
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
def test_sim_hook_that_never_returns_is_stopped_by_a_signal(plugin, tmp_path, number):
    out = tmp_path / "run.h5"
    done = signal_when_stuck(run_command(DEMO, "--backend", "sim", "--plugin", plugin, "--method", "hook_test",
                                         "--set", 'method.mode="hang"', "--set", "workers.n=4", "--set", "stop.time=4",
                                         "--output", str(out), "--quiet"), tmp_path / "stuck", number)
    assert done.returncode == (0 if number == signal.SIGUSR1 else 128 + number), done.stderr
    stored = attrs(out)
    name = signal.Signals(number).name
    assert stored["status"] == "stopped", stored["stop_reason"]  # a user's Ctrl-C is a stop, not a failure
    assert stored["stop_reason"].startswith(f"signal: {name} received; method 'hook_test' did not return from "
                                            "on_result")
    assert "Traceback" not in done.stderr


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_mpi_hook_raising_base_exception_ends_every_rank(plugin, tmp_path):
    # One BaseException that is not an Exception: the hook turns every kind into the same RunError
    # (ServerCore.hook, shared with the simulator, whose test above raises each kind).
    mode = "interrupt"
    out = tmp_path / "run.h5"
    done = run_mpi(2, ["run", DEMO, "--plugin", plugin, "--method", "hook_test", "--set", f'method.mode="{mode}"',
                       "--set", "stop.time=30", "--output", str(out), "--quiet"], timeout=120)
    expected = f"method 'hook_test' failed in on_result: {RAISED[mode]}"
    assert done.returncode == 1, done.stderr
    lines = lines_of(done.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"asyncopt: error: {expected}"), lines
    stored = attrs(out)
    assert stored["status"] == "failed" and stored["stop_reason"].startswith(f"error: {expected}")


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGUSR1])
def test_mpi_hook_that_never_returns_is_stopped_by_a_signal(plugin, tmp_path, number):
    out = tmp_path / "run.h5"
    command = [MPIEXEC, *MPIEXEC_FLAGS, "-n", "2"] + run_command(
        DEMO, "--plugin", plugin, "--method", "hook_test", "--set", 'method.mode="hang"', "--set", "stop.time=60",
        "--output", str(out), "--quiet")
    done = signal_when_stuck(command, tmp_path / "stuck", number)  # to rank 0, stuck in the hook
    assert done.returncode == (0 if number == signal.SIGUSR1 else 128 + number), done.stderr
    stored = attrs(out)
    assert stored["status"] == "stopped", stored["stop_reason"]
    assert stored["stop_reason"].startswith(f"signal: {signal.Signals(number).name} received; method 'hook_test' "
                                            "did not return from on_result")


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_mpi_hook_that_never_returns_is_interrupted_at_stop_time_and_grace(plugin, tmp_path):
    out = tmp_path / "run.h5"
    done = run_mpi(2, ["run", DEMO, "--plugin", plugin, "--method", "hook_test", "--set", 'method.mode="hang"',
                       "--set", "stop.time=2", "--set", "stop.grace=1", "--output", str(out), "--quiet"],
                   timeout=120)
    assert done.returncode == 0, done.stderr
    stored = attrs(out)
    assert stored["status"] == "stopped"
    assert stored["stop_reason"] == ("interrupted: method 'hook_test' did not return from on_result by "
                                     "stop.time + stop.grace = 3 s")
