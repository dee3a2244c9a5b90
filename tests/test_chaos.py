"""Chaos: 100 seeded random faults against real runs; nothing hangs, nothing prints a traceback, no result is lost.

Faults: SIGKILL of the simulator or of a random MPI rank at a random time, SIGTERM/SIGUSR1 to
the simulator or to mpiexec, two writers on one file at once, `evaluate` on a live file, a
results file truncated at a random length, a full disk (root only: a 2 MB tmpfs), corrupt
config and data files, and a resume of what a killed run left; and hostile ones: a symlink,
hard link or FIFO in a side file's place (.lock, .partial, .reserve, .recovering), an input
(config, plugin, trace) given as the output with --overwrite, a method hook that exits,
raises a BaseException or stalls, a FIFO or device as the config or data, deep or huge
configs, and random bytes written into a results file. Every command runs under a timeout
(a timeout is a hang). Every file a fault plants outside the run's own files (a symlink's
target, an input) is checksummed and must be unchanged at the end. Every results file on
disk must be complete (closed, status completed or stopped) or be made readable by
`asyncopt evaluate`, and one `asyncopt summary` over all of them must work.

`make test` runs every fault kind EACH times, in a seeded random order; ASYNCOPT_TEST_FULL=1
(`make test-full`) draws 140 faults at random by the weights of FAULT_KINDS. CHAOS_SEED and
CHAOS_FAULTS (a number of weighted random draws) change the draw. A command that no fault signals
runs in a process forked from a command server (tests/forked_cli.py via conftest's run_cli: a fresh
process under `make test-full`); a run a fault signals or kills is a fresh `python -m asyncopt_mpi`.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import pytest

from conftest import MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, run_cli
from full_suite import count

DEMO = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")
SEED = int(os.environ.get("CHAOS_SEED", "14"))
FAULTS = count("CHAOS_FAULTS", 0, 140)  # 0: every kind EACH times instead of weighted random draws
EACH = 1
SIM_TIMEOUT, MPI_TIMEOUT = 90, 120
SIM = ["--backend", "sim", "--quiet", "--set", "workers.n=4", "--set", "stop.target=1e-12"]
MPI = ["--quiet", "--set", "stop.target=1e-12"]


class Chaos:
    """Runs commands under timeouts and keeps the counts."""

    def __init__(self, root):
        self.root = root
        self.counts: collections.Counter = collections.Counter()
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self.guarded: dict[str, str] = {}  # files outside the runs' own: path -> sha256 when planted

    def guard(self, path: str) -> str:
        """Remember `path`'s content: no run may change it."""
        with self.lock:
            self.guarded[path] = _sha256(path)
        return path

    def touched(self) -> list[str]:
        return [path for path, digest in self.guarded.items() if not os.path.exists(path) or _sha256(path) != digest]

    def note(self, key: str, problem: str | None = None) -> None:
        with self.lock:
            self.counts[key] += 1
            if problem:
                self.problems.append(problem)

    def start(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, stdin=subprocess.DEVNULL)

    def finish(self, process: subprocess.Popen, timeout: float, what: str) -> tuple[int | None, str]:
        """Wait for `process`; a timeout counts as a hang (its process group is killed)."""
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            self.note("hangs", f"hang: {what}")
            return None, out + err
        return self.ended(process.returncode, out + err, what)

    def cli(self, args: list[str], timeout: float = SIM_TIMEOUT) -> tuple[int | None, str]:
        """`asyncopt ARGS`, a command no fault signals (without the interpreter's start-up: conftest's run_cli)."""
        what = " ".join(args)
        try:
            done = run_cli(args, timeout=timeout)
        except subprocess.TimeoutExpired as expired:  # the command's session was killed
            self.note("hangs", f"hang: {what}")
            return None, f"{expired.stdout or ''}{expired.stderr or ''}"
        return self.ended(done.returncode, done.stdout + done.stderr, what)

    def ended(self, code: int, text: str, what: str) -> tuple[int, str]:
        """A command that ended: counted, and its traceback, if any, kept."""
        self.note("commands")
        if "Traceback" in text:
            self.note("tracebacks", f"traceback: {what}\n{text[-2000:]}")
        return code, text

    def mpi(self, n: int, args: list[str]) -> subprocess.Popen:
        return self.start([MPIEXEC, *MPIEXEC_FLAGS, "-n", str(n), *asyncopt_command(), *args])


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def rank_pids(launcher_pid: int) -> list[int]:
    """Pids of the MPI ranks under a launcher (python processes running asyncopt, not the watchdog)."""
    found, todo = [], [launcher_pid]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "asyncopt_mpi" in command and "guardian" not in command and pid != launcher_pid:
            found.append(pid)
    return found


