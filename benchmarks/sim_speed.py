"""Simulator speed side by side: events per CPU second of `asyncopt` runs against benchmarks/sim_floor.py.

Every run is a fresh process (recording on: the results file is written), timed with
process CPU time from the start of the run to the closed file; repeats alternate the
simulator and the floor so that machine load hits both alike; figures are medians.
`--code DIR` runs the simulator from another checkout (e.g. a `git worktree` of an older
commit), to measure a speed-up against it on the same machine. `--noise` compares the
papers' zero_last noise with additive noise (issue 29): async_sgd at n = 1000, d = 100, and
rennala_sgd at the Rennala experiment's setting (jobs/rennala_quadratic.toml), now and at
the commit before zero_last took the simulator's bulk path. `--logistic` compares freya-fig2's
setting (10-class logistic regression, d = 784 x 10, tau_i = sqrt(i), n = 100) now and at the
commit before its stochastic gradients took the bulk path (issue 26). `--malenia` gives the CPU per event of
malenia_sgd and ringmaster_asgd against async_sgd at n = 10,000 and the CPU of the malenia reproduction's paper
runs to 2000 virtual s, per method, now and at the commit before the worker-mean objective was evaluated in blocks
(issue 29, item 4).

    python benchmarks/sim_speed.py --cases async:1000:100:300000 --repeats 3
    python benchmarks/sim_speed.py --noise --repeats 3
    python benchmarks/sim_speed.py --logistic --repeats 3
    python benchmarks/sim_speed.py --malenia --repeats 1
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
ROOT = os.path.dirname(HERE)
PYTHON = sys.executable
BEFORE_BULK_NOISE = "07724d9"  # the last commit whose simulator ran zero_last noise one gradient at a time
BEFORE_LOGISTIC_BULK = "444d8d8"  # the last commit whose simulator computed logistic gradients one at a time
BEFORE_WORKER_MEAN = "b887210"  # the last commit whose worker-mean objective (Malenia) looped over the shards

RUN_SCRIPT = """
import contextlib, io, json, sys, time
try:
    from asyncopt_mpi.validate import load_config
except ImportError:  # a checkout from before validate.py (issue 28) loads configs in config.py
    from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime.session import run_sim
method, path, sets, job = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] or None
if sys.argv[5:] == ["no-f-star"]:  # the run's own work only: f*'s solve is measured apart (the f* cache)
    from asyncopt_mpi.problems.logistic import LogisticProblem
    LogisticProblem.compute_f_star = lambda self: float("nan")
config = load_config(job, sets + [f"output.path={path}", "output.snapshot_every=1e9"], method=method, backend="sim")
started = time.process_time()
with contextlib.redirect_stdout(io.StringIO()):
    run_sim(config)
