"""A sweep pays for its runs' own work: a watchdog that starts without the site module and still
repairs a killed run, a summary that reads only what its rows show, and a closing collection per
run that scans that run's objects only (and leaves nothing behind)."""

from __future__ import annotations

import gc
import os
import pathlib
import signal
import subprocess
import time

import h5py
import pytest

from conftest import asyncopt_command

DEMO = str(pathlib.Path(__file__).resolve().parent.parent / "jobs" / "demo.toml")
SHORT = ["workers.n=20", "stop.gradients=10", "stop.time=1000"]


def _wait(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def _watchdog_of(pid: int) -> list[bytes]:
    """The command line of the watchdog (runtime/guardian.py) `pid` started, else []."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            for child in handle.read().split():
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as command:
                        words = command.read().split(b"\0")
                except OSError:
                    continue
                if any(word.endswith(b"asyncopt_mpi/runtime/guardian.py") for word in words):
                    return words
    return []


@pytest.mark.timeout(180)
def test_the_watchdog_starts_without_site_and_still_repairs_a_killed_simulator_run(tmp_path):
    path = tmp_path / "k.h5"
    run = subprocess.Popen(asyncopt_command() + ["run", DEMO, "--backend", "sim", "--quiet", "--set", "workers.n=4",
                                                 "--set", "stop.time=100000", "--set", "stop.target=1e-300",
                                                 "--output", str(path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert _wait(lambda: path.exists() and _watchdog_of(run.pid)), run.stderr.read() if run.poll() else ""
        command = _watchdog_of(run.pid)
        script = next(at for at, word in enumerate(command) if word.endswith(b"guardian.py"))
        assert b"-S" in command[:script]  # no site module: its .pth hooks cost most of a start
        run.kill()  # SIGKILL: nothing of the run closes its file
        run.wait(timeout=60)
        assert _wait(lambda: not os.path.exists(str(path) + ".lock"), 120)  # the watchdog is done
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    with h5py.File(path, "r") as handle:  # repaired: a normal reader opens it (site-packages loaded for that)
        assert handle.attrs["status"] == "failed"
        assert handle.attrs["stop_reason"] == "killed: rank 0 ended without closing the file"
    assert sorted(os.listdir(tmp_path)) == ["k.h5"]  # no reserve, staged file or lock left


def _sweep_files(tmp_path, runs: int) -> list[str]:
    from asyncopt_mpi.sweep import sweep

    out = tmp_path / "sweep"
    outcomes = sweep(DEMO, ["method.lr=0.01,100"], runs, str(out), SHORT + ["stop.target=0.5"])
    return [outcome.path for outcome in outcomes]


def test_a_summary_row_reads_only_what_it_shows_and_equals_the_whole_files_row(tmp_path):
    from asyncopt_mpi.results import read_run
    from asyncopt_mpi.summary import summarize, summary_row

    paths = _sweep_files(tmp_path, 2)  # completed and diverged runs
    for path in paths:
        assert summary_row(path) == summary_row(path, read_run(path))
    shown = summarize(paths)
    # A table the row never shows, declared far larger than the file: reading the whole file refuses it.
    with h5py.File(paths[0], "r+") as handle:
        del handle["events/delay"]
        handle["events"].create_dataset("delay", shape=(1 << 40,), chunks=(4096,), dtype="i8")
    assert summarize(paths) == shown


def test_each_run_of_a_sweep_ends_with_a_collection_of_its_own_objects_and_leaves_nothing(tmp_path):
    from asyncopt_mpi.sweep import sweep

    full: list[tuple[int, int]] = []  # per full collection: (frozen objects, tracked objects after it)

    def record(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append((gc.get_freeze_count(), len(gc.get_objects())))

    gc.callbacks.append(record)
    try:
        outcomes = sweep(DEMO, [], 8, str(tmp_path / "sweep"), SHORT)
    finally:
        gc.callbacks.remove(record)
    assert [outcome.status for outcome in outcomes] == ["completed"] * 8
    assert gc.get_freeze_count() == 0  # the sweep unfroze what it froze
    ends = full[-7:]  # the closing collections of runs 2..8 (the last full collections of the sweep)
    # What outlives the runs (modules, numpy, h5py) was frozen after the first run and stays frozen
    # through the simulator loop, so a closing collection scans far fewer objects than there are.
    assert all(frozen > 2 * tracked for frozen, tracked in ends), ends
    assert ends[-1][0] + ends[-1][1] <= (ends[0][0] + ends[0][1]) * 1.02, ends  # nothing piles up


@pytest.mark.timeout(180)
def test_a_sweep_killed_mid_run_leaves_its_finished_files_complete_and_its_running_one_repaired(tmp_path):
    """One watchdog guards every run of a sweep's process; SIGKILL in the third run: the first two
    files stay as they were closed, the third is repaired as a single run's watchdog repairs it."""
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(asyncopt_command() + ["sweep", DEMO, "--out", str(out), "--grid", "stop.time=2,3,100000",
                                                   "--set", "workers.n=4", "--set", "stop.target=1e-300"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    names = [f"async_sgd-time={value}.h5" for value in ("2", "3", "100000")]
    try:
        assert _wait(lambda: (out / names[2]).exists()), sweep.stderr.read() if sweep.poll() else ""
        command = _watchdog_of(sweep.pid)
        assert b"--shared" in command  # the process's one watchdog, started by its first run
        sweep.kill()  # SIGKILL in the middle of the third run
        sweep.wait(timeout=60)
        assert _wait(lambda: not os.path.exists(str(out / names[2]) + ".lock"), 120)  # the watchdog is done
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    for name in names[:2]:
        with h5py.File(out / name, "r") as handle:  # closed by the run itself, with its metrics
            assert handle.attrs["status"] == "completed" and len(handle["metrics/loss"]) > 0
    with h5py.File(out / names[2], "r") as handle:
        assert handle.attrs["status"] == "failed"
        assert handle.attrs["stop_reason"] == "killed: rank 0 ended without closing the file"
    assert sorted(os.listdir(out)) == sorted(names)  # no lock, staged file or reserve left


def test_a_sweeps_summary_rows_come_from_its_runs_and_equal_the_files_rows(tmp_path):
    import numpy as np

    from asyncopt_mpi import summary

    paths = _sweep_files(tmp_path, 2)  # completed and diverged runs
    remembered = [summary.read_row_values(path) for path in paths]
    assert all(row is summary._written[os.path.abspath(path)][1] for path, row in zip(paths, remembered))
    shown = summary.summarize(paths, fmt="json")
    summary.forget_row_values()
    assert summary.summarize(paths, fmt="json") == shown  # the same rows, read from the files
    for path, row in zip(paths, remembered):
        read = summary.read_row_values(path)
        assert read["attrs"] == row["attrs"]
        for group in ("snapshots", "trace", "metrics"):
            assert sorted(read[group]) == sorted(row[group])
            for name, column in read[group].items():
                assert column.dtype == row[group][name].dtype
                assert np.array_equal(column, row[group][name], equal_nan=True), (group, name)
