"""`make bench` sections of issue 17: simulator events/s against sim_floor.py and the old core, rank 0 CPU
per MPI result against a bare Testsome loop, and peak RSS against recorded events.

Each function takes (directory, quick) and returns Markdown lines, like the other sections
of benchmarks/run.py. Ratios come from runs alternated in the same benchmark run; the old
core (commit 9bbab50, before the lean event core) is unpacked from the git history and run
side by side (its rates measured here earlier are kept below for a checkout without history).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from mpi_overhead import rennala_rank0_cpu
from rss_events import peak_rss
from sim_speed import (against_code, against_floor, logistic_cost, malenia_paper_cost, method_cost, noise_cost,
                       run_sim, unpack_commit)

HERE = os.path.dirname(os.path.abspath(__file__))
OLD_COMMIT = "9bbab50"  # the simulator before issue 17's event core
PYTHON = sys.executable

# events/s of 9bbab50 here (median of 3, 2026-11-29, 2 cores shared with other jobs), used without git history
OLD_CORE = {("rennala", 10_000, 100): 67_825, ("freya", 10_000, 1000): 5_740}
OLD_FLOOR_RATIO = {1000: 0.31, 10_000: 0.32, 100_000: 0.22}


def simulator_vs_floor(directory: str, quick: bool) -> list[str]:
    cases = [(1000, 5_000)] if quick else [(1000, 300_000), (10_000, 300_000), (100_000, 1_000_000)]
    repeats = 1 if quick else 5
    lines = ["| workers n | d | simulator (events/s) | sim_floor (events/s) | ratio | 9bbab50's ratio |",
             "|---|---|---|---|---|---|"]
    for n, events in cases:
        ours, floor = against_floor(n, 100, events, repeats, directory)
        lines.append(f"| {n:,} | 100 | {ours:,.0f} | {floor:,.0f} | {ours / floor:.2f} | {OLD_FLOOR_RATIO[n]:.2f} |")
    return lines


def _old_core(directory: str) -> str | None:
    """The package at OLD_COMMIT, unpacked from this repository's history (None without git or history)."""
    return unpack_commit(OLD_COMMIT, directory)


def simulator_vs_old_core(directory: str, quick: bool) -> list[str]:
    if quick:
        return ["(skipped in quick mode)"]
    code = _old_core(directory)
    lines = ["| method | n | d | events/s now | events/s at 9bbab50 | speed-up |", "|---|---|---|---|---|---|"]
    for (case, n, d), kept in OLD_CORE.items():
        events = 300_000 if case == "rennala" else 40_000
        if code is None:  # no history to run the old core from: its rate measured here earlier
            now, old = float(np.median([run_sim(case, n, d, events, os.path.join(directory, f"core-{case}-{r}.h5"))
                                        ["rate"] for r in range(3)])), kept
        else:  # alternated runs of both, as everywhere else
            now, old = against_code(case, n, d, events, 5, code, directory)
        lines.append(f"| {case} | {n:,} | {d} | {now:,.0f} | {old:,.0f}{'' if code else ' (kept)'} | {now / old:.2f}x |")
    return lines


