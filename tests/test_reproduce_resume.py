"""`asyncopt reproduce NAME --resume`: a reproduction stopped partway keeps the runs it finished (their files untouched),
runs the others, and writes the report and CSV of one that ran through; a damaged file or one of other settings is
run again, never trusted; --resume with --overwrite is refused in one line; jobs/slurm/reproduce.sbatch, given the
time-limit signal, stops the reproduction and requeues the job, and its next start resumes (run by bash), and on a
real single-node Slurm a preempted reproduction is requeued and resumes."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import time

import h5py
import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.reproduce import driver, rennala
from asyncopt_mpi.reproduce.experiment import Setting
from conftest import BIN, asyncopt_command, kill_session
from slurm_cluster import missing_reason
from test_slurm import environment, slurm  # noqa: F401  (slurm: a fixture, one Slurm for this module)

NAME = "rennala"  # the smallest experiment with runs: 4 methods x (3 tuning values + the reported seeds)
SMALL = ["--scale", "small", "--seeds", "2"]
RUNS = 20
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jobs", "slurm", "reproduce.sbatch")


def _reproduce(output, *options: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli, ["reproduce", NAME, *SMALL, "--output", str(output), *options])
    return done.exit_code, done.stderr


def _files(folder) -> dict[str, tuple[int, int]]:
    """Every results file under `folder`: relative path -> (inode, mtime in ns)."""
    found = {}
    for path in folder.rglob("*.h5"):
        status = path.stat()
        found[str(path.relative_to(folder))] = (status.st_ino, status.st_mtime_ns)
    return found


def _status(path) -> str:
    with h5py.File(path, "r") as handle:
        return handle.attrs["status"]


def _rows(folder) -> list[dict[str, str]]:
    """runs.csv with each file named relative to the reproduction's folder."""
    rows = list(csv.DictReader((folder / "runs.csv").open()))
    for row in rows:
        row["file"] = os.path.relpath(row["file"], folder)
    return rows


def _report(folder) -> str:
    """REPORT.md but for its wall time (and, after a resumption, how many runs it kept)."""
    return re.sub(r"wall time \d+ s( \(this resumption[^)]*\))?", "wall time", (folder / "REPORT.md").read_text())