print(json.dumps({"seconds": time.process_time() - started}))
"""

LOGISTIC = ["problem.name=logistic", "problem.classes=10", "problem.samples=10000", "workers.compute=sqrt"]
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
    # freya-fig2's problem on synthetic rows (MNIST's shape: d features x 10 classes; no download)
    "logistic_async": lambda n, d, events: ("async_sgd", LOGISTIC + [
        f"problem.dim={d}", f"workers.n={n}", f"stop.gradients={events}", "method.lr=0.06"]),
    "logistic_rennala": lambda n, d, events: ("rennala_sgd", LOGISTIC + [
        f"problem.dim={d}", f"workers.n={n}", f"stop.gradients={events}", "method.lr=0.5", "method.batch=245"]),
    "logistic_freya": lambda n, d, events: ("freya_page", LOGISTIC + [
        f"problem.dim={d}", f"workers.n={n}", f"stop.gradients={events}", "method.lr=1.0"]),
    # async_sgd's setting with the other one-gradient-per-job methods (issue 29 item 4); Malenia's S = n
    "ringmaster": lambda n, d, events: ("ringmaster_asgd", [
        f"problem.dim={d}", "problem.noise=0.01", f"workers.n={n}", "workers.compute=sqrt", f"stop.gradients={events}",
        "method.lr=1e-4"]),
    "malenia": lambda n, d, events: ("malenia_sgd", [
        f"problem.dim={d}", "problem.noise=0.01", f"workers.n={n}", "workers.compute=sqrt", f"stop.gradients={events}",
        "method.lr=1e-4"]),
    # async_sgd with the papers' zero_last noise (p = 0.01) instead of additive noise
    "async_zero_last": lambda n, d, events: ("async_sgd", [
        f"problem.dim={d}", "problem.noise=0.01", "problem.noise_type=zero_last", f"workers.n={n}",
        "workers.compute=sqrt", f"stop.gradients={events}", "method.lr=1e-4"]),
}
RENNALA_JOB = os.path.join(ROOT, "jobs", "rennala_quadratic.toml")  # zero_last noise, p = 0.1, d = 1000, S = 10
# jobs/rennala_quadratic.toml at n workers for `horizon` virtual seconds, with its own noise or additive noise
PAPER_CASES = {
    "rennala_paper": lambda n, horizon: ("rennala_sgd", [f"workers.n={n}", f"stop.time={horizon}"]),
    "rennala_paper_add": lambda n, horizon: ("rennala_sgd", [f"workers.n={n}", f"stop.time={horizon}",
                                                             "problem.noise_type=add"]),
}


def run_sim(case: str, n: int, d: int, events: int, path: str, code: str | None = None) -> dict:
    """CPU seconds and recorded events of one simulator run (fresh process).

    A case of PAPER_CASES runs jobs/rennala_quadratic.toml with n workers for `events` virtual seconds (d unused)."""
    method, sets = PAPER_CASES[case](n, events) if case in PAPER_CASES else CASES[case](n, d, events)
    job = RENNALA_JOB if case in PAPER_CASES else ""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    flags = ["no-f-star"] if case.startswith("logistic") else []
    done = subprocess.run([PYTHON, "-P", "-c", RUN_SCRIPT, method, path, json.dumps(sets), job, *flags],
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


def unpack_commit(commit: str, directory: str) -> str | None:
    """The package at `commit`, unpacked from this repository's history (None without git or history)."""
    target = os.path.join(directory, f"code-{commit}")
    os.makedirs(target, exist_ok=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "asyncopt_mpi"], capture_output=True)
    if archive.returncode:
        return None
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return target


def noise_cost(directory: str, quick: bool, repeats: int | None = None, events: int | None = None,
               then: bool = True) -> list[str]:
    """CPU seconds of zero_last against additive noise, side by side (runs alternated, medians), now and (`then`,
    not when quick) at BEFORE_BULK_NOISE (zero_last one gradient at a time) when the history is there.

    `events`: async_sgd's (1M; 20,000 and no rennala_sgd row when quick)."""
    repeats = repeats or (1 if quick else 3)
    events = events or (20_000 if quick else 1_000_000)
    rows = [("async_sgd, n = 1000, d = 100", "async", "async_zero_last", 1000, 100, events)]
    if not quick:  # quick: async_sgd's row only
        rows.append(("rennala_sgd, jobs/rennala_quadratic.toml, n = 10,000", "rennala_paper_add", "rennala_paper",
                     10_000, 1000, 1000))
    then = then and not quick
    before = unpack_commit(BEFORE_BULK_NOISE, directory) if then else None
    lines = ["| run | events | additive (CPU s) | zero_last (CPU s) | zero_last / additive | "
             f"at {BEFORE_BULK_NOISE}: additive, zero_last (CPU s) | ratio at {BEFORE_BULK_NOISE} |",
             "|---|---|---|---|---|---|---|"]
    for title, additive_case, zero_last_case, n, d, events in rows:
        codes = [None] + ([before] if before else [])
        seconds = {(code, case): [] for code in codes for case in (additive_case, zero_last_case)}
        for repeat in range(repeats):
            for code in codes:
                for case in (additive_case, zero_last_case):
                    path = os.path.join(directory, f"noise-{case}-{'old' if code else 'new'}-{repeat}.h5")
                    found = run_sim(case, n, d, events, path, code)
                    seconds[code, case].append(found["seconds"])
                    os.unlink(path)
        recorded = found["events"]  # of the last run: zero_last's
        median = {key: float(np.median(values)) for key, values in seconds.items()}
        now_add, now_zero = median[None, additive_case], median[None, zero_last_case]
        old = f"{'(no git history)' if then else '(not run)'} | |" if before is None else (
            f"{median[before, additive_case]:.2f}, {median[before, zero_last_case]:.2f} | "
            f"{median[before, zero_last_case] / median[before, additive_case]:.2f} |")
        lines.append(f"| {title} | {recorded:,} | {now_add:.2f} | {now_zero:.2f} | {now_zero / now_add:.2f} | {old}")
    return lines


