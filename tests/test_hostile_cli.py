"""Every subcommand with hostile arguments ends in one line and a documented exit code, never a traceback or a hang.

The walk covers every command the `asyncopt` group has (a new command gets the generic
cases until it is given its own): missing files, directories, /dev/null, text files,
binary garbage, empty and very long strings, unicode, 3000-level-deep paths, huge,
negative and nan numbers, unknown keys and wrong types in --set. Each case runs the real
command in a process of its own under a timeout and a 6 GB address-space limit (a hostile
size that is not refused becomes a MemoryError traceback instead of the kernel's OOM
killer): a child forked from a server that has imported the package (tests/forked_cli.py,
no start-up per case), or under ASYNCOPT_TEST_FULL=1 (`make test-full`) a fresh
`python -m asyncopt_mpi`. Accepted outcomes: exit 0; or exit 1, 2 or 128+n with exactly one line on
stderr (or click's usage block for a usage error, exit 2), after any "asyncopt: warning:"
lines (one per skipped file of a folder).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import COMMANDS
from forked_cli import CommandPool
from full_suite import FULL

TIMEOUT = 120
DOCUMENTED = {0, 1, 2}
MEMORY_LIMIT = 6 * 2**30

# Case files live in one folder made by the `files` fixture; {name} below stands for its path.
PATHS = {
    "missing": "{text}/dir/x.h5",  # under a regular file: cannot be created, even by root
    "directory": "{folder}",
    "devnull": "/dev/null",
    "text": "{text}",
    "garbage": "{garbage}",
    "empty_file": "{empty}",
    "foreign_h5": "{foreign}",
    "empty_string": "",
    "long": "x" * 5000,
    "unicode": "r\u00e9sultat-\u00fc\u00df-\U0001F600.h5",
    "deep": "d/" * 3000 + "x.h5",
}
NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e400", "99999999999999999999", "abc", "", "\U0001F600"]
SETS = [
    "problem.dim=nan", "problem.dim=1e400", "problem.dim=-5", "problem.dim=2.5", "problem.dim=[1, 2]",
    "problem.dim=99999999999999999999", "workers.n=-1", "workers.n=0", "workers.n=nan",
    "method.lr=nan", "method.lr=-1", "method.lr=\"fast\"", "stop.time=nan", "stop.time=-1", "stop.time=inf",
    "stop.iterations=-3", "workers.compute_times=[\"a\"]", "workers.slowdown=[[1]]", "unknown.key=1",
    "problem.bogus=1", "bogus", "=", "problem.=1", ".dim=1", "problem", "x" * 5000 + "=1",
    "probl\u00e8me.dim=1", "problem.name=\U0001F600", "problem.max_memory=-1", "problem.max_memory=nan",
    "problem.name=logistic problem.data=x", "problem.data={garbage}", "problem.data={text}", "problem.data=/dev/null",
    "problem.data={folder}", "method.name=", "output.snapshot_every=nan", "workers.compute=\"\"",
    "graph.topology=mesh", "output.path={{bogus}}",
]
SIM = ["--backend", "sim", "--quiet", "--set", "workers.n=2", "--set", "stop.iterations=3"]


def _cases() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []
    add = lambda name, argv: cases.append((name, argv))  # noqa: E731
    for key, path in PATHS.items():
        add(f"run-config-{key}", ["run", path, "--backend", "sim", "--set", "workers.n=2"])
        add(f"run-resume-{key}", ["run", "--resume", path])
        add(f"run-output-{key}", ["run", *SIM, "--output", path])
        add(f"summary-{key}", ["summary", path])
        add(f"plot-input-{key}", ["plot", path, "-o", "{folder}/out.png"])
        add(f"plot-output-{key}", ["plot", "{results}", "-o", path])
        add(f"evaluate-{key}", ["evaluate", path])
        add(f"theory-{key}", ["theory", path])
        add(f"sweep-config-{key}", ["sweep", path, "--out", "{folder}/sweep-" + key, "--set", "workers.n=2"])
        add(f"sweep-out-{key}", ["sweep", "--out", path, "--grid", "method.lr=0.1", *SIM[2:]])
        add(f"methods-plugin-{key}", ["methods", "--plugin", path])
    for index, item in enumerate(SETS):
        argv = ["run", *SIM]
        for part in item.split(" ") if item.startswith("problem.name=logistic") else [item]:
            argv += ["--set", part]
        add(f"run-set-{index}", argv)
        add(f"theory-set-{index}", ["theory", "--set", item])
        add(f"resume-set-{index}", ["run", "--resume", "{results_copy}", "--set", item])
    for index, number in enumerate(NUMBERS):
        add(f"theory-eps-{index}", ["theory", "--eps", number])
        add(f"theory-sigma2-{index}", ["theory", "--sigma2", number])
        add(f"plot-dpi-{index}", ["plot", "{results}", "-o", "{folder}/dpi.png", "--dpi", number])
        add(f"plot-figsize-{index}", ["plot", "{results}", "-o", "{folder}/fs.png", "--figsize", f"{number},{number}"])
        add(f"plot-ylim-{index}", ["plot", "{results}", "-o", "{folder}/yl.png", "--ylim", f"{number},{number}"])
        add(f"sweep-seeds-{index}", ["sweep", "--out", f"{{folder}}/seeds{index}", "--grid", "method.lr=0.1",
                                     "--seeds", number, *SIM[2:]])
        add(f"sweep-processes-{index}", ["sweep", "--out", f"{{folder}}/procs{index}", "--grid", "method.lr=0.1",
                                         "--processes", number, *SIM[2:]])
        add(f"sweep-ranks-{index}", ["sweep", "--out", f"{{folder}}/ranks{index}", "--grid", "method.lr=0.1",
                                     "--backend", "mpi", "--ranks", number, "--set", "stop.time=1"])
    for index, grid in enumerate(["", "x", "method.lr=", "method.lr=nan,inf", "bogus.key=1,2", "=,,,",
                                  "problem.dim=" + ",".join(str(i) for i in range(2, 400)), "method.lr=\U0001F600"]):
        add(f"sweep-grid-{index}", ["sweep", "--out", f"{{folder}}/grid{index}", "--grid", grid, *SIM[2:]])
    for name, value in [("x", "bogus"), ("y", "bogus"), ("x", ""), ("title", "x" * 5000), ("style", "nonexistent"),
                        ("style", "/dev/null"), ("export", "{folder}"), ("export", "{text}/x.csv"),
                        ("output", "{folder}/x.xyz"), ("output", "/dev/full"), ("output", "{folder}")]:
        flag = "-o" if name == "output" else f"--{name}"
        add(f"plot-{name}-{value[:12]}", ["plot", "{results}", "-o", "{folder}/p.png", flag, value]
            if name != "output" else ["plot", "{results}", flag, value])
    for name, extra in [("sort-bogus", ["--sort", "bogus"]), ("sort-empty", ["--sort", ""]), ("csv-json", ["--csv", "--json"]),
                        ("many", ["{results}"] * 50), ("folder-bad", ["{folder}"])]:
        add(f"summary-{name}", ["summary", "{results}", *extra])
    add("sweep-mpiexec-missing", ["sweep", "--out", "{folder}/mpx", "--grid", "method.lr=0.1", "--backend", "mpi",
                                  "--ranks", "3", "--mpiexec", "/nonexistent/mpiexec", "--set", "stop.time=1"])
    add("run-method-empty", ["run", *SIM, "--method", ""])
    add("run-method-unicode", ["run", *SIM, "--method", "\U0001F600"])
    add("run-backend-bogus", ["run", "--backend", "bogus"])
    add("run-mpi-singleton", ["run", "--set", "stop.time=1", "--output", "{folder}/single.h5"])
    add("run-log-level", ["run", *SIM, "--log-level", "LOUD"])
    add("methods-markdown", ["methods", "--markdown"])
    add("bogus-command", ["bogus"])
    add("no-command", [])
    return cases


CASES = _cases()


def _generic(command: str) -> list[tuple[str, list[str]]]:
    """Cases for a command the table above does not know yet."""
    return [(f"{command}-{key}", [command, path]) for key, path in PATHS.items()] + [
        (f"{command}-bogus-option", [command, "--bogus"]), (f"{command}-help", [command, "--help"])]


def _all_cases() -> list[tuple[str, list[str]]]:
    from asyncopt_mpi.cli import cli

    known = {argv[0] for _, argv in CASES if argv}
    extra = [case for command in sorted(set(cli.commands) - known) for case in _generic(command)]
    return CASES + extra


@pytest.fixture(scope="module")
def commands() -> CommandPool:
    """The servers the commands are forked from (conftest's; the walk runs one case at a time, so one server:
    each costs an import of the package, about 1.8 s of CPU, and the suite runs on every core already)."""
    return COMMANDS


@pytest.fixture(scope="module")
def files(tmp_path_factory, commands) -> dict[str, str]:
    return make_files(tmp_path_factory.mktemp("hostile"), commands)


def make_files(folder, commands: CommandPool) -> dict[str, str]:
    """The case files in `folder` (a pathlib.Path): text, garbage, empty, foreign HDF5, a good results file."""
    paths = {"folder": str(folder)}
    (folder / "text.txt").write_text("not a results file\n" * 10)
    (folder / "garbage.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "empty.h5").write_bytes(b"")
    with h5py.File(folder / "foreign.h5", "w") as handle:
        handle.create_dataset("data", data=np.arange(10))
        handle.attrs["status"] = 7
    (folder / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then nothing
    paths |= {"text": str(folder / "text.txt"), "garbage": str(folder / "garbage.bin"),
              "empty": str(folder / "empty.h5"), "foreign": str(folder / "foreign.h5")}
    results = folder / "good" / "run.h5"
    results.parent.mkdir()
    done = commands.run(["run", *SIM, "--output", str(results)], timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    paths["results"] = str(results)
    copy = folder / "good" / "copy.h5"
    shutil.copy(results, copy)
    paths["results_copy"] = str(copy)
    return paths


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    os.setsid()


def _run(argv: list[str], files: dict[str, str], cwd: str, commands: CommandPool) -> tuple[int | None, str, str]:
    argv = [arg.replace("{folder}", files["folder"]).replace("{text}", files["text"])
            .replace("{garbage}", files["garbage"]).replace("{empty}", files["empty"])
            .replace("{foreign}", files["foreign"]).replace("{results_copy}", files["results_copy"])
            .replace("{results}", files["results"]) for arg in argv]
    if not FULL:
        done = commands.run(argv, cwd=cwd, timeout=TIMEOUT, memory_limit=MEMORY_LIMIT)
        return done.returncode, done.stdout, done.stderr if done.returncode is not None else f"no exit after {TIMEOUT} s"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "asyncopt_mpi", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                               preexec_fn=_limit_memory)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the child and anything it started (its own session)
        process.communicate()
        return None, "", f"no exit after {TIMEOUT} s"
    return process.returncode, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")


def _problem(name: str, code: int | None, stdout: str, stderr: str) -> str | None:
    """What is wrong with one outcome (None: acceptable)."""
    if code is None:
        return f"{name}: hang ({stderr})"
    if "Traceback" in stdout + stderr:
        return f"{name}: exit {code}, traceback: ...{stderr.strip()[-300:]!r}"
    if code not in DOCUMENTED and not 129 <= code <= 128 + 64:
        return f"{name}: undocumented exit {code}: {stderr.strip()[-300:]!r}"
    # A warning per skipped file (summary and plot of a folder) comes before the one error line.
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("asyncopt: warning:")]
    usage = code == 2 and any(line.startswith("Usage:") for line in lines)
    if code != 0 and not usage and len(lines) != 1:
        return f"{name}: exit {code} with {len(lines)} lines on stderr: {stderr.strip()[-400:]!r}"
    return None


# Case names to leave out, each with the reason (none at present: every case passes).
KNOWN: dict[str, str] = {}


def test_every_subcommand_has_cases():
    from asyncopt_mpi.cli import cli

    covered = {argv[0] for _, argv in _all_cases() if argv}
    assert set(cli.commands) <= covered


def walk(files: dict[str, str], cwd: str, cases: list[tuple[str, list[str]]],
         commands: CommandPool) -> tuple[list, list[str]]:
    """Run the cases one after another; their outcomes and what is wrong with them."""
    outcomes = [(name, *_run(argv, files, cwd, commands)) for name, argv in cases]
    return outcomes, [problem for outcome in outcomes if (problem := _problem(*outcome))]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_subcommand_survives_hostile_arguments(files, commands, tmp_path):
    cases = [case for case in _all_cases() if case[0] not in KNOWN]
    outcomes, problems = walk(files, str(tmp_path), cases, commands)
    codes = sorted({outcome[1] for outcome in outcomes if outcome[1] is not None})
    print(f"{len(cases)} hostile invocations; exit codes seen: {codes}; problems: {len(problems)}")
    assert not problems, "\n".join(problems)


# Plugins that make the command misbehave the ways the walk looks for.
MISBEHAVING = {
    "traceback": "import threading\nthreading.Thread(target=lambda: 1 / 0).start()\n",
    "hang": "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,)).start()\n",
}


@pytest.mark.timeout(120)
def test_a_forked_command_answers_as_a_fresh_process_and_its_faults_are_seen(commands, files, tmp_path):
    """The walk's forked commands: the same exit status and lines as `python -m asyncopt_mpi`; a traceback
    (here a thread's) and a hang (a thread the interpreter waits for) are reported."""
    argv = ["summary", files["text"]]
    fresh = subprocess.run([sys.executable, "-m", "asyncopt_mpi", *argv], capture_output=True, text=True, timeout=TIMEOUT)
    forked = commands.run(argv, timeout=TIMEOUT)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr) != (0, "", "")
    for kind, code in MISBEHAVING.items():
        plugin = tmp_path / f"{kind}.py"
        plugin.write_text(code)
        done = commands.run(["methods", "--plugin", str(plugin)], timeout=3)
        problem = _problem(kind, done.returncode, done.stdout, done.stderr)
        assert problem and ("traceback" if kind == "traceback" else "hang") in problem, problem
