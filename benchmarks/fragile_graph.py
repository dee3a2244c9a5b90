"""Fragile SGD against minibatch and asynchronous SGD on the paper's worker graphs (simulator), and Amelie on heterogeneous data.

The jobs/fragile_{mesh,torus}_rho{0.1,1,10}.toml set-ups (quadratic d = 1000, 100 workers,
h_i = sqrt(i)): each method with its best step size of a small grid, the median over three
seeds of the time until f - f* <= TARGET (the zero_last noise is heavy-tailed: one seed can
be unlucky). Then jobs/amelie_heterogeneous.toml: mean loss over the last sixth of
the run for amelie_sgd and fragile_sgd. Writes a table and a figure (mesh, rho = 10).

`--cost` (and `make bench`'s "Graph methods' cost" section, `graph_cost`) measures what the
graph methods cost instead, now and at BEFORE_PLANNING (all-pairs planning, issue 29), side by
side in fresh processes: set-up CPU and peak RSS of jobs/fragile_mesh_rho10.toml at n = 1000,
2500 and 10,000 (a run stopped at its first event), the event loop's CPU per event (a result
reaching the pivot) and per hop of fragile_sgd and amelie_sgd at n = 100 and 10,000, and the CPU of one run of the fragile
reproduction's paper setting (asyncopt_mpi/reproduce/fragile.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from multiprocessing import Pool

import h5py
import numpy as np

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import run_sim
from asyncopt_mpi.summary import time_to_target
from report import new_figure, save
from sim_speed import unpack_commit

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(os.path.dirname(HERE), "jobs")
BEFORE_PLANNING = "b887210"  # the last commit that planned graph runs with all-pairs distances
METHODS = ("fragile_sgd", "minibatch_sgd", "async_sgd")
STEP_SIZES = {"fragile_sgd": (0.5, 1.0), "minibatch_sgd": (0.5, 1.0), "async_sgd": (0.1, 0.25)}
SEEDS = (0, 1, 2)
TARGET = 0.02
SETUPS = [(topology, rho) for topology in ("mesh", "torus") for rho in ("0.1", "1", "10")]


def run(config: str, path: str, overrides: list[str]) -> dict[str, np.ndarray]:
    with contextlib.redirect_stdout(io.StringIO()):
        run_sim(load_config(config, overrides + [f"output.path={path}"], backend="sim"), overwrite=True)
    with h5py.File(path, "r") as handle:
        return {name: handle["metrics"][name][:] for name in ("time", "suboptimality", "loss")}


def run_graph(task: tuple[str, str, str, float, int, str]) -> tuple[tuple, int, float, dict]:
    topology, rho, method, lr, seed, directory = task
    config = os.path.join(JOBS, f"fragile_{topology}_rho{rho}.toml")
    path = os.path.join(directory, f"{topology}-{rho}-{method}-{lr}-seed{seed}.h5")
    metrics = run(config, path, [f"method.name={method}", f"method.lr={lr}", f"workers.seed={seed}"])
    reached = time_to_target(metrics, TARGET)
    return (topology, rho, method, lr), seed, reached if np.isfinite(reached) else np.inf, metrics


def run_heterogeneous(task: tuple[str, str]) -> tuple[str, float]:
    method, directory = task
    config = os.path.join(JOBS, "amelie_heterogeneous.toml")
    metrics = run(config, os.path.join(directory, f"heterogeneous-{method}.h5"), [f"method.name={method}"])
    last = metrics["time"] >= metrics["time"][-1] * 5 / 6
    return method, float(metrics["loss"][last].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/fragile_graph")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cost", action="store_true", help="the graph methods' set-up and per-event cost instead")
    parser.add_argument("--quick", action="store_true", help="with --cost: small sizes, nothing from before")
    args = parser.parse_args()
    if args.cost:
        with tempfile.TemporaryDirectory() as scratch:
            print("\n".join(graph_cost(scratch, args.quick)))
        return
    directory = os.path.join(args.out, "runs")
    os.makedirs(directory, exist_ok=True)
    tasks = [(topology, rho, method, lr, seed, directory) for topology, rho in SETUPS for method in METHODS
             for lr in STEP_SIZES[method] for seed in SEEDS]
    times: dict[tuple, list[float]] = {}
    first_seed: dict[tuple, dict] = {}
    with Pool(args.processes) as pool:
        for key, seed, time, metrics in pool.imap_unordered(run_graph, tasks):
            times.setdefault(key, []).append(time)
            if seed == SEEDS[0]:
                first_seed[key] = metrics
        losses = dict(pool.map(run_heterogeneous, [(method, directory) for method in ("amelie_sgd", "fragile_sgd")]))
    # Per (graph, method): the step size with the smallest median time (ties: the larger step).
    best: dict[tuple[str, str, str], tuple[float, float, dict]] = {}
    for (topology, rho, method, lr), found in sorted(times.items(), key=lambda item: -item[0][3]):
        median = float(np.median(found))
        key = (topology, rho, method)
        if key not in best or median < best[key][0]:
            best[key] = (median, lr, first_seed[(topology, rho, method, lr)])

    def cell(key) -> str:
        time, lr, _ = best[key]
        return f"{time:.0f} (lr {lr:g})" if np.isfinite(time) else f"not reached (best lr {lr:g})"

    lines = [f"Quadratic d = 1000, 100 workers, h_i = sqrt(i) s, zero_last noise p = 0.001; median over seeds "
             f"{', '.join(map(str, SEEDS))} of the virtual seconds until f - f* <= {TARGET:g}; best step size per "
             f"method of {STEP_SIZES}.", "",
             "| graph | rho (s) | fragile_sgd | minibatch_sgd | async_sgd (at the pivot) | minibatch / fragile |",
             "|---|---|---|---|---|---|"]
    for topology, rho in SETUPS:
        fragile, minibatch = best[(topology, rho, "fragile_sgd")][0], best[(topology, rho, "minibatch_sgd")][0]
        ratio = f"{minibatch / fragile:.2f}" if np.isfinite(fragile) and np.isfinite(minibatch) else "-"
        lines.append(f"| 10 x 10 {topology} | {rho} | {cell((topology, rho, 'fragile_sgd'))} | "
                     f"{cell((topology, rho, 'minibatch_sgd'))} | {cell((topology, rho, 'async_sgd'))} | {ratio} |")
    lines += ["", "Heterogeneous data (jobs/amelie_heterogeneous.toml, 3 x 3 mesh, labels sorted across workers): "
              "mean loss over the last sixth of the run.", "",
              "| method | loss |", "|---|---|",
              *(f"| {method} | {loss:.4f} |" for method, loss in losses.items())]
    figure, axes = new_figure(5.6)
    for method in METHODS:
        _, lr, metrics = best[("mesh", "10", method)]
        axes.semilogy(metrics["time"], metrics["suboptimality"], label=f"{method} (lr {lr:g}, seed {SEEDS[0]})")
    axes.axhline(TARGET, color="k", linestyle=":", linewidth=0.8)
    save(args.out, "\n".join(lines), figure, axes, "time (virtual seconds)", "f(x) - f*",
         "10 x 10 mesh, rho = 10 s, d = 1000")


# ---------------------------------------------------------------- cost of the graph methods (`--cost`)

COST_SCRIPT = """
import contextlib, io, json, resource, sys, time
import h5py
try:
    from asyncopt_mpi.validate import load_config