def logistic_cost(directory: str, quick: bool, repeats: int | None = None, events: int | None = None) -> list[str]:
    """CPU seconds of freya-fig2's logistic regression runs (f* apart), now and at BEFORE_LOGISTIC_BULK, alternated.

    Synthetic rows of MNIST's shape (784 features, 10 classes, 10,000 rows), n = 100, tau_i = sqrt(i);
    `events`: gradients per run (40,000; 2,000 and async_sgd only when quick)."""
    repeats = repeats or (1 if quick else 3)
    events = events or (2_000 if quick else 40_000)
    before = None if quick else unpack_commit(BEFORE_LOGISTIC_BULK, directory)
    lines = [f"| run | gradients | now (CPU s) | us per gradient | at {BEFORE_LOGISTIC_BULK} (CPU s) | "
             f"us per gradient at {BEFORE_LOGISTIC_BULK} | speed-up |", "|---|---|---|---|---|---|---|"]
    rows = (("async_sgd, n = 100", "logistic_async"), ("rennala_sgd, n = 100, S = 245", "logistic_rennala"),
            ("freya_page, n = 100", "logistic_freya"))
    for title, case in rows[:1] if quick else rows:  # quick: one run
        codes = [None] + ([before] if before else [])
        seconds = {code: [] for code in codes}
        for repeat in range(repeats):
            for code in codes:
                path = os.path.join(directory, f"{case}-{'old' if code else 'new'}-{repeat}.h5")
                seconds[code].append(run_sim(case, 100, 784, events, path, code)["seconds"])
                os.unlink(path)
        now = float(np.median(seconds[None]))
        old = "(not run) | | |" if before is None else (
            f"{np.median(seconds[before]):.2f} | {1e6 * np.median(seconds[before]) / events:.0f} | "
            f"{np.median(seconds[before]) / now:.2f}x |")
        lines.append(f"| {title} | {events:,} | {now:.2f} | {1e6 * now / events:.0f} | {old}")
    return lines


def method_cost(directory: str, quick: bool, repeats: int | None = None, events: int | None = None) -> list[str]:
    """CPU per event of ringmaster_asgd and malenia_sgd against async_sgd (quadratic, d = 100, tau_i = sqrt(i),
    n = 10,000; whole runs, set-up included), now and at BEFORE_WORKER_MEAN, alternated, medians.

    `events`: gradients per run (500,000; 20,000 at n = 1000 when quick)."""
    repeats = repeats or (1 if quick else 3)
    n, events = (1000, events or 20_000) if quick else (10_000, events or 500_000)
    before = None if quick else unpack_commit(BEFORE_WORKER_MEAN, directory)
    codes = [None] + ([before] if before else [])
    cases = (("async_sgd", "async"), ("ringmaster_asgd", "ringmaster"), ("malenia_sgd", "malenia"))
    seconds = {(code, case): [] for code in codes for _, case in cases}
    for repeat in range(repeats):
        for code in codes:
            for _, case in cases:
                path = os.path.join(directory, f"{case}-{'old' if code else 'new'}-{repeat}.h5")
                found = run_sim(case, n, 100, events, path, code)
                seconds[code, case].append(found["seconds"] / found["events"])
                os.unlink(path)
    per_event = {key: float(np.median(values)) for key, values in seconds.items()}
    lines = [f"| method (n = {n:,}, {events:,} events) | now: us per event | now: / async_sgd | "
             f"at {BEFORE_WORKER_MEAN}: us per event | at {BEFORE_WORKER_MEAN}: / async_sgd | speed-up |",
             "|---|---|---|---|---|---|"]
    for title, case in cases:
        now = per_event[None, case]
        row = f"| {title} | {1e6 * now:.1f} | {now / per_event[None, 'async']:.2f} | "
        if before is None:
            row += "(not run) | | |"
        else:
            old = per_event[before, case]
            row += f"{1e6 * old:.1f} | {old / per_event[before, 'async']:.2f} | {old / now:.2f}x |"
        lines.append(row)
    return lines


