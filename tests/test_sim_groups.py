"""Job groups (the jobs of one assign_many call held as one heap entry) change no number.

Every file must equal, dataset by dataset and bit for bit, the file made with one heap entry
per job (groups turned off): with fixed and random job times, cancelled collections, workers
that die (jobs that never end) or crash, slow-downs, and a resumed run.
"""

from __future__ import annotations

import contextlib
import io

import h5py
import numpy as np
import pytest

from asyncopt_mpi.config import load_config
from asyncopt_mpi.runtime import sim
from asyncopt_mpi.runtime.session import prepare_resume, run_sim

FINITE_SUM = ["problem.dim=20", "problem.samples=300", "problem.lam=0.5", "workers.n=24", "output.snapshot_every=3"]
CASES = {
    "freya_page, fixed times": ("freya_page", FINITE_SUM + ["workers.compute=sqrt", "stop.time=150", "method.lr=0.5"]),
    "freya_page, random times": ("freya_page", FINITE_SUM + ["workers.compute=exponential", "stop.time=150",
                                                            "method.lr=0.5"]),
    "freya_page, dead and slowed workers": ("freya_page", FINITE_SUM + [
        "workers.compute=sqrt", "stop.time=150", "method.lr=0.5", f"workers.dead_after={[1e9, 20, 1e9, 35] + [1e9] * 20}",
        "workers.slowdown=[[2, 10, 60, 4.0]]"]),
    "freya_sgd": ("freya_sgd", FINITE_SUM + ["workers.compute=sqrt", "stop.time=120", "method.lr=0.2"]),
    "soviet_page": ("soviet_page", FINITE_SUM + ["workers.compute=uniform", "stop.time=200", "method.lr=0.5"]),
}


def _datasets(path) -> dict[str, np.ndarray]:
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def _run(path, method: str, overrides: list[str], resume: bool = False) -> None:
    if resume:
        config, point = prepare_resume(str(path), overrides, "sim")
    else:
        config, point = load_config(None, overrides + [f"output.path={path}"], method=method, backend="sim"), None
    with contextlib.redirect_stdout(io.StringIO()):
        run_sim(config, point)


def _same_files(first, second) -> int:
    a, b = _datasets(first), _datasets(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), f"{name} differs"
    return len(a["events/time"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_groups_give_the_files_of_one_entry_per_job(tmp_path, monkeypatch, case):
    method, overrides = CASES[case]
    _run(tmp_path / "groups.h5", method, overrides)
    monkeypatch.setattr(sim, "GROUPS_ENABLED", False)
    _run(tmp_path / "entries.h5", method, overrides)
    assert _same_files(tmp_path / "groups.h5", tmp_path / "entries.h5") >= 300


def test_groups_are_made_and_cancelled_whole(tmp_path, monkeypatch):
    made, cancelled = [], []
    original_init, original_cancel = sim.JobGroup.__init__, sim.SimServer.cancel_many

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(len(self))

    def cancel_many(self, workers):
        cancelled.append(len(workers))
        return original_cancel(self, workers)

    monkeypatch.setattr(sim.JobGroup, "__init__", init)
    monkeypatch.setattr(sim.SimServer, "cancel_many", cancel_many)
    _run(tmp_path / "run.h5", *CASES["freya_page, fixed times"])
    assert len(made) >= 10 and max(made) == 24  # every collection starts all 24 workers in one group
    assert cancelled and max(cancelled) > 12  # a finished collection cancels its unfinished jobs in one call


def test_a_resumed_run_with_groups_equals_one_without(tmp_path, monkeypatch):
    method, overrides = CASES["freya_page, random times"]
    overrides = [item for item in overrides if not item.startswith("stop.")] + ["stop.time=60"]
    for name, enabled in (("groups", True), ("entries", False)):
        monkeypatch.setattr(sim, "GROUPS_ENABLED", enabled)
        _run(tmp_path / f"{name}.h5", method, overrides)
        _run(tmp_path / f"{name}.h5", method, ["stop.time=140"], resume=True)
    _same_files(tmp_path / "groups.h5", tmp_path / "entries.h5")
