"""Fragile/Amelie re-planning (method.replan = "drift") and diverging graph runs, in the simulator and over mpiexec.

The setting: three workers on a line with slow links (rho = 0.1 s), 0.02 sqrt(i) s per gradient and
S = 4, so t* puts the pivot at worker 0 computing alone (a round trip to a neighbour, 0.2 s, is
longer than 4 of its own gradients). Worker 0 slows x10 at 0.5 s (workers.slowdown): re-planning
moves the pivot to worker 1, and worker 0 sits out.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import attrs, graph_attrs, graph_links, read, run_cli, run_mpi, sets, simulate
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.methods.decentralized import Kind
from asyncopt_mpi.methods.replan import JobClock, Replanning

SLOW_FROM = 0.5


def slowed_pivot(replan: str, stop: dict, method: dict | None = None) -> list[str]:
    """KEY=VALUE overrides of the setting."""
    return plain(sets(
        problem={"name": "quadratic", "dim": 20, "noise": 0.01},
        method={"lr": 0.2, "S": 4, "replan": replan, "replan_threshold": 3.0, **(method or {})},
        workers={"compute": "fixed", "compute_scale": 0.02},
        graph={"topology": "line", "rho": 0.1},
        stop=stop, output={"snapshot_every": 0.1},
    )) + [f"workers.slowdown=[[0, {SLOW_FROM}, 1e9, 10]]"]


def plain(args: list[str]) -> list[str]:
    return [arg for arg in args if arg != "--set"]


def with_set(overrides: list[str]) -> list[str]:
    return [part for item in overrides for part in ("--set", item)]


def plan_rows(path, n_workers: int = 3) -> dict:
    """The re-plans the pivot recorded in /events: PIVOT rows, and who computes under the first (its PLAN rows)."""
    data = read(path, "events/time", "events/worker", "events/kind", "events/accepted")
    kind = data["events/kind"]
    first, pivot = np.flatnonzero(kind == Kind.PLAN)[:n_workers], kind == Kind.PIVOT
    computing = {int(w): bool(a) for w, a in zip(data["events/worker"][first], data["events/accepted"][first])}
    return {"time": data["events/time"][pivot], "pivot": data["events/worker"][pivot].tolist(), "computing": computing}


def test_job_clock_counts_a_replaced_job_only_when_it_already_ran_longer_and_reports_beyond_the_threshold():
    clock = JobClock(Replanning("fragile_sgd", {}, batch=2, threshold=1.0, window=2), known=1.0)
    clock.start(0.0)
    clock.start(1.0)  # replaced after 0.5 s per gradient: no evidence of a slower node
    assert list(clock.recent) == []
    clock.start(6.0)  # replaced after 2.5 s per gradient, already beyond the estimate: a lower bound
    clock.finish(11.0)
    assert list(clock.recent) == [2.5, 2.5]
    assert clock.drifted() == 2.5 and clock.known == 2.5  # a factor 2.5 > 1 + 1: reported, and known from now
    assert clock.drifted() is None  # the next report needs a full window of its own
    for start in (11.0, 14.0):
        clock.start(start)
        clock.finish(start + 3.0)  # 1.5 s per gradient: within a factor 2 of 2.5
    assert list(clock.recent) == [1.5, 1.5] and clock.drifted() is None
    clock.start(17.0)
    clock.finish(18.0)  # 0.5 s per gradient: the mean 1 is beyond a factor 2 below 2.5
    assert clock.drifted() == 1.0


@pytest.mark.parametrize("key, value, expected", [
    ("replan", '"sometimes"', "method.replan: 'sometimes' is not accepted; accepted: off, drift"),
    ("replan_threshold", "0", "method.replan_threshold: must be > 0"),
    ("replan_window", "0", "method.replan_window: must be >= 1"),
])
def test_bad_replan_options_are_one_config_error(tmp_path, key, value, expected):
    overrides = slowed_pivot("drift", {"time": 1.0}) + [f"method.{key}={value}", "workers.n=3"]
    with pytest.raises(ConfigError) as raised:
        load_config(None, overrides, method="fragile_sgd", backend="sim", output=str(tmp_path / "run.h5"))
    assert str(raised.value).startswith(expected) and "\n" not in str(raised.value)


def test_sim_replan_moves_the_pivot_off_the_slowed_worker_and_reaches_the_target_sooner(tmp_path):
    stop = {"time": 10.0, "target": 0.1}
    runs = {replan: simulate(tmp_path, "fragile_sgd", slowed_pivot(replan, stop, {"lr": 0.5}) + ["workers.n=3"], replan)
            for replan in ("off", "drift")}
    assert graph_attrs(runs["drift"])["pivot"] == 0
    assert plan_rows(runs["off"])["pivot"] == []  # "off" (the default) plans once, as the paper does
    rows = plan_rows(runs["drift"])
    assert rows["pivot"] == [1] and SLOW_FROM < rows["time"][0] < SLOW_FROM + 1.0
    assert rows["computing"] == {0: False, 1: True, 2: False}
    # The new pivot steps from then on: its own gradients are the only ones it uses.
    late = read(runs["drift"], "events/time", "events/worker", "events/kind")
    used = late["events/kind"] == Kind.GRADS
    assert set(late["events/worker"][used & (late["events/time"] > rows["time"][0] + 0.2)].tolist()) == {1}
    # Measured on this setting: the target at 2.2 s re-planned, at 7.5 s on the fixed plan.
    assert all(attrs(path)["stop_reason"].startswith("target") for path in runs.values())
    drift_time = read(runs["drift"], "metrics/time")["metrics/time"][-1]
    off_time = read(runs["off"], "metrics/time")["metrics/time"][-1]
    assert drift_time < 0.5 * off_time, (drift_time, off_time)


def test_sim_replan_drops_a_worker_that_stops_answering(tmp_path):
    # Equal times and fast links: all three compute until worker 2 dies at 1 s; its jobs are then
    # replaced every round unfinished, so their elapsed times (lower bounds) report it.
    overrides = plain(sets(
        problem={"name": "quadratic", "dim": 20, "noise": 0.01},
        method={"lr": 0.3, "S": 6, "replan": "drift"},
        workers={"n": 3, "compute": "fixed", "compute_profile": "equal", "compute_scale": 0.02},
        graph={"topology": "line", "rho": 0.001}, stop={"time": 2.0},
    )) + ["workers.dead_after=[1e9, 1e9, 1.0]"]
    path = simulate(tmp_path, "fragile_sgd", overrides)
    assert graph_attrs(path)["participants"].tolist() == [0, 1, 2]
    rows = plan_rows(path)
    assert rows["pivot"] == [graph_attrs(path)["pivot"]] and 1.0 < rows["time"][0] < 2.0
    assert rows["computing"] == {0: True, 1: True, 2: False}


def test_sim_replan_without_drift_changes_nothing(tmp_path):
    overrides = slowed_pivot("off", {"time": 2.0})[:-1] + ["workers.n=3"]  # no slowdown
    fixed = simulate(tmp_path, "fragile_sgd", overrides, "off")
    watched = simulate(tmp_path, "fragile_sgd", overrides + ['method.replan="drift"'], "drift")
    names = ("trace/time", "snapshots/x")
    assert all(np.array_equal(a, b) for a, b in zip(read(fixed, *names).values(), read(watched, *names).values()))


def test_sim_amelie_replan_moves_only_its_pivot(tmp_path):
    path = simulate(tmp_path, "amelie_sgd", slowed_pivot("drift", {"time": 3.0}, {"S": 0}) + ["workers.n=3"])
    rows = plan_rows(path)
    assert rows["pivot"] == [1] and rows["time"][0] > SLOW_FROM
    assert rows["computing"] == {0: True, 1: True, 2: True}  # Amelie needs every node's gradients
    assert np.all(np.diff(read(path, "trace/iteration")["trace/iteration"]) == 1)


@pytest.mark.mpi
@pytest.mark.timeout(180)
def test_mpi_replan_moves_the_pivot_off_the_slowed_worker(tmp_path):
    path = tmp_path / "run.h5"
    # Stopped by a count of steps, not a time: under load fewer steps fit in a few wall seconds. Some 6
    # steps come before the slow-down (0.5 s), a few slow ones until the re-plan, then the new pivot's.
    done = run_mpi(4, ["run", "--method", "fragile_sgd", "--output", str(path)]
                   + with_set(slowed_pivot("drift", {"iterations": 16, "time": 60.0})), timeout=120)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["status"] == "completed"
    rows = plan_rows(path)
    assert rows["pivot"][:1] == [1] and rows["time"][0] > SLOW_FROM, rows
    assert rows["computing"][0] is False
    # The plan went down the old tree with the point (PLAN messages over real links), and the new
    # pivot's steps follow the old pivot's in the trace without a gap in the versions.
    hops = read(path, "hops/kind", "hops/source", "hops/dest")
    planned = hops["hops/kind"] == Kind.PLAN
    assert planned.any() and all(pair in graph_links(path) for pair in
                                 zip(hops["hops/source"][planned].tolist(), hops["hops/dest"][planned].tolist()))
    trace = read(path, "trace/time", "trace/iteration")
    assert np.all(np.diff(trace["trace/iteration"]) == 1)
    assert np.count_nonzero(trace["trace/time"] > rows["time"][0]) >= 3, trace


@pytest.mark.mpi
@pytest.mark.timeout(180)
@pytest.mark.parametrize("method", ["fragile_sgd", "decentralized_async_sgd"])
def test_a_diverging_graph_run_stops_as_diverged_in_both_runtimes(tmp_path, method):
    args = sets(problem={"name": "quadratic", "dim": 20, "noise": 0.05}, method={"lr": 1e12},
                workers={"compute": "sqrt", "compute_scale": 0.005}, graph={"topology": "line", "rho": 0.01},
                stop={"time": 5.0})
    sim, mpi = tmp_path / "sim.h5", tmp_path / "mpi.h5"
    outcomes = {
        "sim": run_cli(["run", "--method", method, "--backend", "sim", "--output", str(sim), "--set", "workers.n=2"]
                       + args),
        "mpi": run_mpi(3, ["run", "--method", method, "--output", str(mpi)] + args, timeout=120),
    }
    for name, path in (("sim", sim), ("mpi", mpi)):
        done = outcomes[name]
        assert done.returncode == 1, (name, done.stderr)
        assert attrs(path)["status"] == "diverged", (name, done.stderr)
        assert "asyncopt: diverged (" in done.stderr and "error" not in done.stderr, (name, done.stderr)
