"""SGD family under compute heterogeneity: time to a target suboptimality, in the simulator and over MPI.

Setting of Tyurin & Richtarik (NeurIPS 2023): Tyurin's quadratic, d = 100, zero_last noise,
tau_i = scale * sqrt(i). Each method runs a small grid (step size, and S for Rennala) in
the simulator with n = 100; the best entry is reported. Then, over real MPI with 8 workers
and scaled times, each method runs at its best simulated parameters; then one worker that
never answers; then Malenia vs Rennala on label-sorted data.

`--step-cost` (a `make bench` section) instead prints the CPU per event of freya_sgd and
minibatch_page at n = 100 and 10,000, whose steps touch S = 100 workers' jobs whatever n is
(issue 29), now and at BEFORE_STEP_COST, runs alternated, medians.
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

import h5py
import numpy as np

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import run_sim
from asyncopt_mpi.summary import time_to_target

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sim_speed import RUN_SCRIPT, unpack_commit  # noqa: E402

PROBLEM = ["problem.dim=100", "problem.noise=0.1", "problem.noise_type=zero_last"]
GRIDS = {
    "rennala_sgd": [[f"method.lr={lr}", f"method.batch={S}"] for lr in (1.0, 1.5, 1.9) for S in (1, 2, 4, 8)],
    "async_sgd": [[f"method.lr={lr}"] for lr in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)],
    "minibatch_sgd": [[f"method.lr={lr}"] for lr in (1.0, 1.5, 1.9)],
}


def metrics(path: str) -> dict:
    with h5py.File(path, "r", swmr=True, libver="latest") as handle:
        info = {name: handle["metrics"][name][:] for name in handle["metrics"]}
        info["stop_reason"] = handle.attrs["stop_reason"]
    return info


def simulate(path: str, method: str, overrides: list[str]) -> dict:
    config = load_config(None, overrides, method=method, backend="sim", output=path)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_sim(config)
    return metrics(path)


def over_mpi(path: str, n_workers: int, method: str, overrides: list[str]) -> dict:
    command = ["mpiexec", "-n", str(n_workers + 1), sys.executable, "-m", "asyncopt_mpi", "run", "--method", method,
               "--output", path] + [item for override in overrides for item in ("--set", override)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return metrics(path)


BEFORE_STEP_COST = "b887210"  # the last commit whose freya_sgd and minibatch_page steps touched all n workers
# m = 10,000 samples, so S = 100 results a step (freya_sgd) and S = 100 differences split over the workers (minibatch_page)
STEP_COST = ["problem.dim=100", "problem.samples=10000", "problem.lam=2.0", "problem.mu=1e-6", "workers.compute=sqrt",
             "method.lr=0.1"]


def cpu_per_event(method: str, n: int, gradients: int, path: str, code: str | None = None) -> float:
    """CPU microseconds per event of one simulator run (fresh process, set-up included), from `code` if given."""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    sets = STEP_COST + [f"workers.n={n}", f"stop.gradients={gradients}"]
    done = subprocess.run([sys.executable, "-P", "-c", RUN_SCRIPT, method, path, json.dumps(sets), ""],
                          check=True, capture_output=True, text=True, timeout=3600, env=env)
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    with h5py.File(path, "r") as handle:
        events = len(handle["events/time"])
    os.unlink(path)
    return 1e6 * seconds / events


def step_cost(directory: str, quick: bool, repeats: int | None = None) -> list[str]:
    """CPU per event at n = 100 and 10,000 (1000 and freya_sgd only when quick) now and (not when quick) at
    BEFORE_STEP_COST."""
    repeats = repeats or (1 if quick else 3)
    counts, gradients = ((100, 1000), 3000) if quick else ((100, 10_000), 100_000)
    before = None if quick else unpack_commit(BEFORE_STEP_COST, directory)
    codes = {"now": None} | ({BEFORE_STEP_COST: before} if before else {})
    few, many = counts
    lines = [f"| method | code | us/event, n = {few:,} | us/event, n = {many:,} | n = {many:,} / n = {few:,} |",
             "|---|---|---|---|---|"]
    for method in ("freya_sgd",) if quick else ("freya_sgd", "minibatch_page"):  # quick: one method
        found = {(name, n): [] for name in codes for n in counts}
        for repeat in range(repeats):
            for n in counts:
                for name, code in codes.items():
                    path = os.path.join(directory, f"step-{method}-{n}-{repeat}.h5")
                    found[name, n].append(cpu_per_event(method, n, gradients, path, code))
        for name in codes:
            small, large = np.median(found[name, few]), np.median(found[name, many])
            lines.append(f"| {method} | {name} | {small:.1f} | {large:.1f} | {large / small:.2f} |")
    return lines


SECTIONS = [("Per-step cost against n", f"freya_sgd and minibatch_page on the quadratic, d = 100, m = 10,000 (S = 100), "
             "tau_i = sqrt(i), 100,000 gradients; CPU per event of whole runs (set-up included), now and at "
             f"{BEFORE_STEP_COST} (steps that touched all n workers), alternated, medians of 3; target: n = 10,000 "
             "<= 1.5x n = 100", step_cost)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step-cost", action="store_true", help="only the per-step cost against n (a make bench section)")
    parser.add_argument("--target", type=float, default=1e-2)
    parser.add_argument("--n-sim", type=int, default=100)
    parser.add_argument("--n-mpi", type=int, default=8)
    parser.add_argument("--mpi-scale", type=float, default=0.02, help="seconds per gradient of worker 1 over MPI")
    parser.add_argument("--mpi-time", type=float, default=30.0)
    args = parser.parse_args()
    if args.step_cost:
        with tempfile.TemporaryDirectory() as scratch:
            print("\n".join(step_cost(scratch, False)), flush=True)
        return
    directory = tempfile.mkdtemp(prefix="sgd-family-")
    target = args.target

    def tune(n_workers: int) -> dict[str, tuple[float, list[str]]]:
        """Best grid entry per method in the simulator with n workers, tau_i = sqrt(i)."""
        base = PROBLEM + [f"workers.n={n_workers}", "workers.compute=sqrt", "workers.compute_scale=1",
                          "stop.time=5000", f"stop.target={target}", "output.snapshot_every=1"]
        best = {}
        for method, grid in GRIDS.items():
            results = []
            for index, extra in enumerate(grid):
                found = simulate(os.path.join(directory, f"sim{n_workers}-{method}-{index}.h5"), method, base + extra)
                results.append((np.nan_to_num(time_to_target(found, target), nan=np.inf), extra))
            best[method] = min(results, key=lambda item: item[0])
        return best

    print(f"## Simulator: n = {args.n_sim}, tau_i = sqrt(i) s, target f - f* <= {target:g}\n")
    print("| method | best parameters | time to target (virtual s) |\n|---|---|---|")
    for method, (time, extra) in tune(args.n_sim).items():
        print(f"| {method} | {' '.join(extra)} | {time:.0f} |", flush=True)

    scale = args.mpi_scale
    best = tune(args.n_mpi)
    mpi_base = PROBLEM + ["workers.compute=sqrt", f"workers.compute_scale={scale}", f"stop.time={args.mpi_time}",
                          f"stop.target={target}", "output.snapshot_every=0.05"]
    print(f"\n## MPI: {args.n_mpi} workers, tau_i = {scale:g} sqrt(i) s, parameters tuned in the simulator at n = {args.n_mpi}\n")
    print("| method | parameters | MPI: time to target (s) | MPI, in units of tau_1 | simulator, in units of tau_1 |")
    print("|---|---|---|---|---|")
    for method, (sim_time, extra) in best.items():
        found = over_mpi(os.path.join(directory, f"mpi-{method}.h5"), args.n_mpi, method, mpi_base + extra)
        time = time_to_target(found, target)
        print(f"| {method} | {' '.join(extra)} | {time:.2f} | {time / scale:.0f} | {sim_time:.0f} |", flush=True)

    times = [float(scale * np.sqrt(i)) for i in range(1, args.n_mpi)] + [float("inf")]
    dead = [item for item in mpi_base if not item.startswith("workers.compute=")]
    dead += [f"workers.compute_times=[{', '.join(map(repr, times))}]"]
    print(f"\n## MPI: worker {args.n_mpi - 1} never answers (tau_n = inf)\n")
    print("| method | time to target (s) | stop_reason |\n|---|---|---|")
    for method, (_, extra) in best.items():
        found = over_mpi(os.path.join(directory, f"dead-{method}.h5"), args.n_mpi, method, dead + extra)
        print(f"| {method} | {time_to_target(found, target):.2f} | {found['stop_reason']} |", flush=True)

    hetero = ["problem.name=logistic", "problem.samples=2000", "problem.dim=20", "workers.data_split=by_label",
              "workers.compute_profile=linear", "method.lr=2.0", "method.batch=10"]
    print("\n## Heterogeneous data (by_label split, linear speeds): loss at equal time\n")
    print("| runtime | malenia_sgd | rennala_sgd |\n|---|---|---|")
    losses = {}
    for method in ("malenia_sgd", "rennala_sgd"):
        found = simulate(os.path.join(directory, f"het-sim-{method}.h5"), method, hetero + [
            "workers.n=10", "workers.compute_scale=0.02", "stop.time=150", "output.snapshot_every=1"])
        losses[("sim", method)] = found["loss"][found["time"] >= 125].mean()
        found = over_mpi(os.path.join(directory, f"het-mpi-{method}.h5"), args.n_mpi, method, hetero + [
            "workers.compute_scale=0.002", "stop.time=20", "output.snapshot_every=0.1"])
        losses[("mpi", method)] = found["loss"][found["time"] >= 15].mean()
    for runtime in ("sim", "mpi"):
        print(f"| {runtime} | {losses[(runtime, 'malenia_sgd')]:.4f} | {losses[(runtime, 'rennala_sgd')]:.4f} |")
    print(f"\n(files in {directory})")


if __name__ == "__main__":
    main()
