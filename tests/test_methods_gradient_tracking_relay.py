"""Gradient Tracking and RelaySGD on worker graphs: the rule that defines each, convergence, and a run over mpiexec."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from asyncopt_mpi.config import GraphConfig
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.graph import Graph
from asyncopt_mpi.methods.gradient_tracking import GradientTracking, GradientTrackingNode, metropolis_weights
from asyncopt_mpi.methods.relay_sgd import RelayNode, RelaySGD
from asyncopt_mpi.runtime.build import build_problem, build_shards
from conftest import attrs, graph_attrs, graph_links, read, registered_methods, run_mpi, sets, simulate

N = 6
# Six workers with one finite-sum term each: f_i differ, and a "stochastic" gradient of f_i is exact.
ONE_TERM_EACH = ["problem.name=quadratic", "problem.dim=8", f"problem.samples={N}", "problem.lam=0.5",
                 f"workers.n={N}", "workers.data_split=partition", "workers.compute=sqrt",
                 "workers.compute_scale=0.1", "graph.rho=0.05", "stop.time=60"]
# Three classes sorted across nine workers: each worker sees one class only.
BY_LABEL = ["problem.name=logistic", "problem.samples=1500", "problem.dim=20", "problem.classes=3", "workers.n=9",
            "workers.data_split=by_label", "workers.compute_profile=linear", "workers.compute_scale=0.02",
            "graph.topology=mesh", "graph.rho=0.05", "stop.time=150", "output.snapshot_every=5"]


class GradientTrackingRecord(GradientTrackingNode):
    """Keeps, per round, the tracker y_i^k and the gradient g_i(x_i^k) it was made with, and x_i^k."""

    history: dict = defaultdict(list)

    def on_gradient(self, net, version, gradient, n_grads):
        x = self.x.copy()
        super().on_gradient(net, version, gradient, n_grads)
        self.history[self.node].append((x, self.y.copy(), self.gradient.copy()))


class RelayRecord(RelayNode):
    """Keeps, per round, the half step x_i^{t+1/2} and the sum and count of the relayed messages received."""

    history: dict = defaultdict(list)

    def _average(self, net):
        got = self.inbox.get(self.round, {})
        if self.half is not None and len(got) == len(self.neighbours):
            received = sum((vector for vector, _ in got.values()), np.zeros_like(self.half))
            self.history[self.node].append((self.half.copy(), received, sum(count for _, count in got.values())))
        super()._average(net)


class RecordingGradientTracking(GradientTracking):
    name = "recording_gradient_tracking"
    node_class = GradientTrackingRecord


class RecordingRelaySGD(RelaySGD):
    name = "recording_relay_sgd"
    node_class = RelayRecord


class HeldGradientTracking(RecordingGradientTracking):
    """lr = 0 at the nodes (the config's lr must be > 0): every x_i stays x0, a fixed point of the mixing."""

    name = "held_gradient_tracking"

    @classmethod
    def make_nodes(cls, x0, lr, batch, plan, nodes):
        return super().make_nodes(x0, 0.0, batch, plan, nodes)


class HeldRelaySGD(RecordingRelaySGD):
    """lr = 0 at the nodes: every half step is x0."""

    name = "held_relay_sgd"

    @classmethod
    def make_nodes(cls, x0, lr, batch, plan, nodes):
        return super().make_nodes(x0, 0.0, batch, plan, nodes)


@pytest.fixture
def recording():
    """The recording methods, registered for one test."""
    classes = (RecordingGradientTracking, RecordingRelaySGD, HeldGradientTracking, HeldRelaySGD)
    for cls in classes:
        cls.node_class.history.clear()
    with registered_methods(*classes):
        yield


def local_gradients(overrides: list[str], x: np.ndarray) -> np.ndarray:
    """grad f_i(x) of every worker's shard."""
    config = load_config(None, overrides, method="gradient_tracking", backend="sim")
    problem = build_problem(config)
    return np.array([problem.grad(x, shard) for shard in build_shards(config, problem, config.workers.n)])


# ---------------------------------------------------------------- Gradient Tracking


def test_metropolis_weights_are_doubly_stochastic_on_the_graph():
    graph = Graph.from_config(GraphConfig(topology="mesh", rho=1.0), 12)
    weights = metropolis_weights(graph)
    W = np.zeros((12, 12))
    for i, row in enumerate(weights):
        assert sorted(row) == graph.neighbours(i)
        for j, w in row.items():
            W[i, j] = w
        W[i, i] = 1.0 - sum(row.values())
    np.testing.assert_allclose(W, W.T)
    np.testing.assert_allclose(W.sum(axis=0), 1.0)
    assert np.all(np.diag(W) > 0)


@pytest.mark.parametrize("topology", ["ring", "mesh"])
def test_trackers_mean_is_the_mean_of_the_local_gradients_after_every_round(tmp_path, recording, topology):
    # sum_i y_i^k = sum_i g_i(x_i^k) in every round k, while x moves (stochastic gradients, one class per worker).
    overrides = BY_LABEL + [f'graph.topology="{topology}"', "method.lr=1.0", "stop.time=20"]
    path = simulate(tmp_path, "recording_gradient_tracking", overrides)
    history = GradientTrackingRecord.history
    rounds = min(len(history[node]) for node in range(9))
    assert rounds > 20
    for k in range(rounds):
        trackers = np.array([history[node][k][1] for node in range(9)])
        gradients = np.array([history[node][k][2] for node in range(9)])
        np.testing.assert_allclose(trackers.mean(axis=0), gradients.mean(axis=0), rtol=0, atol=1e-12)
    # x moved, and the trackers differ from the node's own gradient (they track the mean, not g_i)
    assert not np.allclose(history[0][rounds - 1][0], history[0][0][0])
    assert not np.allclose(history[0][rounds - 1][1], history[0][rounds - 1][2])
    assert attrs(path)["status"] == "completed"


def test_at_a_fixed_point_every_tracker_reaches_the_mean_gradient(tmp_path, recording):
    # x_i held at x0; f_i differ (one term each), so y_i -> (1/n) sum_j grad f_j(x0) by mixing alone.
    overrides = ONE_TERM_EACH + ["graph.topology=\"ring\""]
    simulate(tmp_path, "held_gradient_tracking", overrides)
    history = GradientTrackingRecord.history
    x0 = history[0][0][0]
    gradients = local_gradients(overrides, x0)
    mean = gradients.mean(axis=0)
    assert np.linalg.norm(gradients - mean, axis=1).min() > 1e-3  # heterogeneous
    for node in range(N):
        x, y, g = history[node][-1]
        np.testing.assert_allclose(x, x0, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(g, gradients[node], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(y, mean, rtol=0, atol=1e-9 * np.abs(mean).max())
    first = np.array([history[node][0][1] for node in range(N)])
    np.testing.assert_allclose(first, gradients)  # y_i^0 = g_i(x_i^0)


def test_gradient_tracking_gossips_over_every_graph_edge_directly(tmp_path):
    path = simulate(tmp_path, "gradient_tracking", ONE_TERM_EACH + ["graph.topology=\"ring\"", "method.lr=0.1",
                                                                   "stop.time=10"])
    hops = read(path, "hops/source", "hops/dest", "hops/kind", "hops/version")
    pairs = set(zip(hops["hops/source"].tolist(), hops["hops/dest"].tolist()))
    assert pairs == set(graph_links(path))  # the ring's edge the tree leaves out carries messages too
    # every round, one model (kind 4) and one tracker (kind 5) message each way on every edge
    first = hops["hops/version"] == 0
    assert sorted(hops["hops/kind"][first].tolist()) == [4] * 2 * N + [5] * 2 * N


# ---------------------------------------------------------------- RelaySGD


def test_relay_on_a_chain_brings_every_model_exactly_once_delayed_by_its_distance(tmp_path, recording):
    # Line 0 - 1 - ... - 5. Node k's half step of round s reaches node i in the messages of round
    # s + |i - k| - 1: sum_j m_{j->i}^t = sum over k != i with |i - k| <= t + 1 of x_k^{t - |i-k| + 1 + 1/2}.
    overrides = ONE_TERM_EACH + ["graph.topology=\"line\"", "method.lr=0.3", "problem.lam=0.5"]
    simulate(tmp_path, "recording_relay_sgd", overrides)
    history = RelayRecord.history
    rounds = min(len(history[node]) for node in range(N))
    assert rounds > 2 * N
    for i in range(N):
        for t in range(rounds):
            half, received, count = history[i][t]
            reached = [k for k in range(N) if k != i and abs(i - k) <= t + 1]
            expected = sum((history[k][t - abs(i - k) + 1][0] for k in reached), np.zeros_like(half))
            np.testing.assert_allclose(received, expected, rtol=1e-12, atol=1e-12)
            assert count == len(reached)
    assert history[0][N][2] == N - 1  # once the chain is crossed, every other model, once


def test_relay_average_uses_x0_for_models_on_the_way_and_is_exact_with_no_noise(tmp_path, recording):
    # With lr = 0 the half steps are x0, so every node's model stays x0: the x0 stand-ins and the
    # relayed models together always count n.
    overrides = ONE_TERM_EACH + ["graph.topology=\"line\"", "stop.time=10"]
    path = simulate(tmp_path, "held_relay_sgd", overrides)
    x = read(path, "snapshots/x")["snapshots/x"]
    np.testing.assert_allclose(x, np.broadcast_to(x[0], x.shape), rtol=0, atol=1e-12)


def test_relay_messages_only_cross_the_spanning_tree(tmp_path):
    path = simulate(tmp_path, "relay_sgd", ONE_TERM_EACH + ["graph.topology=\"ring\"", "method.lr=0.1", "stop.time=10"])
    hops = read(path, "hops/source", "hops/dest")
    parent = graph_attrs(path)["parent"]
    tree = {(i, int(p)) for i, p in enumerate(parent) if p >= 0}
    tree |= {(j, i) for i, j in tree}
    assert set(zip(hops["hops/source"].tolist(), hops["hops/dest"].tolist())) == tree


# ---------------------------------------------------------------- convergence


@pytest.mark.slow
def test_both_converge_on_heterogeneous_logistic_regression(tmp_path):
    # One class per worker: plain local steps would pull each model to its own class.
    for method in ("gradient_tracking", "relay_sgd"):
        path = simulate(tmp_path, method, BY_LABEL + ["method.lr=2.0", "stop.time=75"], name=method)
        data = read(path, "metrics/suboptimality", "metrics/time")
        subopt = data["metrics/suboptimality"]
        assert attrs(path)["status"] == "completed" and np.all(np.isfinite(subopt))
        assert subopt[-1] < 0.15 * subopt[0], (method, subopt[[0, -1]])  # 0.054 and 0.087 here


@pytest.mark.parametrize("method", ["gradient_tracking", "relay_sgd"])
def test_a_single_worker_graph_steps_alone(tmp_path, method):
    # No neighbours: a round is the node's own job (gradient_tracking's mixing has nothing to wait for).
    path = simulate(tmp_path, method, ["problem.name=quadratic", "problem.dim=10", "workers.n=1",
                                       "graph.topology=\"mesh\"", "stop.time=5"])
    assert attrs(path)["status"] == "completed" and len(read(path, "trace/iteration")["trace/iteration"]) > 10


def test_bad_pivot_is_refused_naming_the_key(tmp_path):
    from asyncopt_mpi.errors import ConfigError

    with pytest.raises(ConfigError, match="method.pivot"):
        load_config(None, ONE_TERM_EACH + ["graph.topology=\"ring\"", "method.pivot=\"tstar\""],
                    method="relay_sgd", backend="sim")


# ---------------------------------------------------------------- over mpiexec


@pytest.mark.mpi
@pytest.mark.timeout(120)
# Rounds, not seconds (about 1 s idle; in the simulator f - f* falls below 2% of its start): a loaded
# machine makes fewer rounds a second. The time only caps a hang.
@pytest.mark.parametrize("method, rounds", [("gradient_tracking", 20), ("relay_sgd", 30)])
def test_four_ranks_on_a_ring_converge_over_mpiexec(tmp_path, method, rounds):
    path = tmp_path / "run.h5"
    args = ["run", "--method", method, "--output", str(path)] + sets(
        problem={"name": "quadratic", "dim": 30, "samples": 3, "lam": 0.5},
        method={"lr": 0.5},
        workers={"data_split": "partition", "compute": "sqrt", "compute_scale": 0.005},
        graph={"topology": "ring", "rho": 0.02},
        stop={"iterations": rounds, "time": 60.0}, output={"snapshot_every": 0.2},
    )
    done = run_mpi(4, args, timeout=100)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["status"] == "completed"
    data = read(path, "metrics/suboptimality", "hops/source", "hops/dest", "trace/grads_used")
    subopt = data["metrics/suboptimality"]
    assert np.all(np.isfinite(subopt)) and subopt[-1] < 0.3 * subopt[0], subopt[[0, -1]]
    pairs = set(zip(data["hops/source"].tolist(), data["hops/dest"].tolist()))
    assert pairs <= set(graph_links(path))
    assert np.all(data["trace/grads_used"] == 3)  # a round: one job at each of the three nodes
