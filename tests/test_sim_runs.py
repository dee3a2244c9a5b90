"""Runs of results (a method's StepAndRestart rule applied many results at a time) change no number.

Every file the simulator writes with runs must equal, dataset by dataset and bit for bit, the
file of the per-event path (runs turned off), across the stop rules, snapshots, noise, batches,
communication times and resumes that cut or shape a run: for async_sgd (a step per result)
and rennala_sgd (a batch rule: fresh results collected, a step per S of them).
"""

from __future__ import annotations

import random

import pytest

from asyncopt_mpi.runtime.sim import runs as sim_runs
from same_files import assert_same_files, simulate

BASE = ["problem.dim=30", "problem.noise=0.01", "workers.n=60", "workers.compute=sqrt", "method.lr=0.02"]
CASES = {
    "gradients+snapshots": ["stop.gradients=2000", "output.snapshot_every=0.7"],
    "iterations": ["stop.iterations=1500", "output.snapshot_every=3"],
    "time": ["stop.time=8", "output.snapshot_every=1"],
    "target": ["stop.target=1e-2", "stop.time=500", "output.snapshot_every=0.25"],
    "no noise, batch 3": ["problem.noise=0", "method.batch=3", "stop.gradients=3300", "output.snapshot_every=2"],
    "communication": ["workers.comm=sqrt", "workers.comm_scale=1e-3", "stop.gradients=2000", "output.snapshot_every=2"],
    "ties": ["workers.compute=fixed", "workers.compute_scale=0.5", "stop.gradients=2000", "output.snapshot_every=2"],
    "odd dimension, fast workers again and again": ["problem.dim=31", "workers.n=200", "stop.gradients=4000",
                                                     "output.snapshot_every=5"],
}


RENNALA_CASES = {
    "gradients+snapshots": ["method.batch=20", "stop.gradients=2000", "output.snapshot_every=0.7"],
    "iterations": ["method.batch=15", "stop.iterations=100", "output.snapshot_every=3"],
    "time": ["method.batch=25", "stop.time=8", "output.snapshot_every=1"],
    "target": ["method.batch=10", "method.lr=0.1", "stop.target=0.05", "stop.time=500", "output.snapshot_every=0.25"],
    "no noise": ["problem.noise=0", "method.batch=12", "stop.gradients=2000", "output.snapshot_every=2"],
    "batch beyond a block": ["method.batch=1500", "stop.gradients=4500", "output.snapshot_every=5"],
    "communication": ["method.batch=20", "workers.comm=sqrt", "workers.comm_scale=1e-3", "stop.gradients=2000"],
    "ties, points not cached": ["method.batch=20", "workers.compute=fixed", "workers.compute_scale=0.5",
                                "workers.cache_points=false", "stop.gradients=2000", "output.snapshot_every=2"],
}
ALL_CASES = [("async_sgd", case, CASES[case]) for case in sorted(CASES)] + \
    [("rennala_sgd", case, RENNALA_CASES[case]) for case in sorted(RENNALA_CASES)]


@pytest.mark.slow
@pytest.mark.parametrize("method, case, overrides", ALL_CASES, ids=[f"{m}: {c}" for m, c, _ in ALL_CASES])
def test_runs_give_the_per_event_files_bit_for_bit(tmp_path, monkeypatch, method, case, overrides):
    overrides = BASE + overrides
    assert simulate(tmp_path / "runs.h5", method, overrides) == 0
    monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
    assert simulate(tmp_path / "events.h5", method, overrides) == 0
    assert assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5") >= 1000


def test_runs_are_taken_and_a_rule_less_method_keeps_the_per_event_path(monkeypatch, tmp_path):
    taken = []
    original = sim_runs.StepAndRestartRuns._apply

    def counting(self, times, workers, *rest):
        taken.append(len(times))
        repeats.append(len(workers) - len(set(workers.tolist())))
        return original(self, times, workers, *rest)

    repeats = []
    monkeypatch.setattr(sim_runs.StepAndRestartRuns, "_apply", counting)
    assert simulate(tmp_path / "pure.h5", "async_sgd", BASE + ["stop.gradients=3000"]) == 0
    assert sum(taken) == 3000 and max(taken) > 10  # every result came in runs, most of them many at a time
    assert max(repeats) > 0  # runs span several of the shortest jobs: the fast workers end more than once
    taken.clear()
    assert simulate(tmp_path / "random.h5", "async_sgd", BASE + ["stop.gradients=3000", "method.assign=random"]) == 0
    assert not taken  # random assignment is not one rule for every result


