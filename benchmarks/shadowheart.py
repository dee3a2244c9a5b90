"""Shadowheart SGD vs minibatch SGD, QSGD and asynchronous SGD under the paper's communication regimes (simulator).

For each regime config (jobs/shadowheart_{fast,medium,slow}.toml: quadratic, d = 1000, n = 100,
tau_i = sqrt(i), theta_i = sqrt(i)/d, /d^(3/4), /d^(1/2) per float) every method runs a small
grid; the best entry is the one reaching f - f* <= TARGET first. The table sets the measured
slow-down factors against Shadowheart next to the factors the time complexities predict
(asyncopt_mpi.theory, Shadowheart's Table 1, with sigma2/eps of the best Shadowheart run).

`--speed` (and `make bench`, through SECTIONS): CPU per event of shadowheart_sgd and qsgd against
async_sgd, and the CPU of one shadowheart-regimes paper run to 2000 virtual s per method, now and
at BEFORE_BLOCKS (the code before the compressions' speed work, unpacked from the git history),
runs alternated, medians.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import json
import os
import subprocess
import sys
from multiprocessing import Pool

import h5py
import numpy as np

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import make_problem
from asyncopt_mpi.runtime.session import run_sim
from asyncopt_mpi.summary import time_to_target
from asyncopt_mpi.theory import async_sgd_time, minibatch_sgd_comm_time, qsgd_time, shadowheart_time
from asyncopt_mpi.timing import TimingModel

GRIDS = {
    "shadowheart_sgd": [[f"method.lr={lr}", f"method.sigma2_over_eps={ratio}"] for lr in (0.25, 0.5, 1.0)
                        for ratio in (1.0, 10.0, 100.0)],
    "minibatch_sgd": [[f"method.lr={lr}"] for lr in (0.5, 1.0, 1.5)],
    "qsgd": [[f"method.lr={lr}", f"method.K={K}"] for lr in (0.003, 0.01, 0.03, 0.1) for K in (1, 10)],
    "async_sgd": [[f"method.lr={lr}"] for lr in (0.003, 0.01, 0.03)],
}


def run_one(task) -> tuple[str, str, list[str], float]:
    regime, config_path, method, extra, target, directory = task
    path = os.path.join(directory, f"{regime}-{method}-{'-'.join(item.split('=')[1] for item in extra)}.h5")
    overrides = extra + [f"output.path={path}", f"stop.target={target}"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            run_sim(load_config(config_path, overrides, method=method, backend="sim"), overwrite=True)
        except Exception:
            return regime, method, extra, math.inf
    with h5py.File(path, "r") as handle:
        metrics = {name: handle["metrics"][name][:] for name in ("time", "suboptimality")}
    found = time_to_target(metrics, target)
    return regime, method, extra, found if math.isfinite(found) else math.inf


def predicted_factors(config_path: str, sigma2_over_eps: float, K: int) -> dict[str, float]:
    """Time complexities relative to Shadowheart's (the paper's Table 1 formulas)."""
    config = load_config(config_path, [], backend="sim")
    problem = make_problem(config.problem)
    timing = TimingModel(config.workers, config.workers.n)
    h, theta, d = timing.expected_compute(), timing.comm_per_float, problem.dim
    eps = 1.0  # only sigma2/eps matters for the ratios below
    args = dict(L=1.0, delta=1.0, sigma2=sigma2_over_eps * eps, eps=eps)
    shadowheart = shadowheart_time(h, theta, d, K, **args)
    return {
        "minibatch_sgd": minibatch_sgd_comm_time(h, theta, d, **args) / shadowheart,
        "qsgd": qsgd_time(h, theta, d, K, **args) / shadowheart,
        # Async SGD sends d floats per gradient: its lower bound in the paper uses max(h_i, d theta_i).
        "async_sgd": async_sgd_time(np.maximum(h, d * theta), **args) / shadowheart,
    }


BEFORE_BLOCKS = "b887210"  # before the compressions' speed work (issue 29, item 4)
before_tree: str | None = None  # --before: a package tree to compare with instead of BEFORE_BLOCKS
# One run in a child process: CPU seconds of the whole run and its events, as JSON.
RUN_SCRIPT = """
import contextlib, io, json, sys, time
import h5py
try:
    from asyncopt_mpi.validate import load_config
except ImportError:  # a checkout from before validate.py (issue 28) loads configs in config.py
    from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime.session import run_sim
method, path, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = load_config(None, overrides + ["output.path=" + path], method=method, backend="sim")
started = time.process_time()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    run_sim(config, overwrite=True)
seconds = time.process_time() - started
with h5py.File(path, "r") as handle:
    print(json.dumps({"seconds": seconds, "events": len(handle["events/time"])}))
