"""Shared helpers: launching the real `asyncopt` command, under mpiexec or in the simulator."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return any(line.startswith("flags") and flag in line.split() for line in handle)
    except OSError:
        return False


# Before numpy loads OpenBLAS: the tests that compare with numbers stored in tests/data and in the tests
# (files "bit for bit as the code before") were recorded with OpenBLAS's Haswell kernels; where OpenBLAS
# picks others (AVX-512 CPUs: SkylakeX, Zen) a dot product's last bits differ. Every AVX2 CPU runs them.
if "OPENBLAS_CORETYPE" not in os.environ and _cpu_has("avx2"):
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"

# Before h5py loads numpy: the package's threads module gives this process one BLAS thread, as in the command.
# With OpenBLAS's two spinning threads on a loaded machine, an in-process PNN run took 92 s of CPU instead of 3.
import asyncopt_mpi  # noqa: F401

import h5py
import pytest
from forked_cli import CommandPool
from full_suite import FULL
from hypothesis import settings
from heavy_first import heavy_files_first
from process_marker import mark_process_tests

# Property tests draw the same examples on every run, so CI is repeatable; explore more locally
# with HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_process_tests(items)  # first: the order below reads the `process` marker
    heavy_files_first(items)

BIN = os.path.dirname(sys.executable)
MPIEXEC = shutil.which("mpiexec", path=BIN) or shutil.which("mpiexec")


def mpi_implementation(mpiexec: str | None = MPIEXEC) -> str:
    """"openmpi", "mpich" or "unknown": which MPI the launcher (and so mpi4py in this venv) belongs to."""
    if mpiexec is None:
        return "unknown"
    try:
        text = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return "openmpi" if "Open MPI" in text or "OpenRTE" in text else "mpich" if "HYDRA" in text else "unknown"


MPI_IMPLEMENTATION = mpi_implementation()
if MPI_IMPLEMENTATION == "openmpi":
    # Test environment only (never users' commands): Open MPI refuses root without these two, and
    # more ranks than cores without --oversubscribe, which this variable gives every mpiexec the
    # tests start (also those started by `asyncopt sweep` and the benchmarks).
    os.environ["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    os.environ["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    os.environ["PRTE_MCA_rmaps_default_mapping_policy"] = ":oversubscribe"
MPIEXEC_FLAGS = ["--oversubscribe"] if MPI_IMPLEMENTATION == "openmpi" else []

# Blocks launchers print around a failed job (prterun's "----" boxes, hydra's "====" ones): not ours.
_RULE = re.compile(r"^\s*(-{20,}|={20,})\s*$")
_LAUNCHER_LINE = re.compile(
    r"^\s*\[(proxy:|mpiexec@|prterun|prte|[\w.-]+:\d+\])"  # hydra's and Open MPI's prefixed lines
    r"|^\s*(prterun|mpiexec|mpirun|prte)\b.*(noticed|detected|terminat)"
    r"|^\s*\[(warn|err)\] Epoll "  # libevent inside Open MPI's launcher, when ranks exit together
)


def launcher_status_after(signal_number: int) -> int:
    """mpiexec's exit status after a stop signal sent to mpiexec itself (README: "Stopping a run").

    0 for SIGUSR1 and 128+n otherwise under MPICH's hydra, which passes on the ranks' status.
    Open MPI's prterun forwards the signal (SIGINT as SIGTERM), the ranks stop cleanly and exit
    128+n, but prterun itself then exits 1: that part is the launcher's, not the project's.
    """
    if signal_number == signal.SIGUSR1:
        return 0
    return 1 if MPI_IMPLEMENTATION == "openmpi" else 128 + signal_number


def project_lines(stderr: str) -> list[str]:
    """The non-empty lines the project printed: the launcher's own banner blocks and lines are dropped.

    Tests compare what asyncopt prints, not what a launcher (MPICH's hydra, Open MPI's prterun) adds
    around a job that exits non-zero.
    """
    kept: list[str] = []
    block: list[str] | None = None
    for line in stderr.splitlines():
        if _RULE.match(line):
            if block is None:
                block = []
            else:
                text = " ".join(block)
                if not re.search(r"prterun|mpirun|mpiexec|PRTE|Open MPI|YOUR APPLICATION|process", text, re.I):
                    kept += [item for item in block if item.strip()]
                block = None
            continue
        if block is not None:
            block.append(line)
        elif line.strip() and not _LAUNCHER_LINE.search(line):
            kept.append(line)
    if block:
        kept += [item for item in block if item.strip()]
    return kept


def asyncopt_command() -> list[str]:
    return [sys.executable, "-m", "asyncopt_mpi"]


COMMANDS = CommandPool()  # the servers run_cli forks its commands from, started as needed


def run_cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`asyncopt ARGS` in a process of its own, with this process's environment and working folder.

    The process is forked from a server that has imported the package (tests/forked_cli.py): the
    command's own code, exit status and output, without the interpreter's start-up per command
    (under ASYNCOPT_TEST_FULL=1, a fresh `python -m asyncopt_mpi`). A test about start-up itself
    starts `asyncopt_command()` directly. A timeout raises subprocess.TimeoutExpired, as
    subprocess.run does.
    """
    if FULL:
        return subprocess.run(asyncopt_command() + args, capture_output=True, text=True, timeout=timeout)
    done = COMMANDS.run(args, timeout=timeout)
    if done.returncode is None:
        raise subprocess.TimeoutExpired(done.args, timeout, done.stdout, done.stderr)
    return done