def wait_unlocked(path: str, seconds: float = 30) -> None:
    """A killed run's watchdog holds PATH.lock while it repairs the file."""
    deadline = time.monotonic() + seconds
    while os.path.exists(path + ".lock") and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_for_file(path: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until the run has started (its results file appears only then) or ended."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def settle(rng: random.Random, path: str, process: subprocess.Popen) -> None:
    """Wait a random time: mostly into the run (after its file appeared), sometimes during start-up."""
    if rng.random() < 0.8:
        wait_for_file(path, process)
        time.sleep(rng.uniform(0.0, 1.5))
    else:
        time.sleep(rng.uniform(0.1, 2.0))


def sim_args(path: str, stop_time: float) -> list[str]:
    return ["run", DEMO, *SIM, "--set", f"stop.time={stop_time}", "--set", "output.snapshot_every=0.5",
            "--output", path]


# ---------------------------------------------------------------- the faults


def kill_simulator(chaos: Chaos, rng: random.Random, folder: str) -> None:
    path = os.path.join(folder, "k.h5")
    process = chaos.start(asyncopt_command() + sim_args(path, 4000))
    settle(rng, path, process)
    process.send_signal(rng.choice([signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1]))
    chaos.finish(process, SIM_TIMEOUT, "signalled simulator")
    wait_unlocked(path)


def kill_a_rank(chaos: Chaos, rng: random.Random, folder: str) -> None:
    path = os.path.join(folder, "m.h5")
    process = chaos.mpi(2, ["run", DEMO, *MPI, "--set", f"stop.time={rng.uniform(1, 2):.2f}", "--output", path])
    settle(rng, path, process)
    ranks = rank_pids(process.pid)
    if ranks:
        try:
            os.kill(rng.choice(ranks), signal.SIGKILL)
        except ProcessLookupError:
            pass
    chaos.finish(process, MPI_TIMEOUT, "mpi run with a killed rank")
    wait_unlocked(path)


def signal_the_launcher(chaos: Chaos, rng: random.Random, folder: str) -> None:
    path = os.path.join(folder, "l.h5")
    process = chaos.mpi(2, ["run", DEMO, *MPI, "--set", "stop.time=2", "--output", path])
    settle(rng, path, process)
    if process.poll() is None:
        process.send_signal(rng.choice([signal.SIGTERM, signal.SIGUSR1]))
    chaos.finish(process, MPI_TIMEOUT, "signalled mpiexec")
    wait_unlocked(path)


def concurrent_writers(chaos: Chaos, rng: random.Random, folder: str) -> None:
    path = os.path.join(folder, "c.h5")
    extra = ["--overwrite"] if rng.random() < 0.5 else []
    first = chaos.start(asyncopt_command() + sim_args(path, 60))
    time.sleep(rng.uniform(0.0, 1.5))
    second = chaos.start(asyncopt_command() + sim_args(path, 40) + extra)
    codes = [chaos.finish(first, SIM_TIMEOUT, "first writer"), chaos.finish(second, SIM_TIMEOUT, "second writer")]
    # One completes; the other is refused naming the live run (or the file, if the first had ended),
    # unless it came after the first had ended and was given --overwrite.
    refused_well = all(code == 2 and ("a run is writing it" in text or "exists" in text)
                       for code, text in codes if code != 0)
    both_ran = all(code == 0 for code, _ in codes) and extra
    if not any(code == 0 for code, _ in codes) or not refused_well or (all(c == 0 for c, _ in codes) and not both_ran):
        chaos.note("bad_outcomes", f"two writers: {[code for code, _ in codes]}: {[t[-300:] for _, t in codes]}")


def evaluate_live(chaos: Chaos, rng: random.Random, folder: str) -> None:
    path = os.path.join(folder, "e.h5")
    process = chaos.start(asyncopt_command() + sim_args(path, 60))
    settle(rng, path, process)
    code, text = chaos.cli(["evaluate", path])
    running = process.poll() is None
    chaos.finish(process, SIM_TIMEOUT, "live run under evaluate")
    if running and code not in (0, 2):
        chaos.note("bad_outcomes", f"evaluate on a live file: exit {code}: {text[-300:]}")


def truncate(chaos: Chaos, rng: random.Random, folder: str, base: str) -> None:
    path = os.path.join(folder, "t.h5")
    data = open(base, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[: rng.randrange(0, len(data))])
    command = rng.choice([["summary", path], ["evaluate", path], ["run", "--resume", path, "--set", "stop.time=9"]])
    code, text = chaos.cli(command, timeout=60)
    if code not in (0, 2):
        chaos.note("bad_outcomes", f"{command[0]} on a truncated file: exit {code}: {text[-300:]}")
    os.unlink(path)  # a file cut by hand is not a result that was recorded


def disk_full(chaos: Chaos, rng: random.Random, folder: str) -> None:
    if os.geteuid() != 0:
        chaos.note("skipped_disk_full")
        return
    mount = os.path.join(folder, "disk")
    os.mkdir(mount)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], capture_output=True).returncode:
        chaos.note("skipped_disk_full")
        return
    try:
        path = os.path.join(mount, "f.h5")
        code, text = chaos.cli(["run", DEMO, *SIM, "--set", f"problem.dim={rng.choice([200, 300, 500])}",
                                "--set", "stop.time=5000", "--set", "output.snapshot_every=0.01", "--output", path])
        if code != 1 or "No space left on device" not in text:
            chaos.note("bad_outcomes", f"disk full: exit {code}: {text[-300:]}")
        if os.path.exists(path):
            shutil.move(path, os.path.join(folder, "f.h5"))
    finally:
        subprocess.run(["umount", "-l", mount], capture_output=True)


