"""`make bench-startup`: the CPU time (user + system, the process and its children) of starting asyncopt.

Each command is measured against `python -c "import numpy, h5py"` in the same run, the commands
alternated, medians of the repeats; the ratios are what issue 28 sets targets for (a 10-gradient
simulator run <= 2x, `asyncopt --version` <= 1x). Bytecode is cached as a user's install has it:
with PYTHONDONTWRITEBYTECODE set, the caches go to a scratch PYTHONPYCACHEPREFIX instead.
Run: `python benchmarks/startup.py [REPEATS]`.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
ASYNCOPT = [PYTHON, "-m", "asyncopt_mpi"]
BASELINE = "python -c 'import numpy, h5py'"


def commands(scratch: str) -> dict[str, list[str]]:
    run = [*ASYNCOPT, "run", os.path.join(ROOT, "jobs", "demo.toml"), "--backend", "sim", "--quiet",
           "--set", "workers.n=2", "--set", "stop.gradients=10", "--set", "stop.time=1000", "--overwrite",
           "--output", os.path.join(scratch, "run.h5")]
    return {BASELINE: [PYTHON, "-c", "import numpy, h5py"], "python -c 'import asyncopt_mpi'": [PYTHON, "-c", "import asyncopt_mpi"],
            "asyncopt --version": [*ASYNCOPT, "--version"], "asyncopt --help": [*ASYNCOPT, "--help"],
            "asyncopt run (sim, 10 gradients)": run}


def cpu_seconds(command: list[str], environment: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                   timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        environment = dict(os.environ)
        if environment.pop("PYTHONDONTWRITEBYTECODE", None):
            environment["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
        measured = commands(scratch)
        for command in measured.values():  # warm-up: bytecode caches, the page cache
            cpu_seconds(command, environment)
        times: dict[str, list[float]] = {name: [] for name in measured}
        for _ in range(repeats):
            for name, command in measured.items():
                times[name].append(cpu_seconds(command, environment))
    baseline = statistics.median(times[BASELINE])
    print(f"CPU seconds, median of {repeats}, against {BASELINE} ({baseline:.3f} s)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:36s} {median:6.3f} s  {median / baseline:5.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