def test_a_run_a_snapshot_ends_builds_its_events_only_up_to_the_snapshot(monkeypatch, tmp_path):
    # Two equal workers and a snapshot every second job: each run takes about 4 events, where its
    # window spans 256 jobs (it used to build and sort some 500 events to keep 4).
    built = []
    original = sim_runs.StepAndRestartRuns._count

    def counting(self, times):
        built.append(len(times))
        return original(self, times)

    monkeypatch.setattr(sim_runs.StepAndRestartRuns, "_count", counting)
    overrides = ["problem.dim=2", "problem.noise=0", "workers.n=2", "workers.compute=fixed",
                 "workers.compute_profile=equal", "workers.compute_scale=0.5", "stop.iterations=300",
                 "output.snapshot_every=1"]
    assert simulate(tmp_path / "runs.h5", "async_sgd", overrides) == 0
    assert len(built) > 50 and sum(built) < 10 * 300  # runs of a few events, each built a job past its end
    monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
    assert simulate(tmp_path / "events.h5", "async_sgd", overrides) == 0
    assert assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5") == 300


def test_every_rennala_result_goes_through_batch_runs(monkeypatch, tmp_path):
    from asyncopt_mpi.runtime.sim import batch_runs as sim_batch_runs

    taken = []
    original = sim_batch_runs.BatchRuns.take

    def counting(self):
        done = original(self)
        taken.append(done)
        return done

    monkeypatch.setattr(sim_batch_runs.BatchRuns, "take", counting)
    assert simulate(tmp_path / "rennala.h5", "rennala_sgd", BASE + ["method.batch=20", "stop.gradients=3000"]) == 0
    assert sum(taken) == 3000 and max(taken) > 20  # the batch lives in the runs: no result may bypass them


def _random_settings(seed: int) -> tuple[list[str], int]:
    """async_sgd settings drawn from `seed` (equal job times, odd dimensions, small noise banks
    that refill inside a run, ...), and the noise bank's size in bytes."""
    draw = random.Random(seed)
    n, dim = draw.choice([1, 2, 7, 20, 60, 150]), draw.choice([2, 3, 10, 31])
    overrides = [f"problem.dim={dim}", f"workers.n={n}", f"method.lr={draw.choice([0.01, 0.05])}",
                 f"problem.noise={draw.choice([0, 0.01, 0.1])}", f"method.batch={draw.choice([1, 2])}",
                 f"workers.seed={seed}", "workers.compute=fixed"]
    if draw.random() < 0.5:  # few distinct times: restarts often end together
        grid = draw.choice([0.01, 0.25])
        overrides.append("workers.compute_times=[" + ",".join(str(round(grid * draw.randint(1, 12), 6))
                                                            for _ in range(n)) + "]")
    else:
        overrides += [f"workers.compute_profile={draw.choice(['sqrt', 'equal', 'linear'])}",
                      f"workers.compute_scale={draw.choice([0.01, 0.5])}"]
    if draw.random() < 0.3:
        overrides += ["workers.comm=sqrt", "workers.comm_scale=1e-3"]
    overrides.append(draw.choice([f"stop.gradients={draw.randint(300, 1500)}",
                                  f"stop.iterations={draw.randint(200, 1000)}", f"stop.time={draw.choice([3, 10])}"]))
    overrides.append(f"output.snapshot_every={draw.choice([0.3, 1, 1e9])}")
    return overrides, draw.choice([sim_runs.BANK_BYTES, 0, 8 * dim * n * 5])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_runs_on_random_settings_give_the_per_event_files_bit_for_bit(tmp_path, monkeypatch, seed):
    overrides, bank_bytes = _random_settings(seed)
    monkeypatch.setattr(sim_runs, "BANK_BYTES", bank_bytes)
    runs = simulate(tmp_path / "runs.h5", "async_sgd", overrides)
    monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
    assert simulate(tmp_path / "events.h5", "async_sgd", overrides) == runs  # 1 when the step size diverges
    assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5")


