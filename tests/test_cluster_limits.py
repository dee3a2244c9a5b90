"""Cluster file systems and limits: output.hdf5_locking reaching HDF5, the memory budget's sources
(MemAvailable, the cgroup v2 limit, Slurm's allocation), the batch scripts' one BLAS thread per
rank, and the array script sized from the sbatch command line."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import pytest

from conftest import BIN, asyncopt_command, project_lines, run_mpi

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "jobs" / "demo.toml")
SCRIPTS = ROOT / "jobs" / "slurm"
SMALL_SIM = ["--backend", "sim", "--set", "workers.n=4", "--set", "stop.time=4"]

# A method that records, in a trace column, whether HDF5 opened its results file with file locking.
LOCKING_PROBE = textwrap.dedent('''
    import asyncopt_mpi as ao


    @ao.register_method
    class LockingProbe(ao.Method):
        name = "locking_probe"
        description = "asynchronous SGD that records whether its results file is opened with HDF5 file locking"
        trace_columns = ("locking",)

        def start(self, server):
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, 1))

        def on_result(self, server, worker, result):
            use_locks, _ = server.writer.file.id.get_access_plist().get_file_locking()
            server.step(result, self.lr, grads_used=1, max_delay=result.delay, locking=use_locks)
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, 1))
            return True
''')


@pytest.fixture
def probe(tmp_path) -> str:
    path = tmp_path / "locking_probe.py"
    path.write_text(LOCKING_PROBE)
    return str(path)


def locking_column(path) -> set[float]:
    """The writer's file locking as the probe recorded it, after the file is read back (metrics included)."""
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "completed"
        assert len(handle["metrics/time"]) > 0  # stored after the run, through the same setting
        return set(handle["trace/locking"][:].tolist())


# ---------------------------------------------------------------- output.hdf5_locking


