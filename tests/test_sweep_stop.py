"""A stop signal to a sweep stops its runs in progress cleanly and starts no other; a sweep killed
outright leaves no run behind: its pool children stop their runs (files closed, status stopped)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import asyncopt_command, attrs, wait_for_snapshots

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jobs", "demo.toml")
ENDLESS = ["--set", "workers.n=4", "--set", "stop.time=1e6", "--set", "stop.target=0",
           "--set", "output.snapshot_every=1"]


def _sweep(out, processes: int) -> subprocess.Popen:
    return subprocess.Popen(asyncopt_command() + ["sweep", DEMO, *ENDLESS, "--grid", "method.lr=0.01,0.02,0.03",
                                                  "--processes", str(processes), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _still_running(out) -> list[int]:
    """Processes whose command line names the sweep's folder (the sweep, its children, their watchdogs)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if entry.isdigit() and str(out).encode() in handle.read():
                    with open(f"/proc/{entry}/stat") as stat:
                        if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                            found.append(int(entry))
        except OSError:
            pass
    return found


def _gone(out, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _still_running(out):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(180)
@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_stops_the_runs_in_progress_and_starts_no_other(tmp_path, processes):
    out = tmp_path / "out"
    sweep = _sweep(out, processes)
    try:
        for index in range(processes):
            wait_for_snapshots(out / f"async_sgd-lr=0.0{index + 1}.h5", seconds=90)
        sweep.send_signal(signal.SIGTERM)
        _, stderr = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
    assert sweep.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines() == [
        f"asyncopt: stopped by SIGTERM: {processes} of 3 runs ran (the ones in progress stopped cleanly), "
        f"{3 - processes} not run"]
    ran = sorted(path.name for path in out.glob("*.h5"))
    assert ran == [f"async_sgd-lr=0.0{index + 1}.h5" for index in range(processes)]
    for name in ran:
        found = attrs(out / name)
        assert (found["status"], found["stop_reason"]) == ("stopped", "signal: SIGTERM received")
    assert _gone(out), _still_running(out)


@pytest.mark.timeout(180)
def test_a_killed_sweep_leaves_no_run_behind(tmp_path):
    out = tmp_path / "out"
    sweep = _sweep(out, 2)
    try:
        for index in range(2):
            wait_for_snapshots(out / f"async_sgd-lr=0.0{index + 1}.h5", seconds=90)
        sweep.kill()
        _, stderr = sweep.communicate(timeout=60)
        assert _gone(out), _still_running(out)  # the children stopped their runs and left
    finally:
        sweep.kill()
    assert "Traceback" not in stderr, stderr
    for index in range(2):
        assert attrs(out / f"async_sgd-lr=0.0{index + 1}.h5")["status"] == "stopped"


@pytest.mark.timeout(120)
def test_an_exception_in_the_sweeping_process_stops_the_pools_runs_and_returns(tmp_path):
    """A caller's timeout (an alarm raising in the sweep's process) ends the sweep at once: its children
    stop their runs cleanly instead of the pool waiting for them for ever."""
    import sys

    script = f"""
import signal, sys
from asyncopt_mpi.sweep import sweep
def expire(*args):
    raise TimeoutError("the caller's timeout")
signal.signal(signal.SIGALRM, expire)
signal.alarm(6)
try:
    sweep({DEMO!r}, ["method.lr=0.01,0.02,0.03"], 1, {str(tmp_path / 'out')!r},
          ["workers.n=4", "stop.time=1e6", "stop.target=0"], processes=2)
except TimeoutError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0 and done.stdout.strip() == "the caller's timeout", done.stderr
    statuses = [attrs(path)["status"] for path in sorted((tmp_path / "out").glob("*.h5"))]
    assert statuses and set(statuses) == {"stopped"}, statuses