@pytest.mark.slow
@pytest.mark.parametrize("method, extra", [("async_sgd", []), ("rennala_sgd", ["method.batch=20"])])
def test_a_resumed_run_with_runs_equals_one_without(tmp_path, monkeypatch, method, extra):
    overrides = BASE + extra + ["stop.time=5", "output.snapshot_every=1"]
    for name, enabled in (("runs", True), ("events", False)):
        monkeypatch.setattr(sim_runs, "RUNS_ENABLED", enabled)
        assert simulate(tmp_path / f"{name}.h5", method, overrides) == 0
        assert simulate(tmp_path / f"{name}.h5", method, ["stop.time=11"], resume=True) == 0
    assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5")


def test_a_method_written_with_the_public_api_gets_runs_with_the_same_numbers(tmp_path, monkeypatch):
    import asyncopt_mpi as ao

    class PlainAsyncSGD(ao.Method):  # README "Writing a method", "One rule for every result"
        name = "plain_async_sgd_with_rule"
        description = "every gradient applied on arrival, said once as a rule"

        def start(self, server):
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

        def on_result(self, server, worker, result):
            server.step(result, self.lr, grads_used=result.n_grads, max_delay=result.delay)
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
            return True

        def every_result(self, server):
            return ao.StepAndRestart(self.lr, ao.Job(ao.JobKind.GRAD, -1, self.batch))

    from asyncopt_mpi.methods import METHODS, ORIGINS

    ao.register_method(PlainAsyncSGD)
    try:
        overrides = BASE + ["stop.gradients=2000", "output.snapshot_every=1"]
        assert simulate(tmp_path / "runs.h5", PlainAsyncSGD.name, overrides) == 0
        monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
        assert simulate(tmp_path / "events.h5", PlainAsyncSGD.name, overrides) == 0
        assert assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5") == 2000
    finally:  # other tests list the registered methods
        METHODS.pop(PlainAsyncSGD.name, None)
        ORIGINS.pop(PlainAsyncSGD.name, None)


@pytest.mark.slow
@pytest.mark.parametrize("method, extra", [("async_sgd", []), ("rennala_sgd", ["method.batch=20"])])
@pytest.mark.parametrize("limit", ["stop.gradients=1000", "stop.iterations=10"])
def test_a_resume_past_its_limits_equals_one_without_runs(tmp_path, monkeypatch, method, extra, limit):
    # The resumed run has already done more than the new limit allows: it takes one result and stops.
    overrides = BASE + extra + ["stop.gradients=1500", "output.snapshot_every=1"]
    for name, enabled in (("runs", True), ("events", False)):
        monkeypatch.setattr(sim_runs, "RUNS_ENABLED", enabled)
        assert simulate(tmp_path / f"{name}.h5", method, overrides) == 0
        assert simulate(tmp_path / f"{name}.h5", method, [limit], resume=True) == 0
    assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5")


@pytest.mark.parametrize("method, overrides", [("async_sgd", ["stop.gradients=2000"]),
                                               ("rennala_sgd", ["method.batch=20", "stop.gradients=2000"])])
def test_runs_without_a_noise_bank_give_the_per_event_files(tmp_path, monkeypatch, method, overrides):
    # Many workers of a large point leave no room for a bank: each noise row is drawn where it is used.
    monkeypatch.setattr(sim_runs, "BANK_BYTES", 0)
    overrides = BASE + overrides + ["output.snapshot_every=2"]
    assert simulate(tmp_path / "runs.h5", method, overrides) == 0
    monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
    assert simulate(tmp_path / "events.h5", method, overrides) == 0
    assert assert_same_files(tmp_path / "runs.h5", tmp_path / "events.h5") >= 1000
