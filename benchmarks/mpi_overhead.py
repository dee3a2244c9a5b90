"""Rank 0 CPU per result: asyncopt's MPI server against a bare Testsome loop doing the same exchange.

Both run under `mpiexec -n N+1` with N workers that compute the quadratic's stochastic
gradient at the point they were sent, as fast as they can. The figure is the server
thread's CPU time spent handling results (from a Testsome that returned until the
results are handled), divided by the results handled; polling while nothing has arrived
is not counted, in either loop.

- bare: one persistent receive per worker into a preallocated buffer, Testsome over them;
  per result: x <- x - lr g (axpy), re-arm the receive, copy x into the worker's send
  buffer and Isend it.
- asyncopt: `asyncopt run --method async_sgd` with its server's handler of what one Testsome returned timed.

    mpiexec -n 5 python benchmarks/mpi_overhead.py bare 1000 20000
    mpiexec -n 5 python benchmarks/mpi_overhead.py asyncopt 1000 20000 OUT.h5
Rank 0 prints the microseconds per result.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from mpi4py import MPI

from asyncopt_mpi.problems.quadratic import QuadraticProblem

STOP = 99


def bare(dim: int, results: int) -> None:
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


def asyncopt(dim: int, results: int, path: str) -> None:
    from asyncopt_mpi.cli import cli
    from asyncopt_mpi.runtime import mpi

    spent = [0.0, 0]
    handle = mpi.MpiServer._on_arrivals

    def timed(self, ready: list[int]) -> None:
        started = time.thread_time()
        handle(self, ready)
        spent[0] += time.thread_time() - started
        spent[1] += len(ready)

    mpi.MpiServer._on_arrivals = timed
    args = ["run", "--quiet", "--method", "async_sgd", "--output", path]
    for item in (f"problem.dim={dim}", "problem.noise=0.01", "method.lr=1e-4", "workers.compute=fixed",
                 "workers.compute_scale=0", f"stop.gradients={results}", "output.snapshot_every=1e9"):
        args += ["--set", item]
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit:
        pass
    if MPI.COMM_WORLD.rank == 0:
        print(f"{spent[0] / max(spent[1], 1) * 1e6:.2f}", flush=True)


if __name__ == "__main__":
    mode, dim, results = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode == "bare":
        bare(dim, results)
    else:
        asyncopt(dim, results, sys.argv[4])
