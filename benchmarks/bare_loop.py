"""The reference for the per-message overhead: a bare mpi4py loop doing the same work as a parameter server.

Rank 1 computes the quadratic problem's stochastic gradient at the point it holds and sends
it; rank 0 receives it into a buffer, applies x <- x - lr g in place and sends x back; repeat.
Run with `mpiexec -n 2 python benchmarks/bare_loop.py DIM MESSAGES`; rank 0 prints seconds per message.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from mpi4py import MPI

from asyncopt_mpi.problems.quadratic import QuadraticProblem


def main() -> None:
    dim, messages = int(sys.argv[1]), int(sys.argv[2])
    comm = MPI.COMM_WORLD
    problem = QuadraticProblem(dim, noise=0.01)
    x = problem.x0()
    buffer = np.empty(dim)
    if comm.rank == 0:
        comm.Barrier()
        started = time.perf_counter()
        for _ in range(messages):
            comm.Recv(buffer, source=1)
            x -= 1e-3 * buffer
            comm.Send(x, dest=1)
        print(f"{(time.perf_counter() - started) / messages:.9f}")
    else:
        rng = np.random.default_rng(0)
        comm.Barrier()
        for _ in range(messages):
            comm.Send(problem.stochastic_grad(x, rng), dest=0)
            comm.Recv(x, source=0)


if __name__ == "__main__":
    main()