def corrupt_input(chaos: Chaos, rng: random.Random, folder: str) -> None:
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    if rng.random() < 0.5:
        config = os.path.join(folder, "bad.toml")
        with open(config, "wb") as handle:
            handle.write(rng.choice([junk, b"[problem]\nname = 'quadratic'\ndim = -3\n", b"[stop]\ntime = 'x'\n"]))
        args = ["run", config, *SIM, "--set", "stop.time=1", "--output", os.path.join(folder, "x.h5")]
    else:
        data = os.path.join(folder, "bad.svm")
        with open(data, "wb") as handle:
            handle.write(rng.choice([junk, b"1 0:1\n", b"+1 3:nan\n-1 1:2\n", b""]))
        args = ["run", DEMO, *SIM, "--set", "problem.name=logistic", "--set", f'problem.data="{data}"',
                "--set", "stop.time=1", "--output", os.path.join(folder, "x.h5")]
    code, text = chaos.cli(args)
    if code not in (0, 2):
        chaos.note("bad_outcomes", f"corrupt input: exit {code}: {text[-300:]}")


def existing_file(chaos: Chaos, rng: random.Random, folder: str, base: str) -> None:
    path = os.path.join(folder, "x.h5")
    shutil.copy(base, path)
    before = open(path, "rb").read()
    code, text = chaos.cli(sim_args(path, 1))
    if code != 2 or open(path, "rb").read() != before:
        chaos.note("bad_outcomes", f"existing file without --overwrite: exit {code}, changed")


def resume_killed(chaos: Chaos, rng: random.Random, folder: str) -> None:
    path = os.path.join(folder, "r.h5")
    process = chaos.start(asyncopt_command() + sim_args(path, 4000))
    settle(rng, path, process)
    process.kill()
    chaos.finish(process, SIM_TIMEOUT, "simulator killed before a resume")
    wait_unlocked(path)
    if os.path.exists(path):
        code, text = chaos.cli(["run", "--resume", path, "--set", "stop.time=4000", "--set", "stop.iterations=50"])
        if code not in (0, 2):
            chaos.note("bad_outcomes", f"resume of a killed run: exit {code}: {text[-300:]}")


def _scratch(chaos: Chaos, folder: str, name: str = "victim.txt") -> str:
    path = os.path.join(folder, name)
    with open(path, "w") as handle:
        handle.write("precious\n")
    return chaos.guard(path)


