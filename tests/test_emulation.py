"""The end-of-run warning when MPI workers delivered under 90% of the gradients the timing model asks for."""

from __future__ import annotations

import pytest

from asyncopt_mpi.runtime.mpi.emulation import SHORTFALL_SHARE, delivered_shares, shortfall_warning

from conftest import read, run_mpi

WARNING = "delivered under 90% of the gradients the timing model asks for"


def test_the_warning_names_the_slow_workers_and_their_overrun():
    text = shortfall_warning([1.0, 1.0, 1.0], [0.0, 0.5, 0.05], lambda w: f"worker {w} (rank {w + 1})")
    assert WARNING in text and "worker 1 (rank 2): 67%, overrun 0.5 s" in text
    assert "worker 0 " not in text and "worker 2 " not in text  # 100% and 95% delivered
    assert shortfall_warning([1.0, 2.0], [0.1, 0.0], str) is None
    assert delivered_shares([0.0], [0.0]) == [1.0]


def run(tmp_path, name: str, dim: int, scale: float, seconds: float):
    path = tmp_path / f"{name}.h5"
    args = ["run", "--output", str(path), "--set", f"problem.dim={dim}", "--set", "workers.compute=fixed",
            "--set", "workers.compute_profile=equal", "--set", f"workers.compute_scale={scale}",
            "--set", "method.lr=0.1", "--set", f"stop.time={seconds}", "--set", "output.snapshot_every=0.5"]
    done = run_mpi(2, args, timeout=180)  # one worker: what it delivers is what the warning is about
    assert done.returncode == 0, done.stderr
    found = read(path, "workers/busy_time", "workers/overrun_time")
    shares = delivered_shares(found["workers/busy_time"].tolist(), found["workers/overrun_time"].tolist())
    # The warning agrees with what the file recorded, whatever the machine's load.
    assert (WARNING in done.stderr) == (min(shares) < SHORTFALL_SHARE), (shares, done.stderr)
    return done, shares


@pytest.mark.mpi
def test_cpu_bound_workers_are_warned_about_and_sleeping_ones_are_not(tmp_path):
    # A gradient of a 300,000-dimensional quadratic takes about a millisecond of real compute,
    # five times the 0.2 ms the timing model gives it: the workers cannot keep up.
    done, shares = run(tmp_path, "slowed", dim=300_000, scale=0.0002, seconds=1)  # its worker burns a core throughout
    assert WARNING in done.stderr and max(shares) < SHORTFALL_SHARE
    assert "worker 0 (rank 1 on " in done.stderr and "overrun" in done.stderr
    assert done.stderr.count(WARNING) == 1  # said once, by rank 0
    # 20 ms per gradient of a 20-dimensional quadratic: the workers sleep most of the time.
    done, shares = run(tmp_path, "modelled", dim=20, scale=0.02, seconds=1.5)  # a hiccup weighs less in a longer run
    assert WARNING not in done.stderr and min(shares) >= SHORTFALL_SHARE
