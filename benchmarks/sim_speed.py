"""Simulator speed side by side: events per CPU second of `asyncopt` runs against benchmarks/sim_floor.py.

Every run is a fresh process (recording on: the results file is written), timed with
process CPU time from the start of the run to the closed file; repeats alternate the
simulator and the floor so that machine load hits both alike; figures are medians.
`--code DIR` runs the simulator from another checkout (e.g. a `git worktree` of an older
commit), to measure a speed-up against it on the same machine.

    python benchmarks/sim_speed.py --cases async:1000:100:300000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable

RUN_SCRIPT = """
import contextlib, io, json, sys, time
from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime.session import run_sim
method, path, sets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = load_config(None, sets + [f"output.path={path}", "output.snapshot_every=1e9"], method=method, backend="sim")
started = time.process_time()
with contextlib.redirect_stdout(io.StringIO()):
    run_sim(config)
print(json.dumps({"seconds": time.process_time() - started}))
"""

# name -> (method, --set overrides given n, d, events)
CASES = {
    "async": lambda n, d, events: ("async_sgd", [
        f"problem.dim={d}", "problem.noise=0.01", f"workers.n={n}", "workers.compute=sqrt", f"stop.gradients={events}",
        "method.lr=1e-4"]),
    "rennala": lambda n, d, events: ("rennala_sgd", [
        f"problem.dim={d}", "problem.noise=0.01", f"workers.n={n}", "workers.compute=sqrt", f"stop.gradients={events}",
        "method.lr=0.1", f"method.batch={max(n // 10, 1)}"]),
    "freya": lambda n, d, events: ("freya_page", [
        f"problem.dim={d}", "problem.samples=10000", "problem.lam=2.0", "problem.mu=1e-6", f"workers.n={n}",
        "workers.compute=sqrt", f"stop.gradients={events}", "method.lr=0.4"]),
}


def run_sim(case: str, n: int, d: int, events: int, path: str, code: str | None = None) -> dict:
    """CPU seconds and recorded events of one simulator run (fresh process)."""
    method, sets = CASES[case](n, d, events)
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([PYTHON, "-P", "-c", RUN_SCRIPT, method, path, json.dumps(sets)],
                          capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode:
        raise RuntimeError(f"{method} {sets} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    with h5py.File(path, "r") as handle:
        recorded = len(handle["events/time"])
    return {"seconds": seconds, "events": recorded, "rate": recorded / seconds}


def run_floor(n: int, d: int, events: int, path: str) -> dict:
    done = subprocess.run([PYTHON, os.path.join(HERE, "sim_floor.py"), str(n), str(d), str(events), path],
                          check=True, capture_output=True, text=True, timeout=3600)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": found["seconds"], "events": events, "rate": found["events_per_s"]}


def against_floor(n: int, d: int, events: int, repeats: int, directory: str) -> tuple[float, float]:
    """Median events/s of async_sgd in the simulator and of the floor, runs alternated."""
    ours, floor = [], []
    for repeat in range(repeats):
        ours.append(run_sim("async", n, d, events, os.path.join(directory, f"sim-{n}-{d}-{repeat}.h5"))["rate"])
        floor.append(run_floor(n, d, events, os.path.join(directory, f"floor-{n}-{d}-{repeat}.h5"))["rate"])
    return float(np.median(ours)), float(np.median(floor))


def against_code(case: str, n: int, d: int, events: int, repeats: int, code: str, directory: str) -> tuple[float, float]:
    """Median events/s of this checkout and of the one in `code`, runs alternated."""
    ours, theirs = [], []
    for repeat in range(repeats):
        ours.append(run_sim(case, n, d, events, os.path.join(directory, f"{case}-new-{n}-{d}-{repeat}.h5"))["rate"])
        theirs.append(run_sim(case, n, d, events, os.path.join(directory, f"{case}-old-{n}-{d}-{repeat}.h5"), code)["rate"])
    return float(np.median(ours)), float(np.median(theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="async:1000:100:300000",
                        help="comma-separated CASE:N:D:EVENTS (CASE: async, rennala, freya); async runs against the floor")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--code", default=None, help="also run each case from this checkout (alternated) and give the ratio")
    parser.add_argument("--only-code", action="store_true", help="run only the --code checkout (its rates)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for item in args.cases.split(","):
            case, n, d, events = item.split(":")
            n, d, events = int(n), int(d), int(events)
            if args.only_code:
                rates = [run_sim(case, n, d, events, os.path.join(directory, f"o-{case}-{n}-{d}-{r}.h5"), args.code)["rate"]
                         for r in range(args.repeats)]
                print(f"{case} n={n} d={d}: {args.code}: {np.median(rates):,.0f} events/s "
                      f"(runs {', '.join(f'{r:,.0f}' for r in rates)})", flush=True)
            elif args.code:
                ours, theirs = against_code(case, n, d, events, args.repeats, args.code, directory)
                print(f"{case} n={n} d={d}: {ours:,.0f} events/s vs {theirs:,.0f} ({args.code}): {ours / theirs:.2f}x",
                      flush=True)
            else:
                ours, floor = against_floor(n, d, events, args.repeats, directory)
                print(f"{case} n={n} d={d}: {ours:,.0f} events/s vs floor {floor:,.0f}: {ours / floor:.2f}x", flush=True)


if __name__ == "__main__":
    main()
