"""A result, once recorded, is never lost, clobbered or left hanging (issue 14, the results-file part).

One writer per file (a second writer, `evaluate` and `--resume` on a live file are refused
naming the holder), nothing created before validation, existing files never truncated
(refused without --overwrite, replaced only once the new run started), bounded readers (a
truncated or foreign file gives one line, exit 2, fast), the simulator refused under
mpiexec, and a full disk that ends every rank with one line and a file `evaluate` repairs.
Every test runs the real command (and real mpiexec where ranks are involved).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import h5py
import pytest

from conftest import MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, attrs, project_lines, run_cli, run_mpi

DEMO = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")
SIM = ["--backend", "sim", "--quiet", "--set", "workers.n=4", "--set", "stop.time=2", "--set", "stop.target=1e-12"]


def digest(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def one_error_line(stderr: str) -> str:
    """The single 'asyncopt: error: ...' line a refusal prints (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = project_lines(stderr)  # without the launcher's own banner lines
    errors = [line for line in lines if line.startswith("asyncopt: error:") or line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def sim_file(path, *extra: str) -> str:
    done = run_cli(["run", DEMO, *SIM, "--output", str(path), *extra], timeout=120)
    assert done.returncode == 0, done.stderr
    return str(path)


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


# ------------------------------------------------------------ 1. one writer per file


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_a_live_file_refuses_a_second_writer_evaluate_and_resume_naming_the_holder(tmp_path):
    path = tmp_path / "s.h5"
    first = subprocess.Popen(
        [MPIEXEC, *MPIEXEC_FLAGS, "-n", "2", *asyncopt_command(), "run", DEMO, "--quiet", "--output", str(path),
         "--set", "stop.time=90", "--set", "stop.target=1e-12"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: path.exists() and (tmp_path / "s.h5.lock").exists(), 120), "the first run never started"
        holder = (tmp_path / "s.h5.lock").read_text()
        pid = holder.split("pid=")[1].split()[0]
        second = run_mpi(2, ["run", DEMO, "--set", "method.lr=0.05", "--quiet", "--output", str(path), "--overwrite",
                             "--set", "stop.time=3"], timeout=120)
        plain = run_cli(["run", DEMO, *SIM, "--output", str(path)], timeout=120)  # no --overwrite: still named
        evaluate = run_cli(["evaluate", str(path)], timeout=120)
        resume = run_cli(["run", "--resume", str(path), "--set", "stop.time=30"], timeout=120)
        running = first.poll() is None
    finally:
        first.send_signal(signal.SIGUSR1)  # stop it cleanly (README: SIGUSR1 to mpiexec)
        out, err = first.communicate(timeout=240)
    assert running, "the first run ended before the refusals were checked; they prove nothing"
    for done in (second, plain, evaluate, resume):
        assert done.returncode == 2, done.stderr
        line = one_error_line(done.stderr)
        assert "a run is writing it" in line and f"host {socket.gethostname()}" in line and f"pid {pid}" in line, line
    assert first.returncode == 0, err
    info = attrs(path)
    assert info["status"] == "stopped" and info["method"] == "async_sgd" and int(info.get("segments", 1)) == 1
    assert not (tmp_path / "s.h5.lock").exists() and not (tmp_path / "s.h5.partial").exists()


@pytest.mark.mpi
@pytest.mark.timeout(240)
def test_the_watchdog_keeps_the_lock_while_it_repairs_a_killed_run_and_then_releases_it(tmp_path):
    path = tmp_path / "k.h5"
    run = subprocess.Popen(
        [MPIEXEC, *MPIEXEC_FLAGS, "-n", "2", *asyncopt_command(), "run", DEMO, "--quiet", "--output", str(path),
         "--set", "stop.time=90", "--set", "stop.target=1e-12"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(path.exists, 120), "the run never started"
        time.sleep(1.0)
        writer = int((tmp_path / "k.h5.lock").read_text().split("pid=")[1].split()[0])
        os.kill(writer, signal.SIGKILL)  # rank 0, the writer: nobody left to close the file but the watchdog
    finally:
        run.communicate(timeout=120)
    assert wait_for(lambda: not (tmp_path / "k.h5.lock").exists(), 60), "the watchdog never released the lock"
    info = attrs(path)
    assert info["status"] == "failed" and "rank 0" in info["stop_reason"], info["stop_reason"]
    assert sorted(os.listdir(tmp_path)) == ["k.h5"]  # no lock, staging or reserve file left
    done = run_cli(["evaluate", str(path)])
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(120)
def test_a_stale_lock_is_taken_over_and_another_hosts_lock_is_refused(tmp_path):
    path = tmp_path / "s.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "s.h5.lock").write_text(f"host={socket.gethostname()} pid={dead.pid} started=2020-01-01T00:00:00\n")
    sim_file(path)
    assert attrs(path)["status"] == "completed" and not (tmp_path / "s.h5.lock").exists()
    other = tmp_path / "o.h5"
    (tmp_path / "o.h5.lock").write_text("host=elsewhere.example pid=4242 started=2020-01-01T00:00:00\n")
    done = run_cli(["run", DEMO, *SIM, "--output", str(other)])
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "another host" in line and "elsewhere.example" in line and "pid 4242" in line and "o.h5.lock" in line
    assert not other.exists()


# ------------------------------------------------------------ 2. nothing opened before validation


@pytest.mark.timeout(180)
def test_an_existing_file_is_refused_without_overwrite_and_replaced_with_it(tmp_path):
    path = sim_file(tmp_path / "a.h5")
    before = digest(path)
    done = run_cli(["run", DEMO, *SIM, "--set", "method.lr=0.05", "--output", path])
    assert done.returncode == 2 and "--overwrite" in one_error_line(done.stderr)
    assert digest(path) == before
    done = run_cli(["run", DEMO, *SIM, "--set", "method.lr=0.05", "--output", path, "--overwrite"])
    assert done.returncode == 0, done.stderr
    assert "lr = 0.05" in attrs(path)["config"] and sorted(os.listdir(tmp_path)) == ["a.h5"]
    # The config file and the data file are inputs: never a results file, even with --overwrite.
    config = tmp_path / "base.toml"
    shutil.copy(DEMO, config)
    data = tmp_path / "train.svm"
    data.write_text("1 1:0.5 2:1.0\n-1 1:1.5 2:0.2\n1 1:0.1 2:0.3\n-1 1:1.0 2:0.9\n")
    for args in (["--output", str(config), "--overwrite"],
                 ["--set", "problem.name=logistic", "--set", f"problem.data={data}", "--output", str(data), "--overwrite"]):
        saved = {item: digest(item) for item in (config, data)}
        done = run_cli(["run", str(config), *SIM, *args])
        assert done.returncode == 2 and "is an input of this run" in one_error_line(done.stderr), done.stderr
        assert {item: digest(item) for item in (config, data)} == saved


@pytest.mark.timeout(120)
def test_bad_output_paths_get_one_line(tmp_path):
    deep = os.path.join(str(tmp_path), *["d"] * 3000, "x.h5")
    cases = {str(tmp_path): "directory", "/dev/full": "not a regular file", deep: "too long"}
    for output, words in cases.items():
        done = run_cli(["run", DEMO, *SIM, "--set", f'output.path="{output}"'])
        assert done.returncode == 2, done.stderr
        assert words in one_error_line(done.stderr)


@pytest.mark.mpi
@pytest.mark.timeout(240)
def test_a_config_error_found_after_setup_over_mpi_leaves_the_old_file_untouched(tmp_path):
    path = sim_file(tmp_path / "old.h5")
    before = digest(path)
    done = run_mpi(2, ["run", DEMO, "--quiet", "--output", path, "--overwrite", "--set", "workers.crash_after=[1, 1]",
                       "--set", "stop.time=3"], timeout=180)
    assert done.returncode == 2
    assert "crash_after" in one_error_line(done.stderr)
    assert digest(path) == before and sorted(os.listdir(tmp_path)) == ["old.h5"]


@pytest.mark.timeout(240)
def test_a_bad_resume_override_never_changes_the_file(tmp_path):
    path = sim_file(tmp_path / "r.h5")
    before = digest(path)
    for override, words in (("problem.dim=50", "problem"), ("workers.crash_after=[1]", "crash_after"),
                            ("stop.time=1", "already reached"), ("method.lr=oops", "method.lr")):
        done = run_cli(["run", "--resume", path, "--set", override, "--set", "stop.time=4"]
                       if not override.startswith("stop") else ["run", "--resume", path, "--set", override])
        assert done.returncode == 2, (override, done.stderr)
        assert words in one_error_line(done.stderr), override
        assert digest(path) == before, override
    assert sorted(os.listdir(tmp_path)) == ["r.h5"]
    done = run_cli(["run", "--resume", path, "--set", "stop.time=4"])  # a good one still resumes
    assert done.returncode == 0, done.stderr
    assert int(attrs(path)["segments"]) == 2


# ------------------------------------------------------------ 3. the simulator runs on one process


@pytest.mark.mpi
@pytest.mark.timeout(180)
def test_the_simulator_and_a_sim_resume_under_mpiexec_are_refused_on_every_rank(tmp_path):
    path = tmp_path / "sim.h5"
    done = run_mpi(2, ["run", DEMO, *SIM, "--output", str(path)], timeout=120)
    assert done.returncode == 2
    assert "the simulator runs on one process; drop mpiexec" in one_error_line(done.stderr)
    assert not path.exists()
    saved = sim_file(path)
    before = digest(saved)
    done = run_mpi(2, ["run", "--resume", saved, "--set", "stop.time=4"], timeout=120)
    assert done.returncode == 2 and "drop mpiexec" in one_error_line(done.stderr)
    assert digest(saved) == before and int(attrs(saved).get("segments", 1)) == 1


# ------------------------------------------------------------ 4. a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root only); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


FILLING = ["--set", "problem.dim=300", "--set", "stop.target=1e-12"]


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_a_full_disk_ends_the_run_with_one_line_and_a_file_evaluate_reads(small_disk, tmp_path):
    runs = {
        "sim.h5": lambda path: run_cli(["run", DEMO, "--backend", "sim", "--quiet", "--set", "workers.n=4", *FILLING,
                                        "--set", "stop.time=5000", "--set", "output.snapshot_every=0.01",
                                        "--output", path], timeout=120),
        "mpi.h5": lambda path: run_mpi(2, ["run", DEMO, "--quiet", *FILLING, "--set", "stop.time=120",
                                           "--set", "output.snapshot_every=0.002", "--output", path], timeout=120),
    }
    for name, launch in runs.items():
        path = str(small_disk / name)
        started = time.monotonic()
        done = launch(path)
        assert done.returncode == 1, (name, done.returncode, done.stderr)  # not 139 (SIGSEGV), not a hang
        assert "results file: No space left on device" in one_error_line(done.stderr)
        assert time.monotonic() - started < 100
        moved = tmp_path / name  # "once space is back"
        shutil.move(path, moved)
        for leftover in os.listdir(small_disk):
            os.unlink(small_disk / leftover)
        evaluated = run_cli(["evaluate", str(moved)])
        assert evaluated.returncode == 0, evaluated.stderr
        summary = run_cli(["summary", str(moved)])
        assert summary.returncode == 0 and "failed" in summary.stdout, summary.stderr
        assert "No space left on device" in attrs(moved)["stop_reason"] or "recovered" in attrs(moved)["stop_reason"]


@pytest.mark.timeout(240)
def test_a_disk_filled_by_another_process_under_a_run_ends_it_with_one_line(small_disk, tmp_path):
    path = small_disk / "s.h5"
    run = subprocess.Popen(asyncopt_command() + ["run", DEMO, "--backend", "sim", "--quiet", "--set", "workers.n=4",
                                                 "--set", "stop.time=2e5", "--set", "stop.target=1e-12",
                                                 "--set", "output.snapshot_every=0.2", "--output", str(path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: path.exists() or run.poll() is not None, 120) and run.poll() is None, \
            ("the run never started", run.stderr.read() if run.poll() is not None else "")
        # Another program takes every free byte (unbuffered: closing it must not raise ENOSPC again).
        with open(small_disk / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(bytes(65536))
            except OSError:
                pass
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, (run.returncode, err)  # not 139 (SIGSEGV), not a hang
    assert "results file: No space left on device" in one_error_line(err)
    moved = tmp_path / "s.h5"
    shutil.move(path, moved)
    os.unlink(small_disk / "filler")
    evaluated = run_cli(["evaluate", str(moved)])  # space is back: the file is read or repaired
    assert evaluated.returncode == 0, evaluated.stderr
    summary = run_cli(["summary", str(moved)])
    assert summary.returncode == 0 and "failed" in summary.stdout, summary.stderr


# ------------------------------------------------------------ 5. bounded readers


# write_metrics's first steps in a process that then dies: the file stays marked open for writing, without SWMR.
DIES_STORING_METRICS = """
import os, sys, h5py
handle = h5py.File(sys.argv[1], "r+", libver="latest")
del handle["metrics"]
handle.create_group("metrics")
handle.flush()
os._exit(9)
"""


def test_evaluate_repairs_a_file_whose_writer_died_storing_its_metrics(tmp_path):
    path = str(tmp_path / "run.h5")
    assert run_cli(["run", DEMO, *SIM, "--output", path]).returncode == 0
    assert subprocess.run([sys.executable, "-c", DIES_STORING_METRICS, path], timeout=60).returncode == 9
    done = run_cli(["evaluate", path])
    assert done.returncode == 0, done.stderr
    assert "the run ended without closing the file; rewrote it (status completed)" in done.stderr
    with h5py.File(path, "r") as handle:  # a normally closed file with its status and metrics again
        assert handle.attrs["status"] == "completed"
        assert len(handle["metrics/loss"]) == len(handle["snapshots/time"]) > 1


def killed_run_file(path) -> None:
    """A results file whose writer was SIGKILLed mid-run (still marked open for writing)."""
    script = (
        "import sys, time, numpy as np\n"
        "from asyncopt_mpi.results import ResultsWriter\n"
        "w = ResultsWriter(sys.argv[1], attrs={'method': 'async_sgd', 'config': ''}, dim=8, n_workers=2)\n"
        "for i in range(20):\n"
        "    w.trace((i * 0.1, i, 1, 0, 0, 0)); w.snapshot(i * 0.1, i, i, 0, np.ones(8) * i)\n"
        "print('ready', flush=True); time.sleep(600)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    writer.kill()
    writer.wait()


@pytest.mark.timeout(120)
def test_a_truncated_file_gives_one_line_and_exit_2_quickly(tmp_path):
    whole = sim_file(tmp_path / "whole.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(open(whole, "rb").read()[:-100])
    killed = tmp_path / "killed.h5"
    killed_run_file(killed)
    cut_live = tmp_path / "cut_live.h5"
    cut_live.write_bytes(killed.read_bytes()[: killed.stat().st_size // 2])
    for target in (cut, cut_live):
        for command in (["summary", str(target)], ["evaluate", str(target)], ["run", "--resume", str(target)],
                        ["plot", str(target), "-o", str(tmp_path / "p.png")]):
            started = time.monotonic()
            done = run_cli(command, timeout=60)
            assert done.returncode == 2, (command, done.stderr)
            one_error_line(done.stderr)
            assert time.monotonic() - started < 40, command  # bounded: the SWMR probe waits at most 10 s


@pytest.mark.timeout(120)
def test_files_that_are_not_results_give_one_line_naming_what_is_wrong(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["a"] = [1, 2, 3]
    empty_run = tmp_path / "early.h5"
    with h5py.File(empty_run, "w") as handle:  # a run that died before its first snapshot
        handle.attrs["format_version"] = 1
        handle.attrs["config"] = ""
        handle.attrs["status"] = "failed"
    cases = {str(text): "not an HDF5 file", "/dev/null": "not a regular file", str(other): "not an asyncopt results file",
             str(empty_run): "/snapshots"}
    for target, words in cases.items():
        for command in ("summary", "evaluate"):
            done = run_cli([command, target])
            assert done.returncode == 2, (command, target, done.stderr)
            assert words in one_error_line(done.stderr), (command, target)


@pytest.mark.timeout(180)
def test_summary_and_plot_of_a_folder_skip_bad_files_with_a_warning_each(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    sim_file(folder / "good.h5")
    (folder / "text.h5").write_text("hello\n")
    (folder / "cut.h5").write_bytes((folder / "good.h5").read_bytes()[:-100])
    done = run_cli(["summary", str(folder)])
    assert done.returncode == 0, done.stderr
    assert "good.h5" in done.stdout and "text.h5" not in done.stdout and "cut.h5" not in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("asyncopt: warning: skipped")]
    assert len(warnings) == 2 and "Traceback" not in done.stderr
    plotted = run_cli(["plot", str(folder), "-o", str(tmp_path / "f.png")])
    assert plotted.returncode == 0, plotted.stderr
    assert len([line for line in plotted.stderr.splitlines() if "skipped" in line]) == 2
    assert (tmp_path / "f.png").exists()
