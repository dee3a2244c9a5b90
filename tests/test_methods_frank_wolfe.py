"""Frank-Wolfe methods: the iterate stays in the ball, staleness is bounded, rank-one messages, rebuilt copies."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import make_problem
from asyncopt_mpi.runtime.points import PointStore, apply_delta

from conftest import events, read, run_mpi, sets, simulate

SENSING = ["problem.name=matrix_sensing", "problem.dim=12", "problem.rank=2"]


def sensing_problem(extra: list[str] = ()):
    return make_problem(load_config(None, SENSING + list(extra) + ["stop.time=1"], backend="sim").problem)


@pytest.mark.parametrize("method", ["sfw_dist", "sfw_asyn", "svrf_asyn"])
def test_every_iterate_stays_in_the_nuclear_norm_ball(tmp_path, method):
    path = simulate(tmp_path, method, SENSING + [
        "workers.n=4", "workers.compute=geometric", "workers.compute_scale=0.01", "method.batch=2",
        "method.max_batch=50", "stop.iterations=40", "output.snapshot_every=0"])
    problem = sensing_problem()
    xs = read(path, "snapshots/x")["snapshots/x"]
    assert len(xs) > 30
    assert max(problem.nuclear_norm(x) for x in xs) <= problem.radius + 1e-9


def test_sfw_asyn_never_applies_an_update_older_than_max_staleness(tmp_path):
    path = simulate(tmp_path, "sfw_asyn", SENSING + [
        "workers.n=8", "workers.compute=geometric", "workers.compute_scale=0.01", "method.max_staleness=2",
        "method.batch=1", "method.max_batch=20", "stop.time=5"])
    data = events(path)
    assert np.all(data["delay"][data["accepted"] == 1] <= 2)
    assert np.all(data["delay"][data["accepted"] == 0] > 2) and (data["accepted"] == 0).any()
    assert read(path, "trace/max_delay")["trace/max_delay"].max() <= 2


@pytest.mark.slow
def test_rank_one_messages_are_o_of_rows_plus_cols(tmp_path):
    size = 200
    common = ["problem.name=matrix_sensing", f"problem.dim={size}", "problem.samples=40", "workers.n=4",
              "workers.compute=fixed", "method.batch=1", "method.max_batch=4", "stop.iterations=12"]
    per_update = {}
    for method in ("sfw_dist", "sfw_asyn"):
        path = simulate(tmp_path, method, common, name=method)
        trace = read(path, "trace/bytes_up", "trace/bytes_down")
        # Bytes of each update, past the first point every worker needs once.
        per_update[method] = np.median(np.diff(trace["trace/bytes_up"] + trace["trace/bytes_down"]))
    assert per_update["sfw_dist"] / per_update["sfw_asyn"] >= 50
    # Up: (u, v); down: chains of [a, b, u, v] steps, 2 + rows + cols floats each, to 4 workers.
    assert per_update["sfw_asyn"] < 8 * 4 * 4 * (2 + 2 * size)


def test_sfw_dist_charges_the_master_svd_once_not_per_worker(tmp_path):
    # Fixed times, worker 1 twice as slow (2 s a gradient), the master at compute_scale = 1 s a
    # gradient, svd_cost = 10. Round 0: 1 gradient each (2 s). Later rounds: 2 gradients each
    # after the master's SVD: 10 + 2 * 2 = 14 s (the old charge, 10 extra gradients in every
    # worker's job, made it (2 + 10) * 2 = 24 s, scaled by the slowest worker).
    path = simulate(tmp_path, "sfw_dist", SENSING + [
        "workers.n=2", "workers.compute=fixed", "workers.compute_times=[1.0, 2.0]", "workers.compute_scale=1",
        "method.batch=1", "method.max_batch=4", "method.svd_cost=10", "stop.iterations=6"])
    lengths = np.diff(np.concatenate([[0.0], read(path, "trace/time")["trace/time"]]))
    np.testing.assert_allclose(lengths, [2.0] + [14.0] * 5, rtol=1e-12)


def test_a_rebuilt_copy_equals_the_servers_point():
    problem = sensing_problem()
    rows, cols = problem.shape
    store = PointStore(problem.x0())
    rng = np.random.default_rng(0)
    copy = problem.x0()  # a worker's copy of version 0
    for k in range(30):
        u, v = problem.lmo(rng.standard_normal(problem.dim))
        eta = 2.0 / (k + 2)
        weight = eta * problem.radius
        x_next = store.new_buffer()
        np.multiply(store.get(store.current), 1.0 - eta, out=x_next)
        x_next.reshape(rows, cols)[...] += weight * np.outer(u, v)
        store.publish(x_next, delta=np.concatenate([[1.0 - eta, weight], u, v]))
    chain = store.delta_chain(0, store.current).reshape(30, -1)
    for step in chain:
        apply_delta(copy, step, (rows, cols))
    np.testing.assert_allclose(copy, store.get(store.current), rtol=0, atol=1e-10)
    assert copy @ copy == pytest.approx(store.fingerprints[store.current], rel=1e-12)


def test_matrix_sensing_is_recovered_in_sim(tmp_path):
    path = simulate(tmp_path, "sfw_asyn", [
        "problem.name=matrix_sensing", "problem.dim=20", "problem.rank=3", "workers.n=8",
        "workers.compute=geometric", "workers.compute_scale=0.001", "method.batch=1", "method.max_batch=600",
        "stop.time=60", "output.snapshot_every=1"])
    problem = make_problem(load_config(None, ["problem.name=matrix_sensing", "problem.dim=20", "problem.rank=3",
                                              "stop.time=1"], backend="sim").problem)
    x = read(path, "snapshots/x")["snapshots/x"][-1]
    assert problem.relative_error(x) < 0.1


@pytest.mark.mpi
def test_sfw_asyn_over_mpi_converges_with_rank_one_updates(tmp_path):
    size = 40
    path = tmp_path / "sfw.h5"
    # Four workers and a count of updates, not seconds (a loaded machine makes fewer updates a second): in the
    # simulator 150 updates take about 2 s and bring the relative error to 0.12.
    args = ["run", "--method", "sfw_asyn", "--output", str(path)] + sets(
        problem={"name": "matrix_sensing", "dim": size, "rank": 3},
        method={"batch": 1, "max_batch": 1200, "svd_cost": 2},
        workers={"compute": "geometric", "compute_scale": 0.00005}, stop={"iterations": 150, "time": 60.0},
        output={"snapshot_every": 0.05})
    done = run_mpi(5, args, timeout=120)
    assert done.returncode == 0, done.stderr  # a rebuilt copy that differed from the server's would fail the run
    problem = make_problem(load_config(None, ["problem.name=matrix_sensing", f"problem.dim={size}", "problem.rank=3",
                                              "stop.time=1"], backend="sim").problem)
    xs = read(path, "snapshots/x")["snapshots/x"]
    assert problem.relative_error(xs[-1]) < 0.2 < problem.relative_error(xs[1])
    trace = read(path, "trace/bytes_down", "trace/iteration")
    per_update = trace["trace/bytes_down"][-1] / trace["trace/iteration"][-1]
    assert per_update < 0.6 * size * size * 8  # each job's point came as a chain of rank-one deltas


@pytest.mark.slow
def test_sfw_asyn_speeds_up_with_workers_while_sfw_dist_flattens(tmp_path):
    # The seed's appendix D set-up (geometric compute times, p = 0.1), same settings for every worker count.
    problem = make_problem(load_config(None, ["problem.name=matrix_sensing", "problem.dim=20", "problem.rank=3",
                                              "stop.time=1"], backend="sim").problem)
    target = 0.005 * (problem.loss(problem.x0()) - problem.compute_f_star())
    common = ["problem.name=matrix_sensing", "problem.dim=20", "problem.rank=3", "workers.compute=geometric",
              "workers.compute_profile=equal", "workers.compute_scale=1", "workers.compute_p=0.1", "method.batch=1",
              "method.max_batch=600", "stop.time=400000", "output.snapshot_every=20", f"stop.target={target}"]
    speedup = {}
    for method, extra in (("sfw_asyn", ["method.max_staleness=16"]), ("sfw_dist", [])):
        times = []
        for n in (1, 8):
            path = simulate(tmp_path, method, common + extra + [f"workers.n={n}"], name=f"{method}-{n}")
            assert read(path, "snapshots/time")["snapshots/time"][-1] < 400000  # the target was reached
            times.append(read(path, "snapshots/time")["snapshots/time"][-1])
        speedup[method] = times[0] / times[1]
    assert speedup["sfw_asyn"] > 5 and speedup["sfw_dist"] < 0.7 * speedup["sfw_asyn"], speedup
