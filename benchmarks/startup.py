"""`make bench-startup`: the CPU time (user + system, the process and its children) of starting asyncopt,
and of a sweep of short runs, with the sweep's peak resident memory.

Each command is measured against `python -c "import numpy, h5py"` in the same run, the commands
alternated, medians of the repeats; the ratios are what issues 28 and 29 set targets for (a
10-gradient simulator run <= 2x, `asyncopt --version` <= 1x; a 100-run `asyncopt sweep` of
10-gradient runs with 1,000 workers <= 20x and peak RSS <= 200 MiB). With `--before CHECKOUT` (e.g.
`git worktree add /tmp/before HASH`) every command also runs with that checkout first on PYTHONPATH,
in the same rounds, and the table shows both side by side. Bytecode is cached as a user's install
has it: with PYTHONDONTWRITEBYTECODE set, the caches go to a scratch PYTHONPYCACHEPREFIX instead.
Run: `python benchmarks/startup.py [REPEATS] [--sweep-repeats N] [--sweep-runs N] [--before CHECKOUT]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
ASYNCOPT = [PYTHON, "-m", "asyncopt_mpi"]
BASELINE = "python -c 'import numpy, h5py'"
SHORT_RUN = ["--set", "stop.gradients=10", "--set", "stop.time=1000", "--overwrite"]


@dataclass
class Usage:
    cpu: float  # seconds, user + system, the command and the children it waited for
    peak_mib: float  # the largest resident set among them


def commands(scratch: str, sweep_runs: int) -> dict[str, list[str]]:
    demo = os.path.join(ROOT, "jobs", "demo.toml")
    run = [*ASYNCOPT, "run", demo, "--backend", "sim", "--quiet", "--set", "workers.n=2", *SHORT_RUN,
           "--output", os.path.join(scratch, "run.h5")]
    sweep = [*ASYNCOPT, "sweep", demo, "--seeds", str(sweep_runs), "--out", os.path.join(scratch, "sweep"),
             "--set", "workers.n=1000", *SHORT_RUN]
    return {BASELINE: [PYTHON, "-c", "import numpy, h5py"], "python -c 'import asyncopt_mpi'": [PYTHON, "-c", "import asyncopt_mpi"],
            "asyncopt --version": [*ASYNCOPT, "--version"], "asyncopt --help": [*ASYNCOPT, "--help"],
            "asyncopt run (sim, 10 gradients)": run,
            f"asyncopt sweep ({sweep_runs} runs, 1000 workers)": sweep}


def usage(command: list[str], environment: dict[str, str], folder: str) -> Usage:
    """CPU and peak memory of one command run in `folder`, from wait4 (its own rusage, not the other commands').

    Never in a checkout: `python -m` puts the working folder first on sys.path, before PYTHONPATH, so a
    command started in this checkout would import this tree's package whatever --before says.
    """
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a long stderr cannot block the command
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=environment, cwd=folder)
        _, status, rusage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): "
                             f"{errors.read().decode(errors='replace')[-2000:]}")
    return Usage(rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repeats", nargs="?", type=int, default=5)
    parser.add_argument("--sweep-repeats", type=int, default=3, help="repeats of the sweep (the longest command)")
    parser.add_argument("--sweep-runs", type=int, default=100)
    parser.add_argument("--before", metavar="CHECKOUT", help="a checkout of the code to compare with")
    arguments = parser.parse_args()
    trees = {"after": None, **({"before": os.path.abspath(arguments.before)} if arguments.before else {})}
    with tempfile.TemporaryDirectory() as scratch:
        environments = {}
        for tree, path in trees.items():
            environment = dict(os.environ)
            if environment.pop("PYTHONDONTWRITEBYTECODE", None):
                environment["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
            if path is not None:
                environment["PYTHONPATH"] = os.pathsep.join(filter(None, [path, environment.get("PYTHONPATH")]))
            environments[tree] = environment
        measured = commands(scratch, arguments.sweep_runs)
        sweep_name = list(measured)[-1]
        for environment in environments.values():  # warm-up: bytecode caches, the page cache
            for name, command in measured.items():
                if name != sweep_name:
                    usage(command, environment, scratch)
        found: dict[tuple[str, str], list[Usage]] = {(tree, name): [] for tree in trees for name in measured}
        for round_number in range(max(arguments.repeats, arguments.sweep_repeats)):
            for name, command in measured.items():
                if round_number < (arguments.sweep_repeats if name == sweep_name else arguments.repeats):
                    for tree, environment in environments.items():  # alternated: the same load for both
                        found[(tree, name)].append(usage(command, environment, scratch))
    report(found, list(trees), list(measured), sweep_name, arguments)


def report(found: dict[tuple[str, str], list[Usage]], trees: list[str], names: list[str], sweep_name: str,
           arguments: argparse.Namespace) -> None:
    def median_cpu(tree: str, name: str) -> float:
        return statistics.median(item.cpu for item in found[(tree, name)])

    print(f"CPU seconds (process and children), medians of {arguments.repeats} "
          f"({arguments.sweep_repeats} for the sweep), against {BASELINE} in the same rounds"
          + (f"; before = {arguments.before}" if len(trees) > 1 else ""))
    print(f"  {'command':44s}" + "".join(f" {tree + ' CPU':>10s} {'ratio':>7s}" for tree in trees))
    for name in names:
        cells = []
        for tree in trees:
            cpu = median_cpu(tree, name)
            cells.append(f" {cpu:9.3f}s {cpu / median_cpu(tree, BASELINE):6.2f}x")
        print(f"  {name:44s}" + "".join(cells))
    peaks = "  ".join(f"{tree} {max(item.peak_mib for item in found[(tree, sweep_name)]):.0f} MiB" for tree in trees)
    print(f"  peak RSS of the sweep (largest of its processes): {peaks}")


if __name__ == "__main__":
    main()
