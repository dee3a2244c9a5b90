"""`make bench`: every benchmark of asyncopt-mpi, written to benchmarks/RESULTS.md as one Markdown report.

Each figure is a rate or a ratio of two things measured side by side in the same run, the
median of repeats. `--quick` runs a small version of each (the test suite's smoke test).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = sys.executable


def mpiexec() -> str:
    local = os.path.join(os.path.dirname(PYTHON), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


def asyncopt_mpi(ranks: int, args: list[str], timeout: float = 900) -> None:
    command = [mpiexec(), "-n", str(ranks), PYTHON, "-m", "asyncopt_mpi", "run", "--quiet", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=timeout)


def sets(**values) -> list[str]:
    return [item for key, value in values.items() for item in ("--set", f"{key.replace('__', '.')}={value}")]


# ---------------------------------------------------------------- sections


def machine() -> list[str]:
    from mpi4py import MPI

    import mpi4py
    import scipy

    from asyncopt_mpi.runtime.mpi.text import library_version

    library = library_version(MPI)
    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"h5py {h5py.__version__}, mpi4py {mpi4py.__version__}",
        f"- MPI: {library}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]


def server_efficiency(directory: str, quick: bool) -> list[str]:
    """Gradients received / (duration * sum_i 1/tau_i), tau_i = 0.01 sqrt(i) s."""
    counts = [2] if quick else [8, 16, 32, 64]
    repeats, seconds = (1, 1.0) if quick else (3, 5.0)
    lines = ["| method | " + " | ".join(f"{n} workers" for n in counts) + " |", "|---|" + "---|" * len(counts)]
    for method in ("async_sgd", "rennala_sgd"):
        cells = []
        for n in counts:
            values = []
            for repeat in range(repeats):
                path = os.path.join(directory, f"eff-{method}-{n}-{repeat}.h5")
                batch = {"method__batch": 4} if method == "rennala_sgd" else {}  # Rennala's S; one gradient per job
                asyncopt_mpi(n + 1, ["--method", method, "--output", path] + sets(
                    problem__dim=100, problem__noise=0.01, method__lr=0.05, workers__compute="sqrt",
                    workers__compute_scale=0.01, stop__time=seconds, output__snapshot_every=1000, **batch))
                with h5py.File(path, "r") as handle:
                    received = int(handle["workers/grads"][:].sum())
                rate = np.sum(1.0 / (0.01 * np.sqrt(np.arange(1, n + 1))))
                values.append(received / (seconds * rate))
            cells.append(f"{np.median(values):.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def message_overhead(directory: str, quick: bool) -> list[str]:
    """Seconds per message of the server loop against a bare mpi4py receive + axpy + send loop."""
    sizes = {1000: 1000} if quick else {1000: 5000, 100_000: 1000, 1_000_000: 200, 10_000_000: 30}
    lines = ["| d | bare loop (us/message) | asyncopt server (us/message) | ratio |", "|---|---|---|---|"]
    for dim, messages in sizes.items():
        bare_runs, ours_runs = [], []
        for repeat in range(1 if quick else 3):
            done = subprocess.run([mpiexec(), "-n", "2", PYTHON, os.path.join(HERE, "bare_loop.py"), str(dim), str(messages)],
                                  check=True, capture_output=True, text=True, timeout=900)
            bare_runs.append(float(done.stdout.strip()))
            path = os.path.join(directory, f"overhead-{dim}-{repeat}.h5")
            asyncopt_mpi(2, ["--method", "async_sgd", "--output", path] + sets(
                problem__dim=dim, problem__noise=0.01, method__lr=1e-3, workers__compute="fixed",
                workers__compute_scale=0.0, stop__iterations=messages, output__snapshot_every=1e9))
            with h5py.File(path, "r") as handle:
                times = handle["trace/time"][:]
            # Steady state: from the 10th update on (the first ones include start-up).
            ours_runs.append((times[-1] - times[9]) / (len(times) - 10))
        bare, ours = np.median(bare_runs), np.median(ours_runs)
        lines.append(f"| {dim:.0e} | {bare * 1e6:.1f} | {ours * 1e6:.1f} | {ours / bare:.2f} |")
    return lines


def point_caching(directory: str, quick: bool) -> list[str]:
    """bytes_down per update of rennala_sgd with and without sending points only to workers that lack them."""
    n = 2 if quick else 8
    lines = ["| cache_points | bytes_down per update | updates |", "|---|---|---|"]
    for cache in ("true", "false"):
        path = os.path.join(directory, f"cache-{cache}.h5")
        asyncopt_mpi(n + 1, ["--method", "rennala_sgd", "--output", path] + sets(
            problem__dim=1000, problem__noise=0.01, method__lr=0.3, method__batch=n, workers__compute="sqrt",
            workers__compute_scale=0.005, workers__cache_points=cache, stop__time=1.0 if quick else 5.0))
        with h5py.File(path, "r") as handle:
            updates = len(handle["trace/time"])
            per_update = handle["trace/bytes_down"][-1] / updates
        lines.append(f"| {cache} | {per_update:.0f} | {updates} |")
    return lines


SIM_SCRIPT = """
import contextlib, io, json, resource, sys, time
try:
    from asyncopt_mpi.validate import load_config
