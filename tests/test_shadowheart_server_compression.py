"""Shadowheart SGD's compressed broadcast (method.server_compressor): its time, its rule, unbiasedness, both runtimes."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.methods.compressed import _server_compressor
from asyncopt_mpi.problems import make_problem

from conftest import attrs, read, run_mpi, sets, simulate

DIM = 20
# Equal fixed compute times, free uploads: a round without a broadcast lasts exactly h = 0.01 s.
EQUAL = ["problem.name=quadratic", f"problem.dim={DIM}", "problem.noise=0.01", "workers.n=3",
         "workers.compute=fixed", "workers.compute_profile=equal", "workers.compute_scale=0.01"]
SERVER_COMM = 0.001  # tau_serv per float


@pytest.mark.slow
@pytest.mark.parametrize("options, floats", [
    (["method.server_compressor=\"randk\"", "method.server_K=5"], 5),  # K values; the seed word is not charged
    (["method.server_compressor=\"randk\"", "method.server_K=5", "method.charge_seed=true"], 6),
    (["method.server_compressor=\"quantize\"", "method.server_levels=4"], 1 + -(-DIM // 8)),  # norm + d int8 levels
    (["method.server_compressor=\"none\""], DIM),  # the whole point
])
def test_each_round_waits_for_the_broadcast_tau_serv(tmp_path, options, floats):
    # Seed 001 item (d): the broadcast takes tau_serv = server_comm x (floats of the message) before
    # every worker can start the next round; x^0 is held by all, so the first round is not charged.
    path = simulate(tmp_path, "shadowheart_sgd", EQUAL + options + [
        f"method.server_comm={SERVER_COMM}", "method.lr=0.1", "stop.time=1"])
    time = read(path, "trace/time")["trace/time"]
    free = simulate(tmp_path, "shadowheart_sgd", EQUAL + ["method.lr=0.1", "stop.time=1"], name="free")
    round_time = read(free, "trace/time")["trace/time"][0]
    assert len(time) > 10
    np.testing.assert_allclose(time[0], round_time, rtol=1e-12)
    np.testing.assert_allclose(np.diff(time), round_time + SERVER_COMM * floats, rtol=1e-9)


@pytest.mark.parametrize("name, param", [("randk", 2), ("quantize", 2)])
def test_the_broadcast_is_unbiased(name, param):
    # x + C(x_next - x) over many draws averages to x_next, within 5 standard errors per coordinate ...
    compressor = _server_compressor({"server_compressor": name, "server_K": param, "server_levels": param})
    rng = np.random.default_rng(7)
    x, x_next = rng.normal(size=8), rng.normal(size=8)
    draws = 3000
    total = np.zeros(8)
    for _ in range(draws):
        compressor.decode_add(total, compressor.encode(x_next - x, 1, rng), 1)
    mean = x + total / draws
    spread = np.sqrt(compressor.omega(8) * np.sum((x_next - x) ** 2) / draws)  # bound on each coordinate's error
    assert np.all(np.abs(mean - x_next) < 5 * spread)
    # ... a tolerance that tells x_next from, e.g., RandK without its d/K scale (mean x + (K/d)(x_next - x)).
    assert np.abs(x_next - x).max() > 10 * spread


def test_the_step_is_the_previous_point_plus_a_randk_of_the_change(tmp_path):
    # No noise, uncompressed uploads: the round's estimate is the exact gradient at the point the workers
    # hold, so x_41 - x_40 = C(-lr grad f(x_40)): at most K coordinates move, each by d/K times
    # -lr grad f(x_40). (Forty steps, as the quadratic's gradient at x^0 has two coordinates and
    # spreads slowly; K = d/2 so that the draw meets some of them.)
    lr, K = 0.3, DIM // 2
    overrides = ["problem.name=quadratic", f"problem.dim={DIM}", "problem.noise=0.0"]
    run = overrides + ["workers.n=3", "method.compressor=\"identity\"", "method.server_compressor=\"randk\"",
                       f"method.server_K={K}", f"method.lr={lr}", "output.snapshot_every=0"]
    before = read(simulate(tmp_path, "shadowheart_sgd", run + ["stop.iterations=40"], name="before"), "snapshots/x")
    after = read(simulate(tmp_path, "shadowheart_sgd", run + ["stop.iterations=41"], name="after"), "snapshots/x")
    before, after = before["snapshots/x"][-1], after["snapshots/x"][-1]
    problem = make_problem(load_config(None, overrides + ["stop.time=1"], backend="sim").problem)
    change = -lr * problem.full_grad(before)
    moved = np.flatnonzero(after != before)
    assert 0 < len(moved) <= K
    np.testing.assert_allclose((after - before)[moved], (DIM / K) * change[moved], rtol=1e-9)


def test_a_compressed_broadcast_converges_in_the_simulator(tmp_path):
    path = simulate(tmp_path, "shadowheart_sgd", EQUAL + [
        "method.server_compressor=\"randk\"", "method.server_K=5", f"method.server_comm={SERVER_COMM}",
        "method.lr=0.2", "stop.time=6"])
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert subopt[-1] < 0.05 * subopt[0]


@pytest.mark.parametrize("override, words", [
    ("method.server_compressor=\"identity\"", "method.server_compressor: unknown compressor 'identity'"),
    ("method.server_K=0", "method.server_K must be >= 1"),
    ("method.server_comm=-1.0", "method.server_comm: seconds per float"),
])
def test_bad_broadcast_options_name_their_key(override, words):
    with pytest.raises(ConfigError, match=words):
        load_config(None, EQUAL + ["method.server_compressor=\"randk\"", override, "stop.time=1"],
                    method="shadowheart_sgd", backend="sim")


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_a_compressed_broadcast_over_mpi(tmp_path):
    # Two workers at h = 0.01 s, one gradient a round: every job after the first lasts the broadcast
    # (server_comm x server_K) plus its gradient, as the workers' recorded busy time shows exactly.
    server_comm, K = 0.002, 5
    path = tmp_path / "mpi.h5"
    done = run_mpi(3, ["run", "--method", "shadowheart_sgd", "--output", str(path)] + sets(
        problem={"name": "quadratic", "dim": DIM, "noise": 0.01},
        method={"lr": 0.2, "server_compressor": "randk", "server_K": K, "server_comm": server_comm},
        workers={"compute": "fixed", "compute_profile": "equal", "compute_scale": 0.01},
        # rounds, not seconds (about 0.8 s idle): a loaded machine makes fewer rounds a second
        stop={"iterations": 40, "time": 60.0}, output={"snapshot_every": 0.2}), timeout=100)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["status"] == "completed"
    found = read(path, "workers/jobs", "workers/grads", "workers/busy_time", "metrics/suboptimality")
    jobs, grads = found["workers/jobs"], found["workers/grads"]
    assert np.all(jobs > 5)
    np.testing.assert_allclose(found["workers/busy_time"], 0.01 * grads + (jobs - 1) * server_comm * K, rtol=1e-9)
    subopt = found["metrics/suboptimality"]
    assert subopt[-1] < 0.5 * subopt[0]


@pytest.mark.parametrize("key", ["compressor", "server_compressor"])
def test_a_long_compressor_name_is_echoed_cut(key):
    with pytest.raises(ConfigError) as raised:
        load_config(None, EQUAL + [f'method.{key}="{"x" * 5000}"', "stop.time=1"], method="shadowheart_sgd",
                    backend="sim")
    assert len(str(raised.value)) < 400 and "..." in str(raised.value)


def test_measured_times_leave_the_broadcast_out(tmp_path):
    # With method.estimate_times the rounds' durations are fitted without the broadcast's wait (the
    # first calibration round has none, the others do), so the plan is the model's.
    run = ["problem.name=quadratic", "problem.dim=40", "problem.noise=0.05", "workers.n=5", "workers.compute=sqrt",
           "workers.compute_scale=0.01", "workers.comm=sqrt", "workers.comm_scale=0.002", "method.K=2",
           "method.sigma2_over_eps=10.0", "method.lr=0.3", "stop.time=3", "method.server_compressor=\"randk\"",
           "method.server_K=4", "method.server_comm=0.01"]
    model = read(simulate(tmp_path, "shadowheart_sgd", run, name="model"), "trace/t_star")["trace/t_star"]
    found = read(simulate(tmp_path, "shadowheart_sgd", run + ["method.estimate_times=true"], name="measured"),
                 "trace/t_star")["trace/t_star"]
    assert len(found) > 4 and np.all(np.isnan(found[:3]))
    np.testing.assert_allclose(found[3:], model[0], rtol=1e-6)
