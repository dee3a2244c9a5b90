"""Freya PAGE, Figure 1 in the simulator: Freya PAGE vs Rennala SGD vs Asynchronous SGD vs Soviet PAGE.

Each method runs a small step-size grid (the setting of CONFIG, default jobs/freya_fig1_n1000.toml);
its best entry is the one with the lowest median f - f* over the last tenth of the run. Writes a
Markdown table (f - f* at a quarter, half and the end of the run, and the wall time of each run)
and a figure of the best runs made with asyncopt's own plot.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import time
from multiprocessing import Pool

import h5py
import numpy as np

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.plot import plot
from asyncopt_mpi.runtime.session import run_sim

GRIDS = {
    "freya_page": [0.2, 0.4, 0.8, 1.6],
    "rennala_sgd": [0.1, 0.2, 0.4],
    "async_sgd": [0.001, 0.003, 0.01],
    "soviet_page": [0.2, 0.4, 0.8, 1.6, 3.2],  # the paper's Soviet PAGE: every step split over all n workers
}
TARGETS = (1e-3, 1e-6)  # the table gives the first time each is reached


def run_one(task: tuple[str, str, float, str, list[str]]) -> dict:
    config_path, method, lr, directory, extra, reuse = task
    path = os.path.join(directory, f"{method}-lr{lr:g}.h5")
    if reuse and os.path.exists(path):
        return _result(method, lr, path, 0, math.nan)
    overrides = [f"method.lr={lr}", f"output.path={path}"] + extra
    if method == "rennala_sgd":
        samples = load_config(config_path, [], backend="sim").problem.samples
        overrides.append(f"method.batch={math.ceil(math.sqrt(samples))}")  # S as Freya's batch
    if os.path.exists(path):
        os.remove(path)  # a fresh run every time (an earlier result is never read back instead)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = run_sim(load_config(config_path, overrides, method=method, backend="sim"), overwrite=True)
    return _result(method, lr, path, code, time.perf_counter() - started)


def _result(method: str, lr: float, path: str, code: int, wall: float) -> dict:
    with h5py.File(path, "r") as handle:
        subopt, times = handle["metrics/suboptimality"][:], handle["metrics/time"][:]
    end = times[-1]
    tail = subopt[times >= 0.9 * end]
    score = float(np.median(tail)) if code == 0 and np.all(np.isfinite(tail)) else math.inf
    reached = {target: _first_time(times, subopt, target) for target in TARGETS}
    at = {fraction: float(subopt[np.searchsorted(times, fraction * end)]) for fraction in (0.25, 0.5)}
    return {"method": method, "lr": lr, "path": path, "score": score, "quarter": at[0.25], "half": at[0.5],
            "end": float(subopt[-1]), "wall": wall, "reached": reached}


def _first_time(times: np.ndarray, subopt: np.ndarray, target: float) -> float:
    """The first snapshot time at which f - f* <= target (inf if never)."""
    hits = np.flatnonzero(subopt <= target)
    return float(times[hits[0]]) if hits.size else math.inf


def _seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:,.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="jobs/freya_fig1_n1000.toml")
    parser.add_argument("--out", default="benchmarks/results/freya_fig1_n1000")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="read back runs already in OUT/runs instead of rerunning them")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    directory = os.path.join(args.out, "runs")
    os.makedirs(directory, exist_ok=True)
    tasks = [(args.config, method, lr, directory, args.overrides, args.reuse) for method, lrs in GRIDS.items() for lr in lrs]
    with Pool(args.processes) as pool:
        results = list(pool.imap_unordered(run_one, tasks))
    best = {}
    for result in results:
        if result["method"] not in best or result["score"] < best[result["method"]]["score"]:
            best[result["method"]] = result
    config = load_config(args.config, args.overrides, backend="sim")
    lines = [
        f"Setting: {args.config} {' '.join(args.overrides)} (n = {config.workers.n}, d = {config.problem.dim}, "
        f"m = {config.problem.samples}, tau_i = sqrt(i), {config.stop.time:g} virtual s)", "",
        "| method | best lr (grid) | f - f* at 1/4 | at 1/2 | at the end | median of last tenth | "
        + " | ".join(f"time to {target:g}" for target in TARGETS) + " | wall time of the run |",
        "|---|---|---|---|---|---|" + "---|" * len(TARGETS) + "---|",
    ]
    for method, result in sorted(best.items(), key=lambda item: item[1]["score"]):
        grid = ", ".join(f"{lr:g}" for lr in GRIDS[method])
        lines.append(f"| {method} | {result['lr']:g} ({grid}) | {result['quarter']:.3g} | {result['half']:.3g} | "
                     f"{result['end']:.3g} | {result['score']:.3g} | "
                     + " | ".join(_seconds(result["reached"][target]) for target in TARGETS)
                     + (" | (reused) |" if math.isnan(result["wall"]) else f" | {result['wall']:.0f} s |"))
    freya = best.get("freya_page")
    if freya is not None:
        lines.append("")
        for method, result in best.items():
            if method == "freya_page":
                continue
            ratios = []
            for target in TARGETS:
                mine, theirs = freya["reached"][target], result["reached"][target]
                if math.isinf(mine):
                    ratios.append(f"f - f* <= {target:g}: Freya PAGE never reaches it")
                elif math.isinf(theirs):
                    ratios.append(f"f - f* <= {target:g}: Freya PAGE at {_seconds(mine)}, {method} never")
                else:
                    ratios.append(f"f - f* <= {target:g}: Freya PAGE {theirs / mine:.1f}x faster" if theirs >= mine
                                  else f"f - f* <= {target:g}: {method} {mine / theirs:.1f}x faster")
            lines.append(f"- Freya PAGE vs {method}: " + "; ".join(ratios)
                         + f"; its final f - f* is {result['end'] / freya['end']:.2g}x Freya PAGE's")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(table + "\n")
    figure = os.path.join(args.out, "figure.png")
    plot([result["path"] for result in best.values()], figure, title=f"Freya PAGE, Figure 1 setting, n = {config.workers.n}")
    print(table)
    print(f"\nfigure: {figure}")


if __name__ == "__main__":
    main()
