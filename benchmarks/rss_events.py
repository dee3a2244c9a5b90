"""Peak resident memory of a simulator run against the number of recorded events (flat is the goal).

Each run is a fresh process: async_sgd on the quadratic (small d, so the run is quick),
recording on; it prints the events recorded and the process's peak RSS.

    python benchmarks/rss_events.py 1000000 10000000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import h5py

SCRIPT = """
import contextlib, io, json, resource, sys
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import run_sim
events, path = int(sys.argv[1]), sys.argv[2]
config = load_config(None, ["problem.dim=10", "problem.noise=0.01", "workers.n=100", "workers.compute=sqrt",
    f"stop.gradients={events}", "method.lr=1e-3", "output.snapshot_every=1e9", f"output.path={path}"],
    method="async_sgd", backend="sim")
with contextlib.redirect_stdout(io.StringIO()):
    run_sim(config)
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def peak_rss(events: int, directory: str) -> tuple[int, int]:
    """(events recorded, peak RSS in bytes) of one run."""
    path = os.path.join(directory, f"rss-{events}.h5")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(events), path], capture_output=True, text=True,
                          timeout=7200)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    with h5py.File(path, "r") as handle:
        recorded = len(handle["events/time"])
    return recorded, json.loads(done.stdout.strip().splitlines()[-1])["peak"]


def main() -> None:
    counts = [int(value) for value in sys.argv[1:]] or [1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory() as directory:
        for events in counts:
            recorded, peak = peak_rss(events, directory)
            print(f"{recorded:,} events: peak RSS {peak / 2**20:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
