"""Job groups (the jobs of one assign_many call held as one heap entry) change no number.

Every file must equal, dataset by dataset and bit for bit, the file made with one heap entry
per job (groups turned off): with fixed and random job times, cancelled collections, workers
that die (jobs that never end) or crash, slow-downs, and a resumed run.
"""

from __future__ import annotations

import pytest

from asyncopt_mpi.runtime.sim import server as sim
from same_files import assert_same_files, simulate

FINITE_SUM = ["problem.dim=20", "problem.samples=300", "problem.lam=0.5", "workers.n=24", "output.snapshot_every=3"]
CASES = {
    "freya_page, fixed times": ("freya_page", FINITE_SUM + ["workers.compute=sqrt", "stop.time=12", "method.lr=0.5"]),
    "freya_page, random times": ("freya_page", FINITE_SUM + ["workers.compute=exponential", "stop.time=12",
                                                            "method.lr=0.5"]),
    "freya_page, dead and slowed workers": ("freya_page", FINITE_SUM + [
        "workers.compute=sqrt", "stop.time=12", "method.lr=0.5", f"workers.dead_after={[1e9, 4, 1e9, 7] + [1e9] * 20}",
        "workers.slowdown=[[2, 2, 9, 4.0]]"]),
    "freya_sgd": ("freya_sgd", FINITE_SUM + ["workers.compute=sqrt", "stop.time=10", "method.lr=0.2"]),
    "soviet_page": ("soviet_page", FINITE_SUM + ["workers.compute=uniform", "stop.time=15", "method.lr=0.5"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_groups_give_the_files_of_one_entry_per_job(tmp_path, monkeypatch, case):
    method, overrides = CASES[case]
    assert simulate(tmp_path / "groups.h5", method, overrides) == 0
    monkeypatch.setattr(sim, "GROUPS_ENABLED", False)
    assert simulate(tmp_path / "entries.h5", method, overrides) == 0
    assert assert_same_files(tmp_path / "groups.h5", tmp_path / "entries.h5") >= 300


@pytest.mark.slow
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
    assert simulate(tmp_path / "run.h5", *CASES["freya_page, fixed times"]) == 0
    assert len(made) >= 10 and max(made) == 24  # every collection starts all 24 workers in one group
    assert cancelled and max(cancelled) > 12  # a finished collection cancels its unfinished jobs in one call


@pytest.mark.slow
def test_a_resumed_run_with_groups_equals_one_without(tmp_path, monkeypatch):
    method, overrides = CASES["freya_page, random times"]
    overrides = [item for item in overrides if not item.startswith("stop.")] + ["stop.time=5"]
    for name, enabled in (("groups", True), ("entries", False)):
        monkeypatch.setattr(sim, "GROUPS_ENABLED", enabled)
        assert simulate(tmp_path / f"{name}.h5", method, overrides) == 0
        assert simulate(tmp_path / f"{name}.h5", method, ["stop.time=12"], resume=True) == 0
    assert_same_files(tmp_path / "groups.h5", tmp_path / "entries.h5")