except ImportError:  # a checkout from before validate.py (issue 28) loads configs in config.py
    from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime.session import run_sim
n, d, events, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
config = load_config(None, [f"problem.dim={d}", "problem.noise=0.01", f"workers.n={n}", "workers.compute=sqrt",
    f"stop.gradients={events}", "method.lr=1e-4", "output.snapshot_every=1e9", f"output.path={path}"],
    method="async_sgd", backend="sim")
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    run_sim(config)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def simulator(directory: str, quick: bool) -> list[str]:
    """Events per second of async_sgd in the simulator (recording on), and peak memory, against n and d."""
    grid = [(1000, 100)] if quick else [(n, d) for d in (100, 1000) for n in (1000, 10_000, 100_000)]
    events = 20_000 if quick else 300_000
    lines = ["| workers | d | events/s (with recording) | peak RSS (MiB) |", "|---|---|---|---|"]
    for n, d in grid:
        path = os.path.join(directory, f"sim-{n}-{d}.h5")
        done = subprocess.run([PYTHON, "-c", SIM_SCRIPT, str(n), str(d), str(events), path], check=True,
                              capture_output=True, text=True, timeout=1800)
        found = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(f"| {n} | {d} | {events / found['seconds']:,.0f} | {found['peak'] / 2**20:.0f} |")
    return lines


def freya_figure(directory: str, quick: bool) -> list[str]:
    """Wall time of the Freya PAGE Figure 1 setting at n = 10,000 workers (simulator)."""
    if quick:
        return ["(skipped in quick mode)"]
    path = os.path.join(directory, "freya-n10000.h5")
    started = time.perf_counter()
    subprocess.run([PYTHON, "-m", "asyncopt_mpi", "run", os.path.join(ROOT, "jobs", "freya_fig1_n10000.toml"),
                    "--backend", "sim", "--quiet", "--output", path, "--set", "method.lr=0.8"],
                   check=True, capture_output=True, timeout=3600)
    seconds = time.perf_counter() - started
    with h5py.File(path, "r") as handle:
        events = len(handle["events/time"])
        subopt = handle["metrics/suboptimality"][-1]
    return [f"freya_page, n = 10,000, d = 1000, m = 10,000, 20,000 virtual s: {seconds:.0f} s wall "
            f"({events:,} events, final f - f* = {subopt:.2e})"]


