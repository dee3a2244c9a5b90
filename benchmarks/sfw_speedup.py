"""Speed-up of SFW-asyn and SFW-dist over one worker on matrix sensing (simulator), as in seed 003's appendix D.

Compute times follow the seed's queueing model: a task of u units takes u * p * Geometric(p)
time units (expectation u; p = workers.compute_p, smaller p: more varied workers); one
stochastic gradient is one unit and a worker's 1-SVD ten (svd_cost). For n = 1, 2, 4, 8, 16
workers, each method runs until f - f* <= TARGET x f(x0); the speed-up is the time with one
worker over the time with n. Writes a table and a figure.

sfw_asyn runs twice. "same settings": every worker count uses the staleness tolerance the
largest one needs (max_staleness = 2 x 16), so the batch schedule b_k ~ (k+1)^2 / tau is the
same and only the number of workers changes (the seed's protocol: hyper-parameters fixed
by the analysis). "own default": each count uses its default tau = 2n, so one worker gets
16 times larger early batches than 16 workers do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from multiprocessing import Pool

import h5py
import numpy as np

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import run_sim
from asyncopt_mpi.summary import time_to_target
from report import new_figure, save

PROBLEM = ["problem.name=matrix_sensing", "problem.dim=20", "problem.rank=3"]
WORKERS = (1, 2, 4, 8, 16)


def run_one(task: tuple[str, str, int, float, str, float, int, float]) -> tuple[str, int, float]:
    label, method, n, p, directory, target, max_batch, limit = task
    path = os.path.join(directory, f"{label}-{n}.h5")
    overrides = PROBLEM + [
        f"workers.n={n}", "workers.compute=geometric", "workers.compute_profile=equal", "workers.compute_scale=1",
        f"workers.compute_p={p}", "method.batch=1", f"method.max_batch={max_batch}", f"stop.time={limit}",
        "output.snapshot_every=20", f"output.path={path}",
    ] + ([f"method.max_staleness={2 * max(WORKERS)}"] if label == "sfw_asyn" else [])
    if os.path.exists(path):
        os.remove(path)  # a fresh run every time (an earlier result is never read back instead)
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_sim(load_config(None, overrides + [f"stop.target={target}"], method=method, backend="sim"), overwrite=True)
    if code != 0:
        raise SystemExit(f"sfw_speedup: the {label} run with {n} workers failed (exit {code}); see {path}")
    with h5py.File(path, "r") as handle:
        metrics = {name: handle["metrics"][name][:] for name in ("time", "suboptimality")}
    return label, n, time_to_target(metrics, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--p", type=float, default=0.1, help="geometric distribution parameter (staleness)")
    parser.add_argument("--target", type=float, default=0.05, help="f - f* target as a fraction of f(x0) - f*")
    parser.add_argument("--max-batch", type=int, default=600, help="cap of the batch-size schedule")
    parser.add_argument("--time", type=float, default=200000, help="stop.time (time units)")
    parser.add_argument("--out", default="benchmarks/results/sfw_speedup")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    directory = os.path.join(args.out, "runs")
    os.makedirs(directory, exist_ok=True)
    problem = load_config(None, PROBLEM + ["stop.time=1"], backend="sim").problem
    from asyncopt_mpi.problems import make_problem

    made = make_problem(problem)
    target = args.target * (made.loss(made.x0()) - made.compute_f_star())
    runs = {"sfw_asyn": "sfw_asyn", "sfw_asyn_own_tau": "sfw_asyn", "sfw_dist": "sfw_dist"}
    tasks = [(label, method, n, args.p, directory, target, args.max_batch, args.time)
             for label, method in runs.items() for n in WORKERS]
    with Pool(args.processes) as pool:
        found = {(label, n): time for label, n, time in pool.imap_unordered(run_one, tasks)}
    lines = [f"Matrix sensing 20 x 20, rank 3, geometric compute times (p = {args.p}), time until f - f* <= "
             f"{args.target:g} (f(x0) - f*); speed-up over one worker. sfw_asyn with the same settings for every "
             f"worker count (max_staleness = {2 * max(WORKERS)}), and with each count's default max_staleness = 2n.",
             "", "| workers | sfw_asyn time | speed-up | sfw_asyn, own default tau: time | speed-up | sfw_dist time | speed-up |",
             "|---|---|---|---|---|---|---|"]
    speedups = {label: [found[(label, 1)] / found[(label, n)] for n in WORKERS] for label in runs}
    for index, n in enumerate(WORKERS):
        lines.append("| " + " | ".join([str(n)] + [f"{found[(label, n)]:.0f} | {speedups[label][index]:.2f}"
                                                  for label in runs]) + " |")
    figure, axes = new_figure(5.2)
    axes.plot(WORKERS, WORKERS, "k:", label="linear")
    names = {"sfw_asyn": "sfw_asyn (same settings)", "sfw_asyn_own_tau": "sfw_asyn (own default tau = 2n)",
             "sfw_dist": "sfw_dist"}
    for label, values in speedups.items():
        axes.plot(WORKERS, values, "o-", label=names[label])
    save(args.out, "\n".join(lines), figure, axes, "workers", "speed-up over one worker (time to target)",
         "Matrix sensing, geometric compute times")


if __name__ == "__main__":
    main()
