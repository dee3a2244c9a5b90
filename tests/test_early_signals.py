"""A stop signal while the ranks are still importing (the first second of mpiexec) ends the job the documented way:
one line, 128+n (the launcher's status under Open MPI), never a crashed rank's banner."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import (MPI_IMPLEMENTATION, MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, kill_session,
                      launcher_status_after, project_lines)


def importing_commands(output) -> list[int]:
    """Pids of `asyncopt run --output OUTPUT` processes (the ranks, not the launcher) that have started to load numpy."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                arguments = handle.read().split(b"\0")
            if arguments[1:3] != [b"-m", b"asyncopt_mpi"] or str(output).encode() not in arguments:
                continue
            with open(f"/proc/{entry}/maps") as handle:
                if "_multiarray_umath" in handle.read():
                    found.append(int(entry))
        except (OSError, IndexError):
            pass
    return found


def signal_while_importing(command: list[str], output, ranks: int, signal_number: int, delay: float):
    """Start `command`, send it `signal_number` `delay` s after all `ranks` processes began loading numpy;
    the finished process."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(importing_commands(output)) < ranks:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the ranks did not start")
            time.sleep(0.01)
        time.sleep(delay)
        process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            kill_session(process.pid)
            process.communicate()
    return process.returncode, stderr


@pytest.mark.mpi
@pytest.mark.timeout(240)
# Early and late in the ranks' imports, for each signal mpiexec passes on differently.
@pytest.mark.parametrize("signal_number,delay", [(signal.SIGTERM, 0.1), (signal.SIGTERM, 0.6),
                                                 (signal.SIGINT, 0.1), (signal.SIGINT, 0.6)],
                         ids=["SIGTERM-0.1", "SIGTERM-0.6", "SIGINT-0.1", "SIGINT-0.6"])
def test_a_signal_to_mpiexec_while_the_ranks_import_ends_with_one_line(tmp_path, signal_number, delay):
    output = tmp_path / "early.h5"
    command = [MPIEXEC, *MPIEXEC_FLAGS, "-n", "2", *asyncopt_command(), "run", "--method", "async_sgd", "--quiet",
               "--set", "stop.time=30", "--output", str(output)]
    code, stderr = signal_while_importing(command, output, 2, signal_number, delay)
    assert code == launcher_status_after(signal_number), stderr
    assert "BAD TERMINATION" not in stderr and "Traceback" not in stderr, stderr
    lines = project_lines(stderr)
    if MPI_IMPLEMENTATION == "openmpi":
        # prterun passes SIGINT on as SIGTERM, and once it is ending the job it drops what the
        # ranks still print (rank 0 writes its line and exits 143, as strace shows): at most that line.
        assert len(lines) <= 1 and all(line.startswith("asyncopt: stopped") for line in lines), stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("asyncopt: stopped"), stderr
        assert signal.Signals(signal_number).name in lines[0]


@pytest.mark.timeout(120)
def test_a_signal_while_the_simulator_imports_ends_with_one_line(tmp_path):
    output = tmp_path / "early.h5"
    command = [*asyncopt_command(), "run", "--backend", "sim", "--method", "async_sgd", "--quiet",
               "--set", "workers.n=4", "--set", "stop.time=4", "--output", str(output)]
    code, stderr = signal_while_importing(command, output, 1, signal.SIGTERM, 0.1)
    assert code == 128 + signal.SIGTERM, stderr
    assert project_lines(stderr) == ["asyncopt: stopped while starting (SIGTERM); nothing was written"], stderr
    assert not output.exists()