def run_mpi(n_ranks: int, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`mpiexec -n N asyncopt ARGS`; a hang fails the test after `timeout` seconds."""
    if MPIEXEC is None:
        pytest.fail("mpiexec not found: install the test extras (pip install -e '.[mpich,test]')")
    command = [MPIEXEC, *MPIEXEC_FLAGS, "-n", str(n_ranks)] + asyncopt_command() + args
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def remove_stale_openmpi_sessions() -> None:
    """Remove the session folders (TMPDIR/ompi.<pid>) of Open MPI launchers that are gone.

    A launcher killed with SIGKILL (as several tests do) leaves its folder behind, and a later
    launcher that gets the same pid (pid_max is 32768 on this machine) cannot start: "The PMIx
    server's listener thread failed to start", exit 213, before any rank runs.
    """
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        if name.startswith("ompi.") and name[5:].isdigit():
            try:
                with open(f"/proc/{name[5:]}/comm") as handle:
                    alive = handle.read().strip() in ("prterun", "prte", "mpiexec", "mpirun")
            except OSError:
                alive = False
            if not alive:
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_stale_openmpi_sessions():
    """After every test, under Open MPI: no session folder of a killed launcher is left for a new one to meet."""
    yield
    if MPI_IMPLEMENTATION == "openmpi":
        remove_stale_openmpi_sessions()


def kill_session(leader: int) -> None:
    """SIGKILL every process of the session `leader` started (a launcher run with start_new_session).

    The process group is not enough: Open MPI's launcher puts each rank in a group of its own. The
    project's file guardian starts a session of its own, so it survives, as it would a real kill.
    """
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == leader:
                    os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def sets(**sections: dict) -> list[str]:
    """--set arguments from {section: {key: value}} (strings are quoted as TOML strings)."""
    out = []
    for section, values in sections.items():
        for key, value in values.items():
            text = f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else repr(value)
            out += ["--set", f"{section}.{key}={text}"]
    return out


def wait_for_snapshots(path, count: int = 2, seconds: float = 60, pause: float = 0.1) -> None:
    """Wait until a running run's file holds `count` snapshots (a hang fails the test after `seconds`)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if len(read(path, "snapshots/time")["snapshots/time"]) >= count:
                return
        except (OSError, KeyError):
            pass
        time.sleep(pause)
    pytest.fail(f"the run did not record {count} snapshots within {seconds:g} s")


def read(path, *names: str) -> dict:
    with h5py.File(path, "r", swmr=True, libver="latest") as handle:
        return {name: handle[name][()] for name in names}


def attrs(path) -> dict:
    with h5py.File(path, "r", swmr=True, libver="latest") as handle:
        return {key: (value.decode() if isinstance(value, bytes) else value) for key, value in handle.attrs.items()}


def graph_attrs(path) -> dict:
    """/graph's attributes of a decentralized run."""
    with h5py.File(path, "r", swmr=True, libver="latest") as handle:
        return dict(handle["graph"].attrs)


def graph_links(path) -> dict[tuple[int, int], float]:
    """(source, dest) -> rho of every link recorded in /graph."""
    found = graph_attrs(path)
    return dict(zip(zip(found["link_source"].tolist(), found["link_dest"].tolist()), found["link_time"].tolist()))


def events(path) -> dict:
    names = ("events/worker", "events/point_version", "events/delay", "events/accepted", "events/time")
    data = read(path, *names)
    return {name.split("/")[1]: data[name] for name in names}


def replay_collection(path, batch: int) -> int:
    """Check Rennala's rule event by event; returns the number of steps it implies."""
    data = events(path)
    version, collected = 0, 0
    for point_version, accepted in zip(data["point_version"], data["accepted"]):
        if accepted:
            assert point_version == version, "a gradient from another point was used"
            collected += 1
            if collected == batch:
                version, collected = version + 1, 0
        else:
            assert point_version != version, "a fresh gradient was dropped"
    return version


def simulate(tmp_path, method: str, overrides: list[str], name: str = "run"):
    """Run the simulator in this process; returns the results file's path."""
    from asyncopt_mpi.validate import load_config
    from asyncopt_mpi.runtime.session import run_sim

    path = tmp_path / f"{name}.h5"
    config = load_config(None, overrides, method=method, backend="sim", output=str(path))
    assert run_sim(config) == 0
    return path


def pytest_sessionstart(session) -> None:
    if MPI_IMPLEMENTATION == "openmpi":
        remove_stale_openmpi_sessions()  # left by earlier runs


def pytest_sessionfinish(session) -> None:
    COMMANDS.close()


@contextlib.contextmanager
def registered_methods(*classes):
    """Methods registered for one test only (other tests list the registered methods)."""
    from asyncopt_mpi import register_method
    from asyncopt_mpi.methods import METHODS, ORIGINS

    for cls in classes:
        register_method(cls)
    try:
        yield
    finally:
        for cls in classes:
            METHODS.pop(cls.name, None)
            ORIGINS.pop(cls.name, None)


@pytest.fixture
def asyncopt_loggers():
    """The "asyncopt" and "asyncopt.outcome" loggers, their handlers, levels and propagation restored after the test."""
    from asyncopt_mpi.logs import log, outcome

    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in (log, outcome)]
    yield log, outcome
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def command_lines(asyncopt_loggers):
    """The command's handler installed (logs.configure): a run called in-process prints the lines the command prints."""
    from asyncopt_mpi.logs import configure

    configure()