def server_memory(directory: str, quick: bool) -> list[str]:
    """Peak RSS of rank 0 against n*d (async_sgd, 1 s runs)."""
    grid = [(1, 10_000)] if quick else [(4, 100_000), (4, 1_000_000), (16, 1_000_000), (4, 4_000_000)]
    lines = ["| workers n | d | n*d*8 (MiB) | rank-0 peak RSS (MiB) |", "|---|---|---|---|"]
    for n, d in grid:
        path = os.path.join(directory, f"mem-{n}-{d}.h5")
        asyncopt_mpi(n + 1, ["--method", "async_sgd", "--output", path] + sets(
            problem__dim=d, method__lr=1e-3, workers__compute="fixed", workers__compute_scale=0.05, stop__time=1.0,
            output__snapshot_every=1e9))
        with h5py.File(path, "r") as handle:
            peak = handle.attrs["peak_rss_bytes"]
        lines.append(f"| {n} | {d:.0e} | {n * d * 8 / 2**20:.0f} | {peak / 2**20:.0f} |")
    return lines


SECTIONS = [
    ("Server efficiency", "gradients received / (duration x sum_i 1/tau_i), tau_i = 0.01 sqrt(i) s, 5 s runs, median of 3; "
     "target >= 0.98 at 32 workers", server_efficiency),
    ("Per-message overhead", "one worker computing the quadratic's stochastic gradient; seconds per message at rank 0, "
     "asyncopt's async_sgd against a bare mpi4py Recv + axpy + Send loop (same worker work); targets: <= 2x at "
     "d = 1e3, <= 1.3x at d >= 1e5", message_overhead),
    ("Point caching", "rennala_sgd, d = 1000: a point is sent only to workers that do not hold it (true) or with "
     "every job (false)", point_caching),
    ("Simulator", "async_sgd on the quadratic, tau_i = sqrt(i), events per second of the whole run (set-up "
     "included) and peak memory; target >= 150,000 events/s at n = 1000, d = 100", simulator),
    ("Freya PAGE Figure 1 at n = 10,000", "target: within 15 minutes", freya_figure),
    ("Server memory", "peak RSS of rank 0 (async_sgd, one receive buffer per worker plus points)", server_memory),
]
sys.path.insert(0, HERE)
from core_speed import SECTIONS as CORE_SECTIONS  # noqa: E402  (issue 17: simulator core, rank 0 CPU, RSS)

SECTIONS += CORE_SECTIONS
from fragile_graph import graph_cost  # noqa: E402  (issue 29: graph planning and per-event cost)

SECTIONS.append(("Graph methods' cost", "fragile_sgd and amelie_sgd on jobs/fragile_mesh_rho10.toml: set-up CPU and peak "
                 "RSS of whole processes stopped at their first event, the event loop's CPU per event (a result reaching "
                 "the pivot) and per hop, and one run of the fragile reproduction's paper setting; now and at b887210 (all-pairs "
                 "planning), alternated; targets: set-up CPU at 10,000 <= 5x at 2,500, < 2 GB at 10,000", graph_cost))
from sgd_family import SECTIONS as SGD_FAMILY_SECTIONS  # noqa: E402  (issue 29: per-step cost against n)

SECTIONS += SGD_FAMILY_SECTIONS
from shadowheart import SECTIONS as SHADOWHEART_SECTIONS  # noqa: E402  (issue 29: compressed uploads per event)

SECTIONS += SHADOWHEART_SECTIONS
from run_costs import SECTIONS as RUN_COST_SECTIONS  # noqa: E402  (issue 29: a run's processes, snapshots)

SECTIONS += RUN_COST_SECTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small versions of every benchmark (seconds)")
    parser.add_argument("--output", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--only", default=None, help="comma-separated section titles to run")
    args = parser.parse_args()
    report = ["# Benchmark results", "", f"`python benchmarks/run.py{' --quick' if args.quick else ''}`", ""] + machine()
    with tempfile.TemporaryDirectory() as directory:
        for title, description, run in SECTIONS:
            if args.only and title not in args.only.split(","):
                continue
            print(f"== {title}", flush=True)
            started = time.perf_counter()
            lines = run(directory, args.quick)
            print("\n".join(lines), flush=True)
            report += ["", f"## {title}", "", description + ".", "", *lines, "",
                       f"({time.perf_counter() - started:.0f} s)"]
    with open(args.output, "w") as handle:
        handle.write("\n".join(report) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