"""
# Per-event settings: the regimes' size (benchmarks/shadowheart.py: d = 1000, n = 100, theta_i = sqrt(i)/d per
# float) and sgd_family.py's (d = 100, zero_last noise, n = 100) with theta_i = sqrt(i)/d.
EVENT_SETTINGS = {
    "d = 1000, fast regime": ["problem.dim=1000", "problem.noise=0.01", "workers.comm_scale=0.001"],
    "d = 100, zero_last": ["problem.dim=100", "problem.noise=0.1", "problem.noise_type=zero_last",
                           "workers.comm_scale=0.01"],
}
# Each row's method, options and two horizons (virtual s; async_sgd has fewer, cheaper events: longer runs).
EVENT_METHODS = {"async_sgd": ("async_sgd", ["method.lr=0.005"], (200, 2000)),
                 "shadowheart_sgd": ("shadowheart_sgd", ["method.lr=0.5"], (20, 100)),
                 "qsgd": ("qsgd", ["method.lr=0.05"], (20, 100)),
                 "shadowheart_sgd, randk_fast": ("shadowheart_sgd", ["method.lr=0.5", "method.compressor=randk_fast"],
                                                 (20, 100)),
                 "qsgd, randk_fast": ("qsgd", ["method.lr=0.05", "method.compressor=randk_fast"], (20, 100))}
NEW_ROWS = ("shadowheart_sgd, randk_fast", "qsgd, randk_fast")  # options the code compared with may not have
# A step size of each method's grid in asyncopt_mpi/reproduce/shadowheart_regimes.py (async_sgd: below its grid,
# where tuning goes, as 0.04 diverges in every regime).
PAPER_LR = {"shadowheart_sgd": 1.0, "qsgd": 0.32, "rennala_sgd": 1.0, "async_sgd": 0.02, "minibatch_sgd": 1.0}


def cpu_of_run(method: str, overrides: list[str], path: str, code: str | None = None) -> dict:
    """{"seconds": CPU of the whole run, "events": recorded} in a child process (with the package in `code`)."""
    env = dict(os.environ, PYTHONPATH=code) if code else None
    done = subprocess.run([sys.executable, "-c", RUN_SCRIPT, method, path, json.dumps(overrides)], env=env,
                          cwd=code or None, check=True, capture_output=True, text=True, timeout=3600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _before(directory: str, quick: bool) -> str | None:
    """The package at BEFORE_BLOCKS, or the --before tree (None when quick or without the git history)."""
    if before_tree:
        return before_tree
    if quick:
        return None
    from sim_speed import unpack_commit

    return unpack_commit(BEFORE_BLOCKS, directory)


def _label() -> str:
    """How the tables name the code compared with."""
    return before_tree or BEFORE_BLOCKS


def per_event_cpu(directory: str, quick: bool, repeats: int | None = None) -> list[str]:
    """us of CPU per event of each method: (CPU of a long run - CPU of a short one) / (events between them)."""
    repeats = repeats or (1 if quick else 3)
    before = _before(directory, quick)
    codes = [None] + ([before] if before else [])
    base = ["workers.n=100", "workers.compute=sqrt", "workers.comm=sqrt", "output.snapshot_every=100"]
    lines = ["| setting | method | now: us per event | now: / async_sgd | "
             f"at {_label()}: us per event | at {_label()}: / async_sgd |", "|---|---|---|---|---|---|"]
    settings = list(EVENT_SETTINGS.items())[-1:] if quick else EVENT_SETTINGS.items()  # quick: d = 100 only
    # quick (the test suite's smoke test): async_sgd (the rows' unit) and shadowheart_sgd, one process per run
    labels = ["async_sgd", "shadowheart_sgd"] if quick else list(EVENT_METHODS)
    for title, setting in settings:
        values: dict[tuple, list[float]] = {}
        for repeat in range(repeats):  # the two codes and the two horizons alternated with the other rows' runs
            for label in labels:
                method, extra, horizons = EVENT_METHODS[label]
                horizons = tuple(horizon // 10 for horizon in horizons) if quick else horizons
                for code in codes:
                    if code is not None and label in NEW_ROWS:
                        continue
                    short, long = (cpu_of_run(method, base + setting + extra + [f"stop.time={horizon}"],
                                              os.path.join(directory, f"event-{method}.h5"), code)
                                   for horizon in horizons)
                    values.setdefault((code, label), []).append(
                        (long["seconds"] - short["seconds"]) / max(1, long["events"] - short["events"]))
        found = {key: float(np.median(found)) for key, found in values.items()}
        for label in labels:
            now = found[None, label]
            row = f"| {title} | {label} | {1e6 * now:.1f} | {now / found[None, 'async_sgd']:.1f} | "
            if before and (before, label) in found:
                then = found[before, label]
                row += f"{1e6 * then:.1f} | {then / found[before, 'async_sgd']:.1f} |"
            else:
                row += "not run | not run |"
            lines.append(row)
    return lines


def paper_run_cpu(directory: str, quick: bool, repeats: int | None = None) -> list[str]:
    """CPU seconds of one `reproduce shadowheart-regimes --scale paper` run cut to 2000 virtual s, per method."""
    from asyncopt_mpi.reproduce import get

    experiment = get("shadowheart-regimes")
    horizon, repeats = (50, 1) if quick else (2000, repeats or 3)
    before = _before(directory, quick)
    codes = [None] + ([before] if before else [])
    lines = [f"| regime | method (lr) | events | now: CPU s | at {_label()}: CPU s | speed-up |",
             "|---|---|---|---|---|---|"]
    for panel in experiment.panels[-1:] if quick else experiment.panels:  # quick: the slow regime only
        for spec in experiment.methods[:1] if quick else experiment.methods:  # quick: shadowheart_sgd only
            overrides = [item for item in experiment.overrides(panel, spec, "paper") if not item.startswith("method.name")]
            overrides += [f"method.lr={PAPER_LR[spec.name]}", f"stop.time={horizon}"]
            seconds, events = {code: [] for code in codes}, 0
            for repeat in range(repeats):
                for code in codes:
                    found = cpu_of_run(spec.name, overrides, os.path.join(directory, f"paper-{spec.name}.h5"), code)
                    seconds[code].append(found["seconds"])
                    events = found["events"]
            now = float(np.median(seconds[None]))
            then = f"{np.median(seconds[before]):.2f} | {np.median(seconds[before]) / now:.2f}x" if before else \
                "not run | -"
            lines.append(f"| {panel.label} | {spec.name} ({PAPER_LR[spec.name]:g}) | {events:,} | {now:.2f} | {then} |")
    return lines


SECTIONS = [
    ("Shadowheart and QSGD per event", "CPU per event of shadowheart_sgd and qsgd (RandK, K = 1) against async_sgd, "
     "n = 100, tau_i = sqrt(i), theta_i = sqrt(i)/d per float; (CPU of a long run - CPU of a short one: 100 and 20 "
     f"virtual s, async_sgd 2000 and 200) / events between, medians of 3, now and at {BEFORE_BLOCKS} (or --before), alternated; target <= 10x async_sgd",
     per_event_cpu),
    ("shadowheart-regimes paper runs", "CPU seconds of one run of `asyncopt reproduce shadowheart-regimes --scale "
     f"paper` cut to 2000 virtual s (a twentieth of its horizon), per regime and method, medians of 3, now and at "
     f"{BEFORE_BLOCKS} (or --before), alternated", paper_run_cpu),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regimes", default="slow,medium,fast")
    parser.add_argument("--target", type=float, default=0.05)
    parser.add_argument("--out", default="benchmarks/results/shadowheart")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--speed", action="store_true", help="only the CPU sections (SECTIONS), printed as Markdown")
    parser.add_argument("--quick", action="store_true", help="with --speed: small runs, no comparison with before")
    parser.add_argument("--repeats", type=int, default=None, help="with --speed: runs per median (3)")
    parser.add_argument("--before", help=f"with --speed: compare with this package tree instead of {BEFORE_BLOCKS} "
                        "(e.g. a `git worktree add` of the commit before a change)")
    parser.add_argument("--only", default="", help="with --speed: the sections whose title starts with this")
    args = parser.parse_args()
    if args.speed:
        import tempfile

        global before_tree
        before_tree = os.path.abspath(args.before) if args.before else None

        with tempfile.TemporaryDirectory() as directory:
            for title, description, run in [section for section in SECTIONS if section[0].startswith(args.only)]:
                print(f"## {title}\n\n{description}.\n", flush=True)
                print("\n".join(run(directory, args.quick, args.repeats)) + "\n", flush=True)
        return
    directory = os.path.join(args.out, "runs")
    os.makedirs(directory, exist_ok=True)
    regimes = args.regimes.split(",")
    tasks = [(regime, f"jobs/shadowheart_{regime}.toml", method, extra, args.target, directory)
             for regime in regimes for method, grid in GRIDS.items() for extra in grid]
    with Pool(args.processes) as pool:
        results = list(pool.imap_unordered(run_one, tasks))
    lines = [f"Time to f - f* <= {args.target:g} (virtual s), best of each grid; factor = time / Shadowheart's time.", ""]
    for regime in regimes:
        best = {}
        for found_regime, method, extra, time in results:
            if found_regime == regime and (method not in best or time < best[method][0]):
                best[method] = (time, extra)
        reference, extra = best["shadowheart_sgd"]
        ratio = float(next(item for item in extra if "sigma2_over_eps" in item).split("=")[1])
        predicted = predicted_factors(f"jobs/shadowheart_{regime}.toml", ratio, 1)
        lines += [f"### {regime} communication", "",
                  "| method | best parameters | time to target | measured factor | predicted factor (K = 1) |",
                  "|---|---|---|---|---|"]
        for method in GRIDS:
            time, extra = best[method]
            measured = time / reference
            expected = "1" if method == "shadowheart_sgd" else f"{predicted[method]:.3g}"
            shown = "never (within stop.time)" if math.isinf(time) else f"{time:.0f}"
            lines.append(f"| {method} | {' '.join(extra)} | {shown} | {measured:.3g} | {expected} |")
        lines.append("")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(table)
    print(table)


if __name__ == "__main__":
    main()