def run_cli(args: list[str], code: str | None = None) -> float:
    """CPU seconds (user + system) of one `python -m asyncopt_mpi run ...` process, evaluation included."""
    env = dict(os.environ, ASYNCOPT_F_STAR_CACHE="off")  # every run solves its own f*, as the first of a setting
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    before = os.times()
    done = subprocess.run([PYTHON, "-P", "-m", "asyncopt_mpi", "run", "--quiet", *args], capture_output=True,
                          text=True, timeout=7200, env=env)
    after = os.times()
    if done.returncode:
        raise RuntimeError(f"asyncopt run {args} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def malenia_paper_cost(directory: str, quick: bool, repeats: int | None = None,
                       horizon: float | None = None) -> list[str]:
    """CPU seconds of the malenia reproduction's runs (asyncopt_mpi/reproduce/malenia.py: its settings, the middle
    of each step-size grid, snapshots every 200 virtual s, f* solved, evaluation included) to `horizon` virtual s
    (2000; the small scale to 200 when quick), per method (malenia_sgd only when quick), now and at
    BEFORE_WORKER_MEAN, alternated, medians."""
    sys.path.insert(0, ROOT)
    from asyncopt_mpi.reproduce.malenia import EXPERIMENT

    repeats = repeats or 1
    scale = "small" if quick else "paper"
    horizon = horizon or (200.0 if quick else 2000.0)
    before = None if quick else unpack_commit(BEFORE_WORKER_MEAN, directory)
    codes = [None] + ([before] if before else [])
    panel = EXPERIMENT.panels[0]
    where = panel.label if scale == "paper" else "small scale"
    lines = [f"| method ({where}, to {horizon:g} virtual s) | now (CPU s) | at {BEFORE_WORKER_MEAN} (CPU s) | speed-up |",
             "|---|---|---|---|"]
    for method in EXPERIMENT.methods[:1] if quick else EXPERIMENT.methods:  # quick: malenia_sgd only
        args = ["--backend", "sim", "--method", method.name]
        for item in EXPERIMENT.overrides(panel, method, scale) + [f"stop.time={horizon:g}",
                                                                   f"method.lr={method.grid[len(method.grid) // 2]:g}"]:
            args += ["--set", item]
        seconds = {code: [] for code in codes}
        for repeat in range(repeats):
            for code in codes:
                path = os.path.join(directory, f"paper-{method.name}-{'old' if code else 'new'}-{repeat}.h5")
                seconds[code].append(run_cli(args + ["--output", path], code))
                os.unlink(path)
        now = float(np.median(seconds[None]))
        old = "(not run) | |" if before is None else (
            f"{np.median(seconds[before]):.1f} | {np.median(seconds[before]) / now:.2f}x |")
        lines.append(f"| {method.name} | {now:.1f} | {old}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="async:1000:100:300000",
                        help="comma-separated CASE:N:D:EVENTS (CASE: async, rennala, freya, async_zero_last); "
                        "async runs against the floor")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--code", default=None, help="also run each case from this checkout (alternated) and give the ratio")
    parser.add_argument("--only-code", action="store_true", help="run only the --code checkout (its rates)")
    parser.add_argument("--noise", action="store_true", help="zero_last against additive noise, now and at "
                        f"{BEFORE_BULK_NOISE} (instead of --cases)")
    parser.add_argument("--events", type=int, default=None, help="with --noise: async_sgd's events (1M)")
    parser.add_argument("--now-only", action="store_true", help=f"with --noise: not at {BEFORE_BULK_NOISE}")
    parser.add_argument("--logistic", action="store_true", help="freya-fig2's logistic regression, now and at "
                        f"{BEFORE_LOGISTIC_BULK} (instead of --cases)")
    parser.add_argument("--malenia", action="store_true", help="malenia_sgd and ringmaster_asgd against async_sgd "
                        f"per event at n = 10,000 and the malenia paper runs to 2000 virtual s, now and at "
                        f"{BEFORE_WORKER_MEAN} (instead of --cases)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        if args.malenia:
            print("\n".join(method_cost(directory, False, args.repeats)), flush=True)
            print("\n".join(malenia_paper_cost(directory, False, args.repeats)), flush=True)
            return
        if args.noise:
            print("\n".join(noise_cost(directory, False, args.repeats, args.events, not args.now_only)), flush=True)
            return
        if args.logistic:
            print("\n".join(logistic_cost(directory, False, args.repeats, args.events)), flush=True)
            return
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