def hostile_side_file(chaos: Chaos, rng: random.Random, folder: str, base: str) -> None:
    """A symlink (to a scratch file), hard link or FIFO where a run, evaluate or resume makes a side file."""
    path = os.path.join(folder, "o.h5")
    suffix = rng.choice([".lock", ".partial", ".reserve", ".recovering"])
    victim = _scratch(chaos, folder)
    kind = rng.choice(["symlink", "hardlink", "fifo"])
    if kind == "symlink":
        os.symlink(victim, path + suffix)
    elif kind == "hardlink":
        os.link(victim, path + suffix)
    else:
        os.mkfifo(path + suffix)
    how = rng.choice(["sim", "mpi", "evaluate", "resume"])
    if how in ("evaluate", "resume"):
        shutil.copy(base, path)
        args = ["evaluate", path] if how == "evaluate" else ["run", "--resume", path, "--set", "stop.time=9"]
        code, text = chaos.cli(args, timeout=60)
    elif how == "sim":
        code, text = chaos.cli(sim_args(path, 1))
    else:
        code, text = chaos.finish(chaos.mpi(2, ["run", DEMO, *MPI, "--set", "stop.time=1", "--output", path]),
                                  MPI_TIMEOUT, f"mpi run with a {kind} {suffix}")
    if code not in (0, 2) or (code == 2 and os.path.basename(path) not in text):
        chaos.note("bad_outcomes", f"{kind} {suffix} under {how}: exit {code}: {text[-300:]}")
    if os.path.islink(path):
        chaos.note("bad_outcomes", f"{kind} {suffix} under {how}: the results file became a symlink")
    for name in (path + suffix,):
        if os.path.lexists(name) and (os.path.islink(name) or not os.path.isfile(name) or kind == "hardlink"):
            os.unlink(name)  # the planted one: not a result


def input_as_output(chaos: Chaos, rng: random.Random, folder: str) -> None:
    """An input of the run (its config, a plugin, a compute trace) given as its output with --overwrite."""
    config = chaos.guard(shutil.copy(DEMO, os.path.join(folder, "in.toml")))
    plugin = os.path.join(folder, "plug.py")
    with open(plugin, "w") as handle:
        handle.write("# a plugin that registers nothing\n")
    chaos.guard(plugin)
    trace = os.path.join(folder, "trace.csv")
    with open(trace, "w") as handle:
        handle.write("".join(f"{worker},0.01\n" for worker in range(4)))
    chaos.guard(trace)
    target = rng.choice([config, plugin, trace])
    args = ["run", config, "--set", "stop.time=1", "--plugin", plugin, "--set", "workers.compute=\"trace\"",
            "--set", f'workers.compute_trace="{trace}"', "--output", target, "--overwrite"]
    if rng.random() < 0.5:
        code, text = chaos.cli([*args, *SIM])
    else:
        code, text = chaos.finish(chaos.mpi(2, [*args, *MPI]), MPI_TIMEOUT, "mpi input as output")
    if code != 2:
        chaos.note("bad_outcomes", f"input {os.path.basename(target)} as output: exit {code}: {text[-300:]}")


HOOK_PLUGIN = """
import sys, time
import asyncopt_mpi as ao

@ao.register_method
class Hostile(ao.Method):
    name = "hostile_hook"
    description = "a method whose on_result misbehaves"

    def start(self, server):
        for worker in range(server.n_workers):
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

    def on_result(self, server, worker, result):
        if server.version >= 3:
            {body}
        server.publish(server.x - 0.1 * result.vector, grads_used=result.n_grads, max_delay=result.delay)
        server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
        return True
"""
# body of the hook, and the exit status and file status the run must end with
HOOK_BODIES = {
    "exit": ("sys.exit(7)", 1, "failed"), "interrupt": ("raise KeyboardInterrupt", 1, "failed"),
    "base": ("raise GeneratorExit", 1, "failed"),
    "stall": ("time.sleep(10 ** 6)", 128 + signal.SIGTERM, "stopped"),  # simulator: ended by a SIGTERM
}


