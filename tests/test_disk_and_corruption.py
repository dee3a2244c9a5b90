"""A full disk, a damaged results file and a tight memory limit: one line and a documented exit status each.

`evaluate` on a full disk (a file whose writer was killed, or a finished one) ends with exit 1 and
one line, leaving the file byte for byte as it was and no side file; a disk another program fills
during an MPI run ends it with exit 1 and one line (no launcher banner); every command that reads a
results file answers a damaged one in one line, also `run --resume` under mpiexec (one line, not
one per rank); under `ulimit -v 200000` the command ends in one line instead of hanging in
OpenBLAS's start-up, since thread pools default to one thread per process.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time

import pytest

from conftest import MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, project_lines, run_cli, run_mpi
from test_file_safety import DEMO, SIM, digest, sim_file, small_disk, wait_for  # noqa: F401 (small_disk: a fixture)

SIDE_SUFFIXES = (".lock", ".partial", ".reserve", ".recovering")


def killed_copy(source: str, path: str) -> str:
    """A copy of `source` as a killed run leaves it: marked open for writing (SWMR), status running."""
    with open(source, "rb") as handle, open(path, "wb") as copy:
        copy.write(handle.read())
    code = ("import h5py, os, sys\nf = h5py.File(sys.argv[1], 'r+', libver='latest')\nf.swmr_mode = True\n"
            "f.attrs['status'] = 'running'\nf.flush()\nos._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, path], check=True, timeout=60)
    return path


def fill(folder, leave: int) -> None:
    """Another program takes all but about `leave` bytes of the disk of `folder` (unbuffered writes)."""
    with open(os.path.join(folder, "filler"), "wb", buffering=0) as filler:
        for size in (65536, 4096):
            try:
                while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave:
                    filler.write(bytes(size))
            except OSError:
                pass


def assert_one_line(done: subprocess.CompletedProcess, codes: tuple[int, ...]) -> str:
    lines = project_lines(done.stderr)
    assert done.returncode in codes, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and len(lines) == 1 and lines[0].startswith("asyncopt: error: "), done.stderr
    return lines[0]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind, leave", [("killed", 8192), ("killed", 0), ("completed", 8192)])
def test_evaluate_on_a_full_disk_ends_in_one_line_and_leaves_the_file_as_it_was(small_disk, tmp_path, kind, leave):
    finished = sim_file(tmp_path / "run.h5")
    path = str(small_disk / "f.h5")
    if kind == "killed":
        killed_copy(finished, path)
    else:
        with open(finished, "rb") as handle, open(path, "wb") as copy:
            copy.write(handle.read())
    before = digest(path)
    fill(small_disk, leave)
    done = run_cli(["evaluate", path], timeout=120)
    line = assert_one_line(done, (1,))  # not 139 (SIGSEGV), not an OSError traceback from the lock
    assert "No space left on device" in line
    assert sorted(os.listdir(small_disk)) == ["f.h5", "filler"]  # no .lock, no .recovering
    assert digest(path) == before


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_a_disk_filled_by_another_program_during_an_mpi_run_ends_it_with_exit_1_on_every_rank(small_disk):
    path = small_disk / "m.h5"
    command = [MPIEXEC, *MPIEXEC_FLAGS, "-n", "2", *asyncopt_command(), "run", DEMO, "--quiet", "--set", "stop.time=2e5",
               "--set", "stop.target=1e-12", "--set", "output.snapshot_every=0.2", "--output", str(path)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: path.exists() or run.poll() is not None, 120) and run.poll() is None, "never started"
        time.sleep(1)  # a few flushes into the run
        fill(small_disk, 0)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    # Not 9 with hydra's BAD TERMINATION banner (the other ranks SIGKILLed after rank 0 left without MPI_Finalize).
    assert run.returncode == 1 and "BAD TERMINATION" not in err, (run.returncode, err[-2000:])
    assert "results file: No space left on device" in assert_one_line(subprocess.CompletedProcess([], 1, out, err), (1,))


def damaged_copies(source: str, folder, count: int, broken) -> list[str]:
    """`count` copies of `source` with random bytes overwritten (seeded) for which `broken(path)` holds."""
    rng = random.Random(6)
    data = open(source, "rb").read()
    found: list[str] = []
    for attempt in range(2000):
        damaged = bytearray(data)
        for _ in range(rng.randint(4, 24)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path = str(folder / f"damaged-{attempt}.h5")
        with open(path, "wb") as handle:
            handle.write(damaged)
        if broken(path):
            found.append(path)
            if len(found) == count:
                return found
        else:
            os.unlink(path)
    pytest.fail(f"only {len(found)} damaged copies of {source} of the kind wanted")


def unreadable(path: str) -> bool:
    """read_run refuses it (before: a traceback from several readers)."""
    from asyncopt_mpi.errors import UserError
    from asyncopt_mpi.results import read_run

    try:
        read_run(path)
    except UserError:
        return True
    return False


@pytest.mark.timeout(600)
def test_every_command_answers_a_damaged_results_file_in_one_line(tmp_path):
    finished = sim_file(tmp_path / "run.h5")
    commands = {
        "summary": lambda path: ["summary", path],
        "final-stats": lambda path: ["final-stats", "--metric", "loss", path],
        "plot": lambda path: ["plot", path, "-o", str(tmp_path / "plot.png")],
        "evaluate": lambda path: ["evaluate", path],
        "resume": lambda path: ["run", "--resume", path, "--set", "stop.time=3", "--quiet"],
    }
    for path in damaged_copies(finished, tmp_path, 3, unreadable):
        for name, command in commands.items():
            done = run_cli(command(path), timeout=120)
            assert "Traceback" not in done.stderr, (name, path, done.stderr[-2000:])
            if done.returncode != 0:
                assert_one_line(done, (1, 2))
            left = [item for item in os.listdir(tmp_path) if item.endswith(SIDE_SUFFIXES)]
            assert not left, (name, path, left)


def backend_unreadable(path: str) -> bool:
    """The file opens, but its attributes cannot be read (before: a traceback on every rank of a resume)."""
    from asyncopt_mpi.errors import UserError
    from asyncopt_mpi.results import open_results, read_backend

    try:
        open_results(path).close()
    except UserError:
        return False
    try:
        read_backend(path)
    except UserError:
        return True
    return False


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_a_damaged_file_resumed_under_mpiexec_gets_one_line(tmp_path):
    # Damaged so that not even its backend can be read: a simulator's file serves (made without mpiexec).
    path = damaged_copies(sim_file(tmp_path / "made.h5"), tmp_path, 1, backend_unreadable)[0]
    done = run_mpi(3, ["run", "--resume", path, "--set", "stop.time=2", "--quiet"], timeout=120)
    line = assert_one_line(done, (2,))
    assert "cannot read this results file" in line


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (200_000 * 1024, 200_000 * 1024))


@pytest.mark.timeout(180)
def test_a_tight_memory_limit_ends_the_command_in_one_line_not_a_hang(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    done = subprocess.run(asyncopt_command() + ["run", DEMO, *SIM, "--output", str(tmp_path / "m.h5")],
                          capture_output=True, text=True, timeout=120, env=environment, preexec_fn=_limit_memory,
                          stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        pytest.skip("200 MB of address space was enough here: nothing to refuse")
    line = assert_one_line(done, (1, 2))
    assert "out of memory" in line or "MemoryError" in line


def test_thread_pools_get_one_thread_unless_the_user_chose():
    code = "import os, asyncopt_mpi; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'])"
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment)
    assert done.stdout.split() == ["1", "1"], done.stderr
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(environment, OMP_NUM_THREADS="3"))
    assert done.stdout.split() == ["1", "3"], done.stderr
