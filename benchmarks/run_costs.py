"""What a long simulator run pays beyond its own loop: the CPU of its other processes, and of snapshots.

Issue 29's two last rows, measured on whole `asyncopt run --backend sim` processes:

- **Processes**: an async_sgd run of 3M events (n = 1000, d = 100, tau_i = sqrt(i)); the CPU of every
  process the run started (its watchdog, which lives in its own session and outlives it, and any
  subprocess) against the CPU of the run's main process alone. This script makes itself a child
  subreaper (Linux `prctl`), so the watchdog, orphaned when the run ends, is reaped here and its CPU
  counted; the main process's own CPU is read from /proc before it is reaped. Target: all within 5%.
- **Snapshots**: async_sgd with the papers' zero_last noise (n = 1000, d = 100, 1M events) with a
  snapshot every 10 virtual seconds against none (`output.snapshot_every = 1e9`), whole-process CPU,
  runs alternated, medians. Target: snapshots add <= 10%.

    python benchmarks/run_costs.py --repeats 3
    python benchmarks/run_costs.py --quick
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

PYTHON = sys.executable
PR_SET_CHILD_SUBREAPER = 36
SETTING = ["problem.dim=100", "problem.noise=0.01", "workers.n=1000", "workers.compute=sqrt", "method.lr=1e-4"]


def become_subreaper() -> bool:
    """Orphaned descendants (a run's watchdog) are re-parented to this process, so their CPU can be reaped here."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def own_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` itself, read while it is a zombie not yet reaped."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14 and 15)


def measure_tree(sets: list[str], path: str) -> dict:
    """One `asyncopt run --backend sim` from this (subreaper) process: the main process's own CPU and that of
    every process it started."""
    command = [PYTHON, "-m", "asyncopt_mpi", "run", "--method", "async_sgd", "--backend", "sim", "--output", path,
               *[argument for value in sets for argument in ("--set", value)]]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: /proc still has its times
    main = own_cpu(process.pid)
    _, status, usage = os.wait4(process.pid, 0)  # its own CPU and that of the children it waited for
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"asyncopt run failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    total = usage.ru_utime + usage.ru_stime
    while True:  # the orphans (the watchdog ends soon after the run), re-parented here
        try:
            _, _, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        total += usage.ru_utime + usage.ru_stime
    with h5py.File(path, "r") as handle:
        events = len(handle["events/time"])
    os.unlink(path)
    return {"main": main, "total": total, "events": events}


def run_tree(sets: list[str], path: str) -> dict:
    """measure_tree in a fresh process that is made child subreaper, so that only the run's own orphans are reaped
    and counted (not, say, a watchdog the calling process shares across its in-process runs)."""
    done = subprocess.run([PYTHON, os.path.abspath(__file__), "--measure-tree", json.dumps(sets), path],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(done.stderr.strip()[-2000:])
    return json.loads(done.stdout)


def processes(directory: str, quick: bool, repeats: int | None = None) -> list[str]:
    """The CPU of all of a 3M-event run's processes against its main process's."""
    if not sys.platform.startswith("linux"):
        return ["(skipped: the child subreaper needs Linux)"]
    repeats = repeats or (1 if quick else 3)
    events = 20_000 if quick else 3_000_000
    found = [run_tree(SETTING + [f"stop.gradients={events}"], os.path.join(directory, f"tree-{repeat}.h5"))
             for repeat in range(repeats)]
    main = float(np.median([run["main"] for run in found]))
    total = float(np.median([run["total"] for run in found]))
    return ["| run | events | main process (CPU s) | all its processes (CPU s) | all / main |",
            "|---|---|---|---|---|",
            f"| async_sgd, n = 1000, d = 100 | {found[-1]['events']:,} | {main:.2f} | {total:.2f} | {total / main:.3f} |"]


def snapshots(directory: str, quick: bool, repeats: int | None = None) -> list[str]:
    """Whole-process CPU of a zero_last run with snapshots every 10 virtual s against none, alternated."""
    repeats = repeats or (1 if quick else 3)
    events = 20_000 if quick else 1_000_000
    base = SETTING + ["problem.noise_type=zero_last", f"stop.gradients={events}"]
    seconds: dict[str, list[float]] = {"1e9": [], "10": []}
    for repeat in range(repeats):
        for every in seconds:
            run = run_tree(base + [f"output.snapshot_every={every}"], os.path.join(directory, f"snap-{repeat}.h5"))
            seconds[every].append(run["total"])
    without, with_ = (float(np.median(seconds[every])) for every in ("1e9", "10"))
    return ["| run | events | no snapshots (CPU s) | snapshots every 10 virtual s (CPU s) | added |",
            "|---|---|---|---|---|",
            f"| async_sgd, zero_last, n = 1000, d = 100 | {events:,} | {without:.2f} | {with_:.2f} | "
            f"{100 * (with_ / without - 1):+.1f}% |"]


SECTIONS = [
    ("A run's processes", "CPU of every process of an `asyncopt run --backend sim` (the watchdog included, reaped "
     "by the benchmark as child subreaper) against its main process's, async_sgd, n = 1000, d = 100, 3M events, "
     "medians of 3; target: within 5%", processes),
    ("Snapshots with zero_last noise", "whole-process CPU of async_sgd with zero_last noise, n = 1000, d = 100, "
     "1M events, snapshots every 10 virtual s against none, alternated, medians of 3; target: <= +10%", snapshots),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="20,000 events, one repeat (seconds)")
    parser.add_argument("--measure-tree", nargs=2, metavar=("SETS", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_tree:  # run_tree's child
        if not become_subreaper():
            sys.exit("run_costs: prctl(PR_SET_CHILD_SUBREAPER) failed")
        print(json.dumps(measure_tree(json.loads(args.measure_tree[0]), args.measure_tree[1])))
        return
    with tempfile.TemporaryDirectory() as directory:
        for title, description, measure in SECTIONS:
            print(f"## {title}\n\n{description}.\n")
            print("\n".join(measure(directory, args.quick, args.repeats)) + "\n", flush=True)


if __name__ == "__main__":
    main()
