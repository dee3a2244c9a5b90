"""Runs pay only for their own work: the results file's watchdog (runtime/guardian.py) watches with the
standard library only (no numpy, scipy or h5py import in every run; the package's repair code loads
only when a file needs repairing), and runs in one process leave no objects behind."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import time

from asyncopt_mpi.runtime import guardian


def _descriptors(pid: int) -> list[str]:
    """What a process's open descriptors point at (one closed while we look is left out)."""
    found = []
    for descriptor in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(str(descriptor.readlink()))
        except FileNotFoundError:
            pass
    return found


def _mapped(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as handle:
        return handle.read()


def test_the_watchdog_watches_without_importing_numpy_h5py_or_the_package(tmp_path):
    rank = subprocess.Popen(["sleep", "60"])
    watchdog = guardian.start(str(tmp_path / "run.h5"), [rank.pid], [socket.gethostname()])
    try:
        assert watchdog is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # watching: the rank's process descriptor is open
            if "anon_inode:[pidfd]" in _descriptors(watchdog.pid):
                break
            time.sleep(0.05)
        maps = _mapped(watchdog.pid)
        assert "numpy" not in maps and "h5py" not in maps and "scipy" not in maps
        with open(f"/proc/{watchdog.pid}/cmdline", "rb") as handle:
            assert b"asyncopt_mpi/runtime/guardian.py\0--file" in handle.read()
        rank.kill()  # the rank ends without a file: the watchdog has nothing to repair and ends
        assert watchdog.wait(timeout=60) == 0
    finally:
        rank.kill()
        if watchdog is not None and watchdog.poll() is None:
            watchdog.kill()


def test_runs_in_one_process_leave_nothing_behind(tmp_path):
    """A sweep or a loop of ao.run calls: the objects alive after each run do not grow with the runs."""
    import gc

    import asyncopt_mpi as ao

    demo = pathlib.Path(__file__).resolve().parent.parent / "jobs" / "demo.toml"
    alive = []
    for run in range(12):
        ao.run(str(demo), overrides=["workers.n=200", "stop.gradients=10"], output=str(tmp_path / f"r{run}.h5"))
        if run in (3, 11):
            alive.append(len(gc.get_objects()))
    assert alive[1] <= alive[0] * 1.02, alive  # 8 more runs: at most 2% more objects (without the collection: 2x)
