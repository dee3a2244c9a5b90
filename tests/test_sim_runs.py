"""Runs of results (a method's StepAndRestart rule applied many results at a time) change no number.

Every file the simulator writes with runs must equal, dataset by dataset and bit for bit, the
file of the per-event path (runs turned off), across the stop rules, snapshots, noise, batches,
communication times and resumes that cut or shape a run.
"""

from __future__ import annotations

import contextlib
import io

import h5py
import numpy as np
import pytest

from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime import sim_runs
from asyncopt_mpi.runtime.session import prepare_resume, run_sim

BASE = ["problem.dim=30", "problem.noise=0.01", "workers.n=60", "workers.compute=sqrt", "method.lr=0.02"]
CASES = {
    "gradients+snapshots": ["stop.gradients=6000", "output.snapshot_every=0.7"],
    "iterations": ["stop.iterations=4321", "output.snapshot_every=3"],
    "time": ["stop.time=40", "output.snapshot_every=1"],
    "target": ["stop.target=1e-3", "stop.time=500", "output.snapshot_every=0.25"],
    "no noise, batch 3": ["problem.noise=0", "method.batch=3", "stop.gradients=9000", "output.snapshot_every=2"],
    "communication": ["workers.comm=sqrt", "workers.comm_scale=1e-3", "stop.gradients=5000", "output.snapshot_every=2"],
    "ties": ["workers.compute=fixed", "workers.compute_scale=0.5", "stop.gradients=5000", "output.snapshot_every=2"],
}


def _datasets(path) -> dict[str, np.ndarray]:
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def _run(path, overrides: list[str], resume: bool = False) -> None:
    if resume:
        config, point = prepare_resume(str(path), overrides, "sim")
    else:
        config, point = load_config(None, overrides + [f"output.path={path}"], method="async_sgd", backend="sim"), None
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_sim(config, point) == 0


def _same_files(first, second) -> int:
    a, b = _datasets(first), _datasets(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), f"{name} differs"
    return len(a["events/time"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_runs_give_the_per_event_files_bit_for_bit(tmp_path, monkeypatch, case):
    overrides = BASE + CASES[case]
    _run(tmp_path / "runs.h5", overrides)
    monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
    _run(tmp_path / "events.h5", overrides)
    assert _same_files(tmp_path / "runs.h5", tmp_path / "events.h5") >= 1000


def test_runs_are_taken_and_a_rule_less_method_keeps_the_per_event_path(monkeypatch, tmp_path):
    taken = []
    original = sim_runs.StepAndRestartRuns._apply

    def counting(self, times, workers, entries):
        taken.append(len(times))
        return original(self, times, workers, entries)

    monkeypatch.setattr(sim_runs.StepAndRestartRuns, "_apply", counting)
    _run(tmp_path / "pure.h5", BASE + ["stop.gradients=3000"])
    assert sum(taken) > 2500 and max(taken) > sim_runs.MIN_RUN  # most results came in runs
    taken.clear()
    _run(tmp_path / "random.h5", BASE + ["stop.gradients=3000", "method.assign=random"])
    assert not taken  # random assignment is not one rule for every result


def test_a_resumed_run_with_runs_equals_one_without(tmp_path, monkeypatch):
    overrides = BASE + ["stop.time=20", "output.snapshot_every=1"]
    for name, enabled in (("runs", True), ("events", False)):
        monkeypatch.setattr(sim_runs, "RUNS_ENABLED", enabled)
        _run(tmp_path / f"{name}.h5", overrides)
        _run(tmp_path / f"{name}.h5", ["stop.time=45"], resume=True)
    _same_files(tmp_path / "runs.h5", tmp_path / "events.h5")