def _counts(stderr: str) -> tuple[int, int, int]:
    found = re.search(rf"{NAME}: (\d+) runs, (\d+) reused from an earlier reproduction, (\d+) ran", stderr)
    assert found, stderr
    return tuple(map(int, found.groups()))


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A reproduction that ran through: the folder every resumed one must match."""
    output = tmp_path_factory.mktemp("whole")
    code, stderr = _reproduce(output)
    assert code == 0, stderr
    assert _counts(stderr) == (RUNS, 0, RUNS)
    return output / NAME


def _once_four_runs_started(process: subprocess.Popen, folder) -> None:
    deadline = time.monotonic() + 120
    while len(_files(folder)) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.timeout(300)
def test_a_reproduction_stopped_by_sigterm_resumes_keeping_its_finished_runs(tmp_path, whole):
    """SIGTERM to every process of the reproduction, its 2 parallel runs and their forkserver, as Slurm stops a job."""
    process = subprocess.Popen([*asyncopt_command(), "reproduce", NAME, *SMALL, "--processes", "2", "--output",
                                str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    folder = tmp_path / NAME
    try:
        _once_four_runs_started(process, folder)
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)  # once the pool waited for ever (its forkserver ended)
    finally:
        kill_session(process.pid)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1] == (f"asyncopt: {NAME} stopped by SIGTERM (the runs in progress stopped cleanly); "
                                       "the same command with --resume continues it, keeping the finished runs")
    before = _files(folder)
    finished = {name for name in before if _status(folder / name) in ("completed", "diverged")}
    assert len(finished) >= 2 and len(before) < RUNS and not (folder / "REPORT.md").exists()

    code, stderr = _reproduce(tmp_path, "--resume")
    assert code == 0, stderr
    assert _counts(stderr) == (RUNS, len(finished), RUNS - len(finished))
    after = _files(folder)
    assert {name: after[name] for name in finished} == {name: before[name] for name in finished}  # not run again
    assert all(after[name] != before[name] for name in set(before) - finished)  # the stopped run ran again
    assert sorted(after) == sorted(_files(whole))
    assert _rows(folder) == _rows(whole)
    assert _report(folder) == _report(whole)


@pytest.mark.timeout(300)
def test_a_finished_run_whose_file_was_truncated_runs_again(tmp_path, whole):
    folder = tmp_path / NAME
    shutil.copytree(whole, folder)
    damaged = folder / "runs" / "n-10000" / "async_sgd" / "async_sgd-lr=0.05-seed=1.h5"
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 2)
    before = _files(folder)

    code, stderr = _reproduce(tmp_path, "--resume")
    assert code == 0, stderr
    assert _counts(stderr) == (RUNS, RUNS - 1, 1)
    after = _files(folder)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {str(damaged.relative_to(folder))}
    assert _status(damaged) == "completed"
    assert _rows(folder) == _rows(whole)
    assert _report(folder) == _report(whole)


@pytest.mark.timeout(300)
def test_other_settings_run_again_where_the_stored_config_differs_whatever_the_file_is_called(tmp_path, whole,
                                                                                              monkeypatch):
    folder = tmp_path / NAME
    shutil.copytree(whole, folder)
    before = _files(folder)
    # Rennala SGD's batch changed: its files keep their names (lr and seed) but hold another config.
    methods = tuple(
        dataclasses.replace(method, settings=(Setting("method.batch", 2, 2, "changed by the test"),))
        if method.name == "rennala_sgd" else method for method in rennala.EXPERIMENT.methods)
    monkeypatch.setattr(rennala, "EXPERIMENT", dataclasses.replace(rennala.EXPERIMENT, methods=methods))

    code, stderr = _reproduce(tmp_path, "--resume", "--seeds", "3")  # and one more reported seed
    assert code == 0, stderr
    after = _files(folder)
    kept = {name for name in before if after.get(name) == before[name]}
    others = {name for name in before if "/rennala_sgd/" not in name}
    assert kept == others  # the other methods' runs of seeds 0 and 1 and their tuning
    total, reused, ran = _counts(stderr)
    assert (reused, ran) == (len(others), total - len(others))
    assert all(f"-seed=2.h5" in name or "/rennala_sgd/" in name for name in set(after) - kept)
    for name in after:
        if "/rennala_sgd/" in name:
            with h5py.File(folder / name, "r") as handle:
                assert "batch = 2" in handle.attrs["config"]


def test_a_stop_signal_while_no_run_is_in_progress_ends_the_reproduction_in_one_line_too(tmp_path, whole,
                                                                                          monkeypatch):
    """SIGTERM as the figures are drawn (every run kept: no sweep runs anything): one line, exit 143, no report;
    the next --resume writes it."""
    folder = tmp_path / NAME
    shutil.copytree(whole, folder)
    (folder / "REPORT.md").unlink()
    drawn = driver._figure

    def signalled(*arguments):
        os.kill(os.getpid(), signal.SIGTERM)
        return drawn(*arguments)

    monkeypatch.setattr(driver, "_figure", signalled)
    previous = signal.signal(signal.SIGTERM, lambda number, frame: None)  # the test runner's, should none be there
    try:
        code, stderr = _reproduce(tmp_path, "--resume")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (code, stderr.splitlines()[-1]) == (128 + signal.SIGTERM, f"asyncopt: {NAME} stopped by SIGTERM (the runs "
                                               "in progress stopped cleanly); the same command with --resume "
                                               "continues it, keeping the finished runs")
    assert "Traceback" not in stderr and not (folder / "REPORT.md").exists()
    monkeypatch.undo()
    code, stderr = _reproduce(tmp_path, "--resume")
    assert code == 0 and _counts(stderr) == (RUNS, RUNS, 0)
    assert _report(folder) == _report(whole)


def test_resume_with_overwrite_is_refused_in_one_line(tmp_path):
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "notes.txt").write_text("an earlier reproduction")
    code, stderr = _reproduce(tmp_path, "--resume", "--overwrite")
    assert (code, stderr.splitlines()) == (2, ["asyncopt: error: --resume keeps the finished runs of OUTPUT/NAME and "
                                               "--overwrite replaces them; give one"])
    assert [path.name for path in (tmp_path / NAME).iterdir()] == ["notes.txt"]  # nothing ran


@pytest.mark.timeout(300)
def test_the_batch_script_near_its_time_limit_stops_and_requeues_and_its_next_start_resumes(tmp_path, whole):
    """jobs/slurm/reproduce.sbatch run by bash as Slurm would run each start; `scontrol` is a script noting its
    arguments. The first start gets SIGUSR1 (what --signal=B:USR1@120 sends), the second runs to the end."""
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "scontrol-calls"
    (fake / "scontrol").write_text(f'#!/bin/bash\necho "$*" >> {calls}\n')
    (fake / "scontrol").chmod(0o755)
    environment = {**os.environ, "PATH": f"{fake}:{BIN}:{os.environ['PATH']}", "SLURM_JOB_ID": "77",
                   "SLURM_CPUS_PER_TASK": "1"}  # one run at a time
    start = ["bash", SCRIPT, NAME, *SMALL, "--output", str(tmp_path / "out")]
    folder = tmp_path / "out" / NAME
    first = subprocess.Popen(start, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _once_four_runs_started(first, folder)  # one run at a time: the first 3 are finished
    first.send_signal(signal.SIGUSR1)
    log, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and calls.read_text() == "requeue 77\n", log
    assert f"asyncopt: {NAME} stopped by SIGUSR1" in log and not (folder / "REPORT.md").exists()  # no run after it
    before = _files(folder)
    finished = {name for name in before if _status(folder / name) in ("completed", "diverged")}
    assert len(finished) >= 3

    second = subprocess.run(start, env={**environment, "SLURM_RESTART_COUNT": "1"}, capture_output=True, text=True,
                            timeout=240)
    assert second.returncode == 0 and second.stdout.startswith("start 2: "), second.stdout + second.stderr
    assert _counts(second.stderr) == (RUNS, len(finished), RUNS - len(finished))
    assert calls.read_text() == "requeue 77\n"  # finished: not requeued again
    assert _rows(folder) == _rows(whole)


def _wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.05)


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
@pytest.mark.timeout(400)
def test_on_slurm_a_preempted_reproduction_is_requeued_and_resumes(slurm, tmp_path, whole):
    """Preemption: Slurm sends SIGTERM to every process of the job (asyncopt, its 2 parallel runs, their forkserver)
    and starts it again. (The time-limit path, USR1 to the script, is the test above.)"""
    folder = tmp_path / "out" / NAME
    job = slurm.submit(f"--chdir={tmp_path}", SCRIPT, NAME, *SMALL, "--output", str(tmp_path / "out"),
                       env=environment())
    log = tmp_path / f"asyncopt-reproduce-{job}.out"
    _wait_for(lambda: len(_files(folder)) >= 4, "the first start's 4th run")
    subprocess.run(["scontrol", "requeue", job], env=slurm.env, check=True, timeout=60)
    assert slurm.wait(job, timeout=240) == "COMPLETED", log.read_text()

    assert slurm.restarts(job) == 1
    text = log.read_text()  # --open-mode=append: one log over the two starts
    assert "start 2: " in text and "Traceback" not in text
    assert f"asyncopt: {NAME} stopped by SIGTERM" in text  # the first start stopped cleanly, not killed
    counts = [tuple(map(int, found)) for found in
              re.findall(rf"{NAME}: (\d+) runs, (\d+) reused from an earlier reproduction, (\d+) ran", text)]
    assert len(counts) == 1 and counts[0][0] == RUNS and counts[0][1] >= 2, text  # only the second start finished
    assert _rows(folder) == _rows(whole)
    assert _report(folder) == _report(whole)
