"""Rank 0 CPU per result: asyncopt's MPI server against a bare Testsome loop doing the same exchange.

Both run under `mpiexec -n N+1` with N workers that compute the quadratic's stochastic
gradient at the point they were sent, as fast as they can. The figure is the server
thread's CPU time spent handling results (from a Testsome that returned until the
results are handled), divided by the results handled; polling while nothing has arrived
is not counted, in either loop.

- bare: one persistent receive per worker into a preallocated buffer, Testsome over them;
  per result: x <- x - lr g (axpy), re-arm the receive, copy x into the worker's send
  buffer and Isend it.
- asyncopt: `asyncopt run --method METHOD` (async_sgd by default; rennala_sgd with S = RENNALA_BATCH)
  with its server's handler of what one Testsome returned timed.

    mpiexec -n 5 python benchmarks/mpi_overhead.py bare 1000 20000
    mpiexec -n 5 python benchmarks/mpi_overhead.py asyncopt 1000 20000 OUT.h5 [METHOD]
Rank 0 prints the microseconds per result.

    python benchmarks/mpi_overhead.py compare METHOD [--workers 1,4] [--results N] [--repeats R] [--code DIR]
runs both loops alternated (and with --code, asyncopt's package in DIR, e.g. a `git worktree` of an
older commit, on PYTHONPATH) and prints a Markdown table of the medians side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable
STOP = 99
RENNALA_BATCH = 4  # rennala_sgd's S in these runs: one step per 4 fresh gradients
BEFORE_RENNALA_RULE = "b887210"  # the last commit whose MPI server called rennala_sgd's on_result per result


def bare(dim: int, results: int) -> None:
    from mpi4py import MPI

    from asyncopt_mpi.problems.quadratic import QuadraticProblem

    comm = MPI.COMM_WORLD
    n = comm.size - 1
    problem = QuadraticProblem(dim, noise=0.01)
    if comm.rank == 0:
        x = problem.x0()
        buffers = [np.empty(dim) for _ in range(n)]
        requests = [comm.Recv_init(buffers[w], source=w + 1, tag=1) for w in range(n)]
        out = [x.copy() for _ in range(n)]
        sends = [comm.Isend(out[w], dest=w + 1, tag=2) for w in range(n)]
        for request in requests:
            request.Start()
        handled, spent = 0, 0.0
        while handled < results:
            ready = MPI.Request.Testsome(requests)
            if not ready:
                continue
            started = time.thread_time()
            for w in ready:
                x -= 1e-4 * buffers[w]
                requests[w].Start()
                sends[w].Wait()
                out[w][:] = x
                sends[w] = comm.Isend(out[w], dest=w + 1, tag=2)
            spent += time.thread_time() - started
            handled += len(ready)
        print(f"{spent / handled * 1e6:.2f}", flush=True)
        # Every armed receive gets the answer to the last point sent; then the workers stop.
        for w in range(n):
            sends[w].Wait()
            requests[w].Wait()
            requests[w].Free()
            comm.Send(np.zeros(1), dest=w + 1, tag=STOP)
    else:
        rng = np.random.default_rng(comm.rank)
        x = np.empty(dim)
        status = MPI.Status()
        while True:
            comm.Probe(source=0, status=status)
            if status.Get_tag() == STOP:
                comm.Recv(np.zeros(1), source=0, tag=STOP)
                break
            comm.Recv(x, source=0, tag=2)
            comm.Send(problem.stochastic_grad(x, rng), dest=0, tag=1)
    comm.Barrier()


def asyncopt(dim: int, results: int, path: str, method: str = "async_sgd") -> None:
    from mpi4py import MPI

    from asyncopt_mpi.cli import cli
    from asyncopt_mpi.runtime.mpi import loops as mpi

    spent = [0.0, 0]
    handle = mpi.MpiServer._on_arrivals

    def timed(self, ready: list[int]) -> None:
        started = time.thread_time()
        handle(self, ready)
        spent[0] += time.thread_time() - started
        spent[1] += len(ready)

    mpi.MpiServer._on_arrivals = timed
    args = ["run", "--quiet", "--method", method, "--output", path]
    settings = [f"problem.dim={dim}", "problem.noise=0.01", "method.lr=1e-4", "workers.compute=fixed",
                "workers.compute_scale=0", f"stop.gradients={results}", "output.snapshot_every=1e9"]
    if method == "rennala_sgd":
        settings.append(f"method.batch={RENNALA_BATCH}")
    for item in settings:
        args += ["--set", item]
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit:
        pass
    if MPI.COMM_WORLD.rank == 0:
        print(f"{spent[0] / max(spent[1], 1) * 1e6:.2f}", flush=True)


def _mpiexec() -> str:
    local = os.path.join(os.path.dirname(PYTHON), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


def rank0_us(mode: str, workers: int, results: int, path: str = "", method: str = "async_sgd",
             code: str | None = None) -> float:
    """One run of this script under mpiexec (`code`: a directory whose asyncopt_mpi is imported instead)."""
    command = [_mpiexec(), "-n", str(workers + 1), PYTHON, os.path.join(HERE, "mpi_overhead.py"), mode, "1000",
               str(results)] + ([path, method] if mode == "asyncopt" else [])
    env = dict(os.environ, PYTHONPATH=code) if code else None
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def side_by_side(method: str, counts: list[int], results: int, repeats: int, directory: str,
                 code: str | None = None, code_name: str = "") -> list[str]:
    """Markdown rows of rank 0 CPU per result: the bare loop, `method` now and (with `code`) in that package,
    runs alternated, medians of `repeats`."""
    then = f" | {method} at {code_name} (us/result) | ratio at {code_name}" if code else ""
    lines = [f"| workers | bare Testsome loop (us/result) | {method} now (us/result) | ratio{then} |",
             "|---|---|---|---|" + ("---|---|" if code else "")]
    for workers in counts:
        times: dict[str, list[float]] = {"bare": [], "now": [], "then": []}
        for repeat in range(repeats):
            path = os.path.join(directory, f"rank0-{method}-{workers}-{repeat}.h5")
            times["bare"].append(rank0_us("bare", workers, results))
            times["now"].append(rank0_us("asyncopt", workers, results, path, method))
            os.unlink(path)
            if code:
                times["then"].append(rank0_us("asyncopt", workers, results, path, method, code))
                os.unlink(path)
        bare_us, now_us = float(np.median(times["bare"])), float(np.median(times["now"]))
        row = f"| {workers} | {bare_us:.1f} | {now_us:.1f} | {now_us / bare_us:.2f}x"
        if code:
            then_us = float(np.median(times["then"]))
            row += f" | {then_us:.1f} | {then_us / bare_us:.2f}x"
        lines.append(row + " |")
    return lines


def rennala_rank0_cpu(directory: str, quick: bool) -> list[str]:
    """A `make bench` section: rennala_sgd's rank 0 CPU per result against the bare loop, now and at
    BEFORE_RENNALA_RULE (unpacked from the history when it is there), 1 and 4 workers."""
    from sim_speed import unpack_commit

    counts, results, repeats = ([1], 1000, 1) if quick else ([1, 4], 100_000, 5)
    code = None if quick else unpack_commit(BEFORE_RENNALA_RULE, directory)
    return side_by_side("rennala_sgd", counts, results, repeats, directory, code, BEFORE_RENNALA_RULE)


def compare(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mpi_overhead.py compare")
    parser.add_argument("method")
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts")
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--code", help="a directory holding an older asyncopt_mpi package, run side by side")
    options = parser.parse_args(argv)
    counts = [int(item) for item in options.workers.split(",")]
    with tempfile.TemporaryDirectory() as directory:
        lines = side_by_side(options.method, counts, options.results, options.repeats, directory, options.code,
                             os.path.basename(os.path.normpath(options.code)) if options.code else "")
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        compare(sys.argv[2:])
    else:
        mode, dim, results = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        if mode == "bare":
            bare(dim, results)
        else:
            asyncopt(dim, results, sys.argv[4], *sys.argv[5:6])