def hostile_hook(chaos: Chaos, rng: random.Random, folder: str) -> None:
    """A method hook that exits, raises a BaseException or never returns: the run still ends, file closed."""
    kind = rng.choice(sorted(HOOK_BODIES))
    body, expected, expected_status = HOOK_BODIES[kind]
    plugin = os.path.join(folder, "hostile.py")
    with open(plugin, "w") as handle:
        handle.write(HOOK_PLUGIN.replace("{body}", body))
    path = os.path.join(folder, "h.h5")
    args = ["run", DEMO, "--plugin", plugin, "--method", "hostile_hook", "--output", path]
    simulator = rng.random() < 0.5
    if simulator:
        process = chaos.start(asyncopt_command() + [*args, *SIM, "--set", "stop.time=60"])
    else:  # a stalled hook under MPI is interrupted at stop.time + stop.grace (Open MPI's launcher SIGKILLs
        # its ranks a quarter of a second after passing on a SIGTERM, sooner than a hook's grace)
        process = chaos.mpi(2, [*args, *MPI, "--set", "stop.time=3", "--set", "stop.grace=2"])
        expected = 0 if kind == "stall" else expected
    if kind == "stall" and simulator:
        # Into the run, whatever the machine's load: a signal during start-up is another fault (the file's
        # status would be missing, not "stopped").
        wait_for_file(path, process)
        time.sleep(1.0)  # into the stalled hook
        process.send_signal(signal.SIGTERM)
    code, text = chaos.finish(process, MPI_TIMEOUT, f"hook {kind}")
    wait_unlocked(path)
    status = _status(path)
    if code != expected or status != expected_status:
        chaos.note("bad_outcomes", f"hook {kind}: exit {code}, status {status}: {text[-300:]}")


def _status(path: str) -> str | None:
    try:
        with h5py.File(path, "r") as handle:
            return handle.attrs.get("status")
    except OSError:
        return None


def hostile_config(chaos: Chaos, rng: random.Random, folder: str) -> None:
    """A FIFO or device as the config or data, a deeply nested or huge config: one line, exit 2, at once."""
    kind = rng.choice(["fifo config", "device config", "fifo data", "deep config", "huge config"])
    config = os.path.join(folder, "c.toml")
    extra: list[str] = []
    if kind == "fifo config":
        os.mkfifo(config)
    elif kind == "device config":
        config = "/dev/zero"
    elif kind == "fifo data":
        data = os.path.join(folder, "d.svm")
        os.mkfifo(data)
        config = DEMO
        extra = ["--set", "problem.name=logistic", "--set", f'problem.data="{data}"']
    elif kind == "deep config":
        with open(config, "w") as handle:
            handle.write("[problem]\nname = " + "[" * 3000 + "]" * 3000 + "\n")
    else:
        with open(config, "w") as handle:
            handle.write("[problem]\n" + "".join(f"# {index:09d} padding\n" for index in range(200_000)))
    args = ["run", config, *extra, "--set", "stop.time=1", "--output", os.path.join(folder, "x.h5")]
    if rng.random() < 0.5:
        code, text = chaos.cli([*args, *SIM], timeout=60)
    else:
        code, text = chaos.finish(chaos.mpi(2, [*args, *MPI]), MPI_TIMEOUT, f"mpi {kind}")
    if code != 2 or text.count("asyncopt: error") != 1:
        chaos.note("bad_outcomes", f"{kind}: exit {code}: {text[-300:]}")


def corrupt_results(chaos: Chaos, rng: random.Random, folder: str, base: str) -> None:
    """Random bytes written into a results file, then read by every reader: one line, no side file left."""
    path = os.path.join(folder, "z.h5")
    data = bytearray(open(base, "rb").read())
    for _ in range(rng.randrange(1, 20)):
        at = rng.randrange(len(data))
        data[at : at + rng.randrange(1, 64)] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    command = rng.choice([["summary", path], ["evaluate", path], ["final-stats", path], ["plot", path, "-o",
                          os.path.join(folder, "z.png")], ["run", "--resume", path, "--set", "stop.time=9"]])
    code, text = chaos.cli(command, timeout=60)
    if code not in (0, 1, 2):
        chaos.note("bad_outcomes", f"{command[0]} on a corrupted file: exit {code}: {text[-300:]}")
    if code == 0 and command[0] == "evaluate":
        return  # repaired: a results file like any other
    os.unlink(path)  # bytes written by hand are not a result that was recorded


