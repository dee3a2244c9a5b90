"""Server efficiency: gradients received / (duration * sum_i 1/tau_i) with tau_i = scale*sqrt(i) over real MPI."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def efficiency(n_workers: int, method: str, scale: float, seconds: float, dim: int, directory: str) -> float:
    path = os.path.join(directory, f"eff-{method}-{n_workers}.h5")
    command = [
        "mpiexec", "-n", str(n_workers + 1), sys.executable, "-m", "asyncopt_mpi", "run",
        "--method", method, "--output", path,
        "--set", "problem.name=quadratic", "--set", f"problem.dim={dim}", "--set", "problem.noise=0.01",
        "--set", "method.lr=0.1", "--set", "workers.compute=sqrt", "--set", f"workers.compute_scale={scale}",
        "--set", f"stop.time={seconds}", "--set", "output.snapshot_every=1.0",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=seconds * 4 + 60)
    with h5py.File(path, "r") as handle:
        events = handle["events/time"][:]
    rate = np.sum(1.0 / (scale * np.sqrt(np.arange(1, n_workers + 1))))
    return len(events) / (seconds * rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="4,8,16")
    parser.add_argument("--method", default="async_sgd")
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for n in map(int, args.workers.split(",")):
            values = [efficiency(n, args.method, args.scale, args.seconds, args.dim, directory) for _ in range(args.repeats)]
            print(f"{args.method} n={n}: efficiency median {np.median(values):.4f} (runs: {', '.join(f'{v:.4f}' for v in values)})", flush=True)


if __name__ == "__main__":
    main()