except ImportError:  # a checkout from before validate.py (issue 28) loads configs in config.py
    from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime.graph import sim as graph_sim
from asyncopt_mpi.runtime.session import run_sim
job, path, sets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
loop = graph_sim.GraphSim.run
spent = []
def timed(self):  # the event loop's CPU alone (set-up apart)
    started = time.process_time()
    loop(self)
    spent.append(time.process_time() - started)
graph_sim.GraphSim.run = timed
config = load_config(job, sets + [f"output.path={path}"], backend="sim")
with contextlib.redirect_stdout(io.StringIO()):
    run_sim(config, overwrite=True)
with h5py.File(path, "r") as handle:
    events, hops = len(handle["events/time"]), len(handle["hops/start"])
print(json.dumps({"cpu": time.process_time(), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "loop": sum(spent), "events": events, "hops": hops}))
"""
MESH = os.path.join(JOBS, "fragile_mesh_rho10.toml")
# asyncopt_mpi/reproduce/fragile.py at the paper scale, mesh, rho = 0.1, the middle of its step-size grid
PAPER = ["problem.dim=1000", "problem.noise=0.001", "problem.noise_type=zero_last", "workers.n=100",
         "workers.compute=fixed", "workers.compute_profile=equal", "workers.compute_scale=1.0", "method.S=40",
         "method.lr=0.5", "graph.topology=mesh", "graph.rho=0.1", "output.snapshot_every=10"]


def cost_run(directory: str, code: str | None, job: str, overrides: list[str]) -> dict:
    """CPU seconds of a whole fresh process (imports included) and of its event loop, its peak RSS (MiB), its
    /events and /hops rows."""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    path = os.path.join(directory, "graph-cost.h5")
    done = subprocess.run([sys.executable, "-P", "-c", COST_SCRIPT, job, path, json.dumps(overrides)],
                          capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode:
        raise RuntimeError(f"{overrides} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def graph_cost(directory: str, quick: bool) -> list[str]:
    """Markdown lines: set-up, per-event and paper-run CPU now and at BEFORE_PLANNING (not when quick)."""
    before = None if quick else unpack_commit(BEFORE_PLANNING, directory)
    codes = [("now", None)] + ([(f"at {BEFORE_PLANNING}", before)] if before else [])
    sizes = (100, 400) if quick else (1000, 2500, 10_000)
    lines = ["| set-up, jobs/fragile_mesh_rho10.toml | " + " | ".join(f"{label}: CPU s, MiB" for label, _ in codes)
             + " |", "|---|" + "---|" * len(codes)]
    setup: dict[tuple[str, int], float] = {}
    for n in sizes:
        cells = []
        for label, code in codes:  # alternated: the machine's load hits both alike
            found = cost_run(directory, code, MESH, [f"workers.n={n}", "stop.time=1e-9"])
            setup[(label, n)] = found["cpu"]
            cells.append(f"{found['cpu']:.2f} s, {found['rss']:.0f} MiB")
        lines.append(f"| n = {n:,} | " + " | ".join(cells) + " |")
    first, last = sizes[-2], sizes[-1]
    lines.append(f"| set-up CPU at {last:,} / at {first:,} | " + " | ".join(
        f"{setup[(label, last)] / setup[(label, first)]:.1f}x" for label, _ in codes) + " |")
    horizons = {100: 400.0, 10_000: 600.0} if not quick else {100: 100.0}
    lines += ["", "| event loop CPU: us per event, per hop (events, hops) | " + " | ".join(label for label, _ in codes)
              + " |", "|---|" + "---|" * len(codes)]
    for method in ("fragile_sgd",) if quick else ("fragile_sgd", "amelie_sgd"):  # quick: one method
        for n, horizon in horizons.items():
            cells = []
            for label, code in codes:
                run = cost_run(directory, code, MESH, [f"workers.n={n}", f"stop.time={horizon}", f"method.name={method}"])
                cells.append(f"{run['loop'] / max(run['events'], 1) * 1e6:,.0f}, {run['loop'] / max(run['hops'], 1) * 1e6:,.0f} "
                             f"({run['events']:,}, {run['hops']:,})")
            lines.append(f"| {method}, n = {n:,}, {horizon:g} virtual s | " + " | ".join(cells) + " |")
    horizon = 100.0 if quick else 1000.0  # the reproduction's paper horizon at rho = 0.1
    cells = [f"{cost_run(directory, code, MESH, PAPER + [f'stop.time={horizon}'])['cpu']:.1f}" for _, code in codes]
    lines += ["", f"fragile reproduction, paper setting (mesh, rho = 0.1, n = 100, S = 40, d = 1000), {horizon:g} "
              "virtual s, CPU s: " + ", ".join(f"{label} {cell}" for (label, _), cell in zip(codes, cells))]
    return lines


if __name__ == "__main__":
    main()