def _mpiexec() -> str:
    local = os.path.join(os.path.dirname(PYTHON), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


def _rank0_us(mode: str, workers: int, results: int, path: str) -> float:
    command = [_mpiexec(), "-n", str(workers + 1), PYTHON, os.path.join(HERE, "mpi_overhead.py"), mode, "1000",
               str(results)] + ([path] if mode == "asyncopt" else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def mpi_rank0_cpu(directory: str, quick: bool) -> list[str]:
    counts, results, repeats = ([1], 1000, 1) if quick else ([4, 8], 100_000, 5)
    lines = ["| workers | bare Testsome loop (us/result) | asyncopt server (us/result) | ratio |", "|---|---|---|---|"]
    for workers in counts:
        bare, ours = [], []
        for repeat in range(repeats):
            bare.append(_rank0_us("bare", workers, results, ""))
            ours.append(_rank0_us("asyncopt", workers, results, os.path.join(directory, f"rank0-{workers}-{repeat}.h5")))
        lines.append(f"| {workers} | {np.median(bare):.1f} | {np.median(ours):.1f} | {np.median(ours) / np.median(bare):.1f} |")
    return lines


def rss_against_events(directory: str, quick: bool) -> list[str]:
    counts = [20_000, 60_000] if quick else [1_000_000, 10_000_000]
    lines = ["| events recorded | peak RSS (MiB) |", "|---|---|"]
    for events in counts:
        recorded, peak = peak_rss(events, directory)
        lines.append(f"| {recorded:,} | {peak / 2**20:.0f} |")
    return lines


SECTIONS = [
    ("Simulator against sim_floor.py", "async_sgd on the quadratic, d = 100, tau_i = sqrt(i), recording on; events per "
     "CPU second of the simulator and of benchmarks/sim_floor.py (a minimal heapq simulator), alternated, medians; "
     "target >= 2x at n = 1000, >= 1.5x at 10,000 and 100,000", simulator_vs_floor),
    ("Simulator against the old core", "rennala_sgd (S = n/10) and freya_page (m = 10,000) at n = 10,000; events per "
     "CPU second (set-up included) now and at 9bbab50 (kept numbers); target >= 5x", simulator_vs_old_core),
    ("Rank 0 CPU per MPI result", "d = 1000, async_sgd, workers as fast as they can; server-thread CPU spent handling "
     "results per result (idle polling excluded) against a bare Testsome + re-arm + axpy + Isend loop; target <= 3x",
     mpi_rank0_cpu),
    ("Memory against recorded events", "peak RSS of simulator runs (async_sgd, d = 10, n = 100) with 10x more events; "
     "target: within 100 MB", rss_against_events),
    ("zero_last noise against additive noise", "the papers' zero_last noise (one Binomial factor per gradient) against "
     "additive normal noise, CPU seconds of whole runs (set-up included), alternated, medians of 3, now and at the "
     "commit before zero_last took the simulator's bulk path (issue 29); async_sgd: 1M events, p = 0.01; rennala_sgd: "
     "jobs/rennala_quadratic.toml (d = 1000, S = 10, p = 0.1) with n = 10,000 for 1000 virtual s; target: "
     "async_sgd's zero_last / additive <= 1.3", noise_cost),
    ("Logistic regression on the bulk path", "freya-fig2's problem (10-class logistic regression, 784 features, "
     "d = 7840; synthetic rows, no download), tau_i = sqrt(i), n = 100; CPU seconds of whole runs (set-up included, "
     "f*'s solve apart: the f* cache), now and at the commit before its stochastic gradients took the simulator's "
     "bulk path (issue 26), alternated, medians of 3", logistic_cost),
    ("Malenia and Ringmaster per event", "ringmaster_asgd and malenia_sgd against async_sgd on the quadratic, d = 100, "
     "tau_i = sqrt(i), n = 10,000, 500,000 events; CPU per event of whole runs (set-up included), now and at b887210 "
     "(issue 29 item 4), alternated, medians of 3", method_cost),
    ("Malenia reproduction at the paper scale", "asyncopt_mpi/reproduce/malenia.py's runs (n = 10,000, 3-class "
     "logistic regression on by_label shards, tau_i = sqrt(i), snapshots every 200 virtual s, the middle of each "
     "grid) to 2000 of their 20,000 virtual s: CPU seconds of the whole `asyncopt run` process (f* solved, "
     "evaluation included), now and at b887210, whose worker-mean objective looped over the 10,000 shards",
     malenia_paper_cost),
    ("Rank 0 CPU per MPI result: rennala_sgd", "d = 1000, rennala_sgd with S = 4, workers as fast as they can; "
     "server-thread CPU spent handling results per result (idle polling excluded) against the bare Testsome loop, "
     "now and at b887210 (on_result for every result), alternated, medians of 5 (issue 29 item 5); target <= 3x at "
     "4 workers", rennala_rank0_cpu),
]
