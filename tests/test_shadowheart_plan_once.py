"""Shadowheart with known worker times plans once per run (t* is a fixed function of those times), and writes the
file of a run that remade the plan every method.replan_every rounds."""

from __future__ import annotations

import pytest

from asyncopt_mpi.methods import compressed
from same_files import assert_same_files, datasets, simulate

SMALL = ["problem.dim=60", "workers.n=6", "workers.compute=sqrt", "workers.comm=sqrt", "workers.comm_scale=0.01",
         "stop.time=40", "output.snapshot_every=10", "method.lr=0.5", "method.replan_every=2",
         "problem.noise_type=zero_last", "problem.noise=0.1"]


@pytest.fixture
def calls(monkeypatch) -> list:
    """The arguments of every equilibrium_time (t*) call Shadowheart makes during the test."""
    original = compressed.equilibrium_time
    made: list = []

    def counting(*args):
        made.append(args)
        return original(*args)

    monkeypatch.setattr(compressed, "equilibrium_time", counting)
    return made


@pytest.mark.timeout(300)
def test_known_times_plan_once_and_write_the_file_of_replanning(tmp_path, monkeypatch, calls):
    assert simulate(tmp_path / "once.h5", "shadowheart_sgd", SMALL) == 0
    rounds = int(datasets(tmp_path / "once.h5")["metrics/iteration"][-1])
    assert rounds > 10 and len(calls) == 1

    plan = compressed.ShadowheartSGD.plan

    def replanning(self, server):  # what plan did before: a new t* every replan_every rounds
        if self.round % self.options["replan_every"] == 0:
            self.plan_arrays = None
        return plan(self, server)

    monkeypatch.setattr(compressed.ShadowheartSGD, "plan", replanning)
    calls.clear()
    assert simulate(tmp_path / "replanned.h5", "shadowheart_sgd", SMALL) == 0
    assert len(calls) >= rounds // 2
    assert assert_same_files(tmp_path / "once.h5", tmp_path / "replanned.h5") > 100


@pytest.mark.timeout(300)
def test_measured_times_are_still_replanned(tmp_path, calls):
    """With method.estimate_times the times change after every round: t* is remade every replan_every rounds."""
    assert simulate(tmp_path / "measured.h5", "shadowheart_sgd", SMALL + ["method.estimate_times=true"]) == 0
    rounds = int(datasets(tmp_path / "measured.h5")["metrics/iteration"][-1])
    assert rounds > 10 and len(calls) >= (rounds - 3) // 2
