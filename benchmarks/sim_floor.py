"""The floor the simulator is measured against: a minimal heapq simulator of asynchronous SGD, written plainly.

This is what a competent researcher writes for one experiment: no configuration, no
checks, one method. Worker i (1-based) needs tau_i = sqrt(i) seconds per gradient.
Per event it does exactly this work:

1. `heapq.heappop` the earliest (finish time, worker);
2. one stochastic gradient of the quadratic (QuadraticProblem.stochastic_grad: A x - b
   plus N(0, noise^2 I), drawn from the worker's own random stream) at the point the worker
   started from;
3. one axpy, x <- x - lr g, into a new array (the workers that started from the old x keep it);
4. the worker starts again at the new point: `heapq.heappush` (now + tau_i, worker);
5. an event row (time, worker, version, delay) and a trace row (time, iteration) appended to lists.

At the end the rows are written to an HDF5 file as columns and the final point is returned.
Run: `python benchmarks/sim_floor.py N_WORKERS DIM EVENTS OUT.h5` prints CPU seconds and events/s.
"""

from __future__ import annotations

import heapq
import json
import math
import sys
import time

import h5py
import numpy as np

from asyncopt_mpi.problems.quadratic import QuadraticProblem


def simulate(n_workers: int, dim: int, events: int, path: str, lr: float = 1e-4, noise: float = 0.01,
             seed: int = 0) -> np.ndarray:
    problem = QuadraticProblem(dim, noise=noise)
    rngs = [np.random.default_rng((seed, worker)) for worker in range(n_workers)]
    taus = [math.sqrt(worker + 1) for worker in range(n_workers)]
    x = problem.x0()
    version = 0
    start_point = [x] * n_workers
    start_version = [0] * n_workers
    heap = [(taus[worker], worker) for worker in range(n_workers)]
    heapq.heapify(heap)
    event_rows, trace_rows = [], []
    for _ in range(events):
        now, worker = heapq.heappop(heap)
        g = problem.stochastic_grad(start_point[worker], rngs[worker])
        x = x - lr * g
        version += 1
        event_rows.append((now, worker, start_version[worker], version - 1 - start_version[worker]))
        trace_rows.append((now, version))
        start_point[worker], start_version[worker] = x, version
        heapq.heappush(heap, (now + taus[worker], worker))
    with h5py.File(path, "w") as handle:
        events_table = np.array(event_rows, dtype=[("time", "f8"), ("worker", "i4"), ("version", "i8"), ("delay", "i8")])
        trace_table = np.array(trace_rows, dtype=[("time", "f8"), ("iteration", "i8")])
        for name in events_table.dtype.names:
            handle[f"events/{name}"] = events_table[name]
        for name in trace_table.dtype.names:
            handle[f"trace/{name}"] = trace_table[name]
        handle["x"] = x
    return x


def main() -> None:
    n_workers, dim, events, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    started = time.process_time()
    simulate(n_workers, dim, events, path)
    seconds = time.process_time() - started
    print(json.dumps({"seconds": seconds, "events_per_s": events / seconds}))


if __name__ == "__main__":
    main()