FAULT_KINDS = {
    kill_simulator: 16, kill_a_rank: 14, signal_the_launcher: 10, concurrent_writers: 12, evaluate_live: 8,
    truncate: 12, disk_full: 6, corrupt_input: 10, existing_file: 4, resume_killed: 8,
    hostile_side_file: 10, input_as_output: 6, hostile_hook: 8, hostile_config: 8, corrupt_results: 10,
}


def draw_faults(rng: random.Random) -> list:
    """The faults to run: FAULTS weighted random draws, or (FAULTS = 0) every kind EACH times, shuffled."""
    kinds = list(FAULT_KINDS)
    if FAULTS:
        return rng.choices(kinds, weights=[FAULT_KINDS[kind] for kind in kinds], k=FAULTS)
    draws = kinds * EACH
    rng.shuffle(draws)  # kinds side by side: faults of different kinds run at the same time
    return draws


def is_complete(path: str) -> bool:
    try:
        with h5py.File(path, "r") as handle:
            return handle.attrs.get("status") in ("completed", "stopped") and "metrics" in handle
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.timeout(1500)
def test_seeded_faults_of_every_kind_leave_no_hang_no_traceback_and_every_file_readable(tmp_path):
    chaos = Chaos(tmp_path)
    rng = random.Random(SEED)
    base = str(tmp_path / "base.h5")
    code, text = chaos.cli(sim_args(base, 2))
    assert code == 0, text
    draws = draw_faults(rng)
    tasks = []
    for index, kind in enumerate(draws):
        folder = tmp_path / f"{index:03d}-{kind.__name__}"
        folder.mkdir()
        extra = (base,) if kind in (truncate, existing_file, hostile_side_file, corrupt_results) else ()
        tasks.append((kind, random.Random(rng.random()), str(folder), extra))
    started = time.monotonic()

    def one(task) -> None:
        kind, own_rng, folder, extra = task
        try:
            kind(chaos, own_rng, folder, *extra)
        except Exception as exc:  # a fault the harness itself did not expect: count, do not stop the others
            chaos.note("bad_outcomes", f"{kind.__name__}: {type(exc).__name__}: {exc}")
        chaos.note(f"fault {kind.__name__}")

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(one, tasks))
    files = sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(tmp_path) for name in names
        if name.endswith(".h5") and os.path.basename(folder) != "disk"
    )
    complete = [path for path in files if is_complete(path)]
    repaired, unreadable = [], []

    def evaluate(path: str) -> None:
        code, text = chaos.cli(["evaluate", path])
        (repaired if code == 0 else unreadable).append(path if code == 0 else f"{path}: {text[-300:]}")

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(evaluate, [path for path in files if path not in complete]))
    readable = complete + repaired
    code, text = chaos.cli(["summary", *readable]) if readable else (0, "")
    leftovers = [os.path.join(folder, name) for folder, _, names in os.walk(tmp_path) for name in names
                 if name.endswith((".lock", ".partial", ".reserve", ".recovering"))]
    counts = chaos.counts
    touched = chaos.touched()
    if os.environ.get("CHAOS_VERBOSE"):
        print("\n".join(files + chaos.problems + leftovers))
    print(f"\nchaos (seed {SEED}): {len(draws)} faults in {time.monotonic() - started:.0f} s, "
          f"{counts['commands']} commands, {counts['hangs']} hangs, {counts['tracebacks']} tracebacks, "
          f"{len(files)} results files: {len(complete)} complete, {len(repaired)} repaired by evaluate, "
          f"{len(unreadable)} unreadable; {counts['bad_outcomes']} unexpected outcomes; "
          f"{len(leftovers)} lock/partial/reserve files left; {len(touched)} of {len(chaos.guarded)} files "
          f"outside the runs' own touched; disk-full skipped {counts['skipped_disk_full']}; "
          + ", ".join(f"{key[6:]} {value}" for key, value in sorted(counts.items()) if key.startswith("fault ")))
    assert counts["hangs"] == 0 and counts["tracebacks"] == 0, "\n".join(chaos.problems)
    assert not touched, touched
    assert not unreadable, unreadable
    assert code == 0, text
    assert counts["bad_outcomes"] == 0, "\n".join(chaos.problems)
