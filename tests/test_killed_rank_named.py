"""The watchdog's stop reason after a SIGKILL names the one rank that ended first, even when it wakes late."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from asyncopt_mpi.results import is_cleanly_closed
from asyncopt_mpi.runtime.guardian import alive

from conftest import MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, attrs, kill_session, sets, wait_for_snapshots

pytestmark = pytest.mark.mpi


def watching_guardian(path, ranks: int) -> int:
    """The pid of the watchdog of the results file `path`, once it holds a descriptor of each rank's process."""
    wanted = f"asyncopt_mpi/runtime/guardian.py\0--file\0{path}\0".encode()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if entry.isdigit() and wanted in handle.read():
                        fds = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
                        if fds.count("anon_inode:[pidfd]") >= ranks:
                            return int(entry)
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail("no watchdog watching the run's ranks")


def state(pid: int) -> str:
    """The process's state letter (R, S, T, Z, ...), or "gone"."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.timeout(120)
def test_a_late_watchdog_still_names_only_the_killed_rank(tmp_path):
    path = tmp_path / "killed.h5"
    args = ["run", "--method", "async_sgd", "--output", str(path), "--quiet"] + sets(
        problem={"name": "quadratic", "dim": 20}, workers={"compute": "sqrt", "compute_scale": 0.01},
        stop={"time": 60.0}, output={"snapshot_every": 0.1})
    process = subprocess.Popen([MPIEXEC, *MPIEXEC_FLAGS, "-n", "4", *asyncopt_command(), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    guardian = None
    try:
        wait_for_snapshots(path, pause=0.2)
        guardian = watching_guardian(path, 4)
        # The watchdog wakes only after the launcher has ended the other ranks (as on a loaded
        # machine): the ranks it then finds ended must still be told apart.
        os.kill(guardian, signal.SIGSTOP)
        while state(guardian) != "T":
            time.sleep(0.05)
        pids = [int(pid) for pid in attrs(path)["pids"]]
        victim = pids[2]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:  # zombies count as ended
            time.sleep(0.1)
        os.kill(guardian, signal.SIGCONT)
        guardian = None
        # mpiexec ends once the watchdog, which holds the launcher's output pipes, is done.
        assert process.wait(timeout=60) != 0
    finally:
        if guardian is not None:
            os.kill(guardian, signal.SIGCONT)
        if process.poll() is None:
            kill_session(process.pid)
            process.wait()
    deadline = time.monotonic() + 30
    while not is_cleanly_closed(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    found = attrs(path)
    assert found["status"] == "failed"
    assert found["stop_reason"].startswith(f"killed: rank 2 (pid {victim}) ended first"), found["stop_reason"]
    assert "rank 0" not in found["stop_reason"] and "rank 1" not in found["stop_reason"], found["stop_reason"]