@pytest.mark.timeout(120)
@pytest.mark.parametrize("setting, recorded", [("false", 0.0), ("true", 1.0)])
def test_hdf5_locking_reaches_the_simulator_writer(tmp_path, probe, setting, recorded):
    path = tmp_path / "run.h5"
    done = subprocess.run(asyncopt_command() + ["run", DEMO, *SMALL_SIM, "--plugin", probe, "--method",
                          "locking_probe", "--set", f"output.hdf5_locking={setting}", "--output", str(path)],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert locking_column(path) == {recorded}
    assert f"hdf5_locking = {setting}" in h5py.File(path, "r").attrs["config"]


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_hdf5_locking_false_reaches_the_mpi_writer(tmp_path, probe):
    path = tmp_path / "mpi.h5"
    done = run_mpi(2, ["run", DEMO, "--plugin", probe, "--method", "locking_probe", "--set", "stop.time=2",
                       "--set", "output.hdf5_locking=false", "--output", str(path)], timeout=100)
    assert done.returncode == 0, done.stderr
    assert locking_column(path) == {0.0}


def test_readers_keep_hdf5_default_locking_unless_a_run_sets_it(tmp_path):
    from asyncopt_mpi import results
    from asyncopt_mpi.results import open_results, use_locking

    path = tmp_path / "r.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["format_version"] = 1
    try:
        use_locking(False)
        # Opens beside a lock another writer holds (HDF5 before 1.14.4, in h5py < 3.12, reports any
        # file's access list as locking, so the lock is tried rather than read back).
        with open(path, "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with open_results(str(path)):
                pass
        assert results.is_cleanly_closed(str(path))
    finally:
        use_locking("auto")
    with open_results(str(path)) as handle:  # HDF5's default (HDF5_USE_FILE_LOCKING is applied by HDF5 itself)
        assert handle.id.get_access_plist().get_file_locking()[0] == 1


# A results file whose writer died with it open in SWMR mode (readers open it through swmr.open_swmr).
DIES_WRITING = """
import os, sys, h5py
handle = h5py.File(sys.argv[1], "w", libver="latest")
handle.attrs["format_version"] = 1
handle.create_dataset("t", data=[1.0, 2.0], maxshape=(None,), chunks=(4,))
handle.swmr_mode = True
handle.flush()
os._exit(0)
"""


@pytest.mark.timeout(60)
def test_a_file_still_open_for_writing_is_read_with_the_runs_locking(tmp_path):
    from asyncopt_mpi.results import open_results, use_locking

    path = tmp_path / "live.h5"
    subprocess.run([sys.executable, "-c", DIES_WRITING, str(path)], check=True, timeout=50)
    try:
        use_locking(False)
        with open_results(str(path)) as handle:  # after the probe (a child process) read it the same way
            assert handle.id.get_intent() & h5py.h5f.ACC_SWMR_READ
            assert handle.id.get_access_plist().get_file_locking()[0] == 0
    finally:
        use_locking("auto")


@pytest.mark.timeout(60)
def test_the_watchdog_repairs_with_the_runs_locking(tmp_path, monkeypatch):
    import socket

    from asyncopt_mpi.results import use_locking
    from asyncopt_mpi.runtime import guardian

    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    writer = subprocess.Popen(["sleep", "30"])  # stands in for rank 0 while the watchdog starts
    try:
        use_locking(False)
        watchdog = guardian.start(str(tmp_path / "run.h5"), [writer.pid], [socket.gethostname()])
    finally:
        use_locking("auto")
    try:
        proc = Path("/proc") / str(watchdog.pid)
        deadline = time.monotonic() + 20
        # Between fork and exec /proc/PID/environ is the parent's (or empty): read it once the watchdog runs.
        while b"guardian" not in proc.joinpath("cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        environ = proc.joinpath("environ").read_bytes().split(b"\0")
        assert b"HDF5_USE_FILE_LOCKING=FALSE" in environ
    finally:
        watchdog.terminate()  # before the sleeper ends: nothing to repair
        watchdog.wait(timeout=30)
        writer.kill()
        writer.wait()


@pytest.mark.parametrize("value, expected", [
    ("maybe", "output.hdf5_locking: 'maybe' is not accepted; accepted: \"auto\", true, false"),
    ('"false"', "output.hdf5_locking: 'false' is not accepted"),
    ("1", "output.hdf5_locking: expected true, false or a string, got 1"),
])
def test_hdf5_locking_refuses_other_values_with_one_config_line(tmp_path, value, expected):
    from asyncopt_mpi.validate import load_config
    from asyncopt_mpi.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_config(DEMO, [f"output.hdf5_locking={value}"], backend="sim", output=str(tmp_path / "x.h5"))
    assert expected in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.timeout(60)
def test_hdf5_locking_unknown_value_ends_the_command_with_exit_2(tmp_path):
    done = subprocess.run(asyncopt_command() + ["run", DEMO, *SMALL_SIM, "--set", "output.hdf5_locking=sometimes",
                          "--output", str(tmp_path / "x.h5")], capture_output=True, text=True, timeout=50)
    assert done.returncode == 2
    lines = project_lines(done.stderr)
    assert len(lines) == 1 and lines[0].startswith("asyncopt: error: output.hdf5_locking: 'sometimes'")
    assert not (tmp_path / "x.h5").exists()


# ---------------------------------------------------------------- memory budget


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fake /proc/meminfo with 64 GiB available and an empty cgroup v2 folder (no limit) in tmp_path."""
    from asyncopt_mpi import memory

    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       {128 * 2**20} kB\nMemAvailable:   {64 * 2**20} kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", str(meminfo))
    monkeypatch.setattr(memory, "CGROUP_ROOT", str(cgroup))
    monkeypatch.setattr(memory, "SELF_CGROUP", str(tmp_path / "self_cgroup"))  # absent: the root cgroup
    return cgroup


GiB = 2**30


def test_memory_without_limits_is_mem_available(machine):
    from asyncopt_mpi import memory

    assert memory.system_available() == 64 * GiB
    assert memory.cgroup_room() is None
    assert memory.available_memory({}) == 64 * GiB


def test_memory_cgroup_max_means_no_limit(machine):
    from asyncopt_mpi import memory

    (machine / "memory.max").write_text("max\n")
    (machine / "memory.current").write_text(f"{GiB}\n")
    assert memory.cgroup_room() is None and memory.available_memory({}) == 64 * GiB


def test_memory_cgroup_limit_minus_usage_at_the_smallest_level(machine, tmp_path):
    from asyncopt_mpi import memory

    (machine / "memory.max").write_text(f"{16 * GiB}\n")
    (machine / "memory.current").write_text(f"{2 * GiB}\n")
    assert memory.cgroup_room() == 14 * GiB
    assert memory.available_memory({}) == 14 * GiB
    job = machine / "slurm" / "job_7"  # the process's own cgroup, tighter than its parent's
    job.mkdir(parents=True)
    (job / "memory.max").write_text(f"{4 * GiB}\n")
    (job / "memory.current").write_text(f"{GiB}\n")
    (tmp_path / "self_cgroup").write_text("0::/slurm/job_7\n")
    assert memory.cgroup_room() == 3 * GiB


def test_memory_slurm_mem_per_node(machine):
    from asyncopt_mpi import memory

    environ = {"SLURM_MEM_PER_NODE": "8192", "SLURM_NTASKS_PER_NODE": "4"}
    assert memory.available_memory(environ) == 8 * GiB
    assert memory.slurm_allocation({"SLURM_MEM_PER_NODE": "0"}) is None  # --mem=0: the whole node


def test_memory_slurm_mem_per_cpu_times_cpus_per_task_and_tasks_here(machine):
    from asyncopt_mpi import memory

    environ = {"SLURM_MEM_PER_CPU": "1024", "SLURM_CPUS_PER_TASK": "2", "SLURM_TASKS_PER_NODE": "3(x2)"}
    assert memory.available_memory(environ) == 1024 * 2**20 * 2 * 3


def test_memory_budget_is_the_smallest_source_per_rank(machine, monkeypatch):
    from asyncopt_mpi import memory

    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE",
                 "SLURM_NTASKS", "SLURM_NNODES", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(name, raising=False)
    (machine / "memory.max").write_text(f"{32 * GiB}\n")
    (machine / "memory.current").write_text("0\n")
    assert memory.budget(0) == 16 * GiB  # half of the cgroup's 32 (MemAvailable: 64)
    monkeypatch.setenv("SLURM_MEM_PER_NODE", str(20 * 1024))
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_NNODES", "2")
    assert memory.budget(0) == 20 * GiB // 2 // 4  # Slurm's 20 GB shared by 4 ranks on this node
    assert memory.budget(123) == 123  # problem.max_memory wins


@pytest.mark.parametrize("environ, ranks", [
    ({}, 1),
    ({"SLURM_NTASKS_PER_NODE": "6"}, 6),
    ({"SLURM_TASKS_PER_NODE": "4(x2)"}, 4),
    ({"SLURM_TASKS_PER_NODE": "4(x2),3", "SLURM_NODEID": "2"}, 3),
    ({"SLURM_TASKS_PER_NODE": "4(x2),3"}, 4),  # node unknown: the largest count
    ({"SLURM_NTASKS": "9", "SLURM_NNODES": "2"}, 5),
    ({"MPI_LOCALNRANKS": "2", "SLURM_NTASKS": "9"}, 2),  # the launcher's own count first
    ({"SLURM_TASKS_PER_NODE": "garbage", "SLURM_NTASKS": "3"}, 3),
])
def test_ranks_on_this_host_from_launcher_and_slurm_variables(environ, ranks):
    from asyncopt_mpi import memory

    assert memory.ranks_on_this_host(environ) == ranks


# ---------------------------------------------------------------- batch scripts


def test_batch_scripts_say_one_blas_thread_per_rank_and_export_no_thread_count():
    for script in sorted(SCRIPTS.glob("*.sbatch")):
        text = script.read_text()
        assert "one BLAS/OpenMP thread" in text, script.name
        for line in text.splitlines():
            if not line.lstrip().startswith("#"):
                assert "_NUM_THREADS" not in line and "--cpus-per-task" not in line, (script.name, line)


def array_task(tmp_path, task: str, **variables: str) -> subprocess.CompletedProcess:
    """jobs/slurm/array.sbatch run by bash as Slurm would run one task (LAUNCHER=env: no MPI, the simulator)."""
    environ = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": task, "LAUNCHER": "env",
               **variables}
    return subprocess.run(["bash", str(SCRIPTS / "array.sbatch"), DEMO, str(tmp_path / "array"), *SMALL_SIM],
                          capture_output=True, text=True, timeout=100, env=environ, cwd=tmp_path)


@pytest.mark.timeout(120)
def test_array_script_takes_its_size_from_the_command_line(tmp_path):
    text = (SCRIPTS / "array.sbatch").read_text()
    assert "#SBATCH --array" not in text
    assert "sbatch --array=0-$((" in text  # the usage shows how to size it
    done = array_task(tmp_path, "3", METHODS="async_sgd rennala_sgd", SEEDS="2")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "array" / "rennala_sgd-seed1.h5"
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "completed" and "seed = 1" in handle.attrs["config"]


@pytest.mark.parametrize("task, expected", [
    ("4", "asyncopt: error: array task 4 is beyond the grid of 4 runs (2 methods x 2 seeds): submit with "
          "--array=0-3"),
    ("x" * 300, "asyncopt: error: SLURM_ARRAY_TASK_ID must be a whole number, got '" + "x" * 200 + "'"),
])
def test_array_task_beyond_the_grid_is_one_line(tmp_path, task, expected):
    done = array_task(tmp_path, task, METHODS="async_sgd rennala_sgd", SEEDS="2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "array").exists()
