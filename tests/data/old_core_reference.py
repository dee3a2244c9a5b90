"""Writes tests/data/old_core_reference.npz: fixed-seed simulator runs of the core before issue 17.

Generated from commit 9bbab50 (the simulator before the lean event core) with
    git worktree add /tmp/old 9bbab50
    PYTHONPATH=/tmp/old python tests/data/old_core_reference.py tests/data/old_core_reference.npz
tests/test_sim_reference.py runs the same settings on the current core and compares.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

import h5py
import numpy as np

# name -> (method, --set overrides). Every random draw of these runs is unchanged by the new core
# (ComputeBatch's one integers(m, size=(n, block)) call gives the same numbers as n calls of
# size block: PCG64 keeps the unused half of a 64-bit output for the next 32-bit draw).
EXACT = {
    "async_sgd": ("async_sgd", ["problem.dim=30", "problem.noise=0.01", "workers.n=40", "workers.compute=exponential",
                                "stop.gradients=4000", "method.lr=0.01", "output.snapshot_every=0.5"]),
    "rennala_sgd": ("rennala_sgd", ["problem.dim=30", "problem.noise=0.01", "workers.n=40", "workers.compute=sqrt",
                                    "method.batch=10", "stop.gradients=4000", "method.lr=0.3",
                                    "output.snapshot_every=2"]),
    "minibatch_sgd": ("minibatch_sgd", ["problem.dim=30", "problem.noise=0.01", "workers.n=12",
                                        "workers.compute=uniform", "method.batch=2", "stop.gradients=3000",
                                        "method.lr=0.3", "output.snapshot_every=2"]),
    "freya_page": ("freya_page", ["problem.dim=20", "problem.samples=200", "problem.lam=0.5", "workers.n=8",
                                  "workers.compute=sqrt", "stop.time=60", "method.lr=0.5", "output.snapshot_every=5"]),
}
COLUMNS = ("trace/time", "trace/iteration", "trace/grads_used", "trace/bytes_down", "events/time", "events/worker",
           "events/point_version", "events/accepted", "snapshots/x", "metrics/loss")


def run(method: str, overrides: list[str], path: str) -> dict[str, np.ndarray]:
    try:
        from asyncopt_mpi.validate import load_config
    except ImportError:  # commit 9bbab50, which wrote the reference, loads configs in config.py
        from asyncopt_mpi.config import load_config
    from asyncopt_mpi.runtime.session import run_sim

    config = load_config(None, overrides + [f"output.path={path}"], method=method, backend="sim")
    with contextlib.redirect_stdout(io.StringIO()):
        run_sim(config)
    with h5py.File(path, "r") as handle:
        return {name: handle[name][:] for name in COLUMNS}


def main() -> None:
    arrays = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, (method, overrides) in EXACT.items():
            for column, values in run(method, overrides, os.path.join(directory, f"{name}.h5")).items():
                arrays[f"{name}:{column}"] = values
    np.savez_compressed(sys.argv[1], **arrays)


if __name__ == "__main__":
    main()
