"""Asynchronous decentralized SGD on worker graphs: exact pairwise gossip, local steps at each node's own pace, convergence."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from asyncopt_mpi.config import GraphConfig
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.graph import Graph
from asyncopt_mpi.methods.decentralized import make_plan
from asyncopt_mpi.methods.decentralized_async_sgd import AsyncGossipNode, DecentralizedAsyncSGD
from conftest import attrs, graph_links, read, registered_methods, run_mpi, sets, simulate

N = 6
# Six workers with one finite-sum term each: f_i differ, and a "stochastic" gradient of f_i is exact.
ONE_TERM_EACH = ["problem.name=quadratic", "problem.dim=8", f"problem.samples={N}", "problem.lam=0.5",
                 f"workers.n={N}", "workers.data_split=partition", "graph.rho=0.05", "method.lr=0.05"]
# Three classes sorted across nine workers: each worker sees one class only.
BY_LABEL = ["problem.name=logistic", "problem.samples=1500", "problem.dim=20", "problem.classes=3", "workers.n=9",
            "workers.data_split=by_label", "workers.compute_profile=linear", "workers.compute_scale=0.02",
            "graph.topology=mesh", "graph.rho=0.05", "stop.time=75", "output.snapshot_every=5"]


class GossipRecord(AsyncGossipNode):
    """Keeps every node's gossip changes per exchange, its applied gradients, and its model at the end."""

    changes: dict = defaultdict(list)  # (initiator, number) -> [(node, peer, change)]
    applied: dict = defaultdict(list)  # node -> [lr * gradient]
    models: dict = {}  # node -> its latest x
    starts: dict = {}  # node -> x0

    def __init__(self, node, x0, *args):
        super().__init__(node, x0, *args)
        self.starts[node] = x0.copy()

    def on_gradient(self, net, version, gradient, n_grads):
        self.applied[self.node].append(self.lr * gradient.copy())
        super().on_gradient(net, version, gradient, n_grads)
        self.models[self.node] = self.x.copy()

    def _gossip(self, net, message, exchange, change):
        super()._gossip(net, message, exchange, change)
        self.changes[exchange].append((self.node, message.origin, change.copy(), self.x.copy()))
        self.models[self.node] = self.x.copy()


class RecordingAsyncSGD(DecentralizedAsyncSGD):
    name = "recording_decentralized_async_sgd"
    node_class = GossipRecord


class SpreadAsyncSGD(RecordingAsyncSGD):
    """Node i starts at x0 + i (every coordinate): distinct models for gossip to average."""

    name = "spread_decentralized_async_sgd"

    @classmethod
    def make_nodes(cls, x0, lr, batch, plan, nodes):
        return {node: cls.node_class(node, x0 + node, lr, batch, plan.graph.neighbours(node)) for node in nodes}


@pytest.fixture
def recording():
    """The recording methods, registered for one test."""
    for table in (GossipRecord.changes, GossipRecord.applied, GossipRecord.models, GossipRecord.starts):
        table.clear()
    with registered_methods(RecordingAsyncSGD, SpreadAsyncSGD):
        yield


def compute_times(*seconds: float) -> str:
    return "workers.compute_times=[" + ", ".join(str(s) for s in seconds) + "]"


@pytest.mark.parametrize("topology", ["ring", "mesh"])
def test_an_exchange_changes_the_two_models_by_exact_opposites(tmp_path, recording, topology):
    # Local steps land while exchanges are on the way (compute 0.01-0.06 s, a link 0.05 s each way).
    simulate(tmp_path, RecordingAsyncSGD.name, ONE_TERM_EACH + [
        f'graph.topology="{topology}"', compute_times(*(0.01 * (i + 1) for i in range(N))), "stop.time=10"])
    finished = [ends for ends in GossipRecord.changes.values() if len(ends) == 2]
    assert len(finished) > 100
    for (node, peer, change, _), (other, other_peer, other_change, _) in finished:
        assert (other, other_peer) == (peer, node)
        assert np.array_equal(change, -other_change)  # bit for bit: x_i + x_j is what it was
    assert sum(np.any(ends[0][2] != 0) for ends in finished) > 0.9 * len(finished)  # the first ones, at x0, are 0
    # Over the whole run only gradients moved the sum of the models (the last exchanges may be cut by the stop).
    unfinished = [ends[0] for ends in GossipRecord.changes.values() if len(ends) == 1]
    total = sum(GossipRecord.models.values()) - sum(change for _, _, change, _ in unfinished)
    expected = sum(GossipRecord.starts.values()) - sum(sum(steps) for steps in GossipRecord.applied.values())
    np.testing.assert_allclose(total, expected, rtol=0, atol=1e-9)


def test_without_local_steps_an_exchange_leaves_both_at_the_average(tmp_path, recording):
    # No job finishes (100 s each, stop at 5 s; the config refuses lr = 0): the models only gossip.
    # Each exchange ends with both at (s_i + x_j) / 2, the sum stays n x0 + 0 + 1 + ... + (n - 1),
    # and the ring reaches that average.
    simulate(tmp_path, SpreadAsyncSGD.name, ONE_TERM_EACH + [
        'graph.topology="ring"', compute_times(*[100.0] * N), "stop.time=5"])
    assert not GossipRecord.applied
    finished = [ends for ends in GossipRecord.changes.values() if len(ends) == 2]
    assert len(finished) > 50
    for (_, _, change, responder), (_, _, _, initiator) in finished:
        np.testing.assert_allclose(initiator, responder, rtol=1e-15, atol=1e-14)
    starts = sum(GossipRecord.starts.values())
    models = np.array([GossipRecord.models[node] for node in range(N)])
    unfinished = sum(ends[0][2] for ends in GossipRecord.changes.values() if len(ends) == 1)
    np.testing.assert_allclose(models.sum(axis=0) - unfinished, starts, rtol=0, atol=1e-12)
    np.testing.assert_allclose(models, np.broadcast_to(starts / N, models.shape), rtol=0, atol=1e-6)


def test_faster_nodes_take_more_local_steps(tmp_path):
    seconds = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32]
    path = simulate(tmp_path, "decentralized_async_sgd", ONE_TERM_EACH + [
        'graph.topology="ring"', compute_times(*seconds), "stop.time=8"])
    jobs = read(path, "workers/jobs")["workers/jobs"]
    # every node starts a job as soon as its last one is done, gossip or not: 8 s / tau_i of them
    # (and the one running at the stop)
    for started, tau in zip(jobs, seconds):
        assert abs(started - 8 / tau) <= 1, (jobs, seconds)


def test_a_slow_node_does_not_hold_its_neighbours_up(tmp_path, recording):
    # Node 1 of a ring of six never finishes a gradient; its neighbours 0 and 2 step as fast as
    # ever and keep averaging with it, so its model moves. Gradient tracking's rounds stall instead:
    # a node at distance d from node 1 gets at most d + 1 jobs done.
    seconds = [0.05, 1000.0, 0.05, 0.05, 0.05, 0.05]
    overrides = ONE_TERM_EACH + ['graph.topology="ring"', compute_times(*seconds), "stop.time=10"]
    path = simulate(tmp_path, RecordingAsyncSGD.name, overrides, name="async")
    grads = read(path, "workers/grads")["workers/grads"]
    assert grads[1] == 0 and all(grads[i] >= 190 for i in (0, 2, 3, 4, 5)), grads
    with_slow = [ends for ends in GossipRecord.changes.values() if any(node == 1 for node, _, _, _ in ends)]
    assert len(with_slow) > 50 and np.any(GossipRecord.models[1] != 0)
    tracking = simulate(tmp_path, "gradient_tracking", overrides, name="tracking")
    stalled = read(tracking, "workers/grads")["workers/grads"]
    assert all(stalled[i] <= min(abs(i - 1), N - abs(i - 1)) + 1 for i in range(N)), stalled


@pytest.mark.slow
def test_converges_on_heterogeneous_logistic_regression(tmp_path):
    # One class per worker: plain local steps would pull each model to its own class.
    path = simulate(tmp_path, "decentralized_async_sgd", BY_LABEL + ["method.lr=1.0"])
    subopt = read(path, "metrics/suboptimality")["metrics/suboptimality"]
    assert attrs(path)["status"] == "completed" and np.all(np.isfinite(subopt))
    assert subopt[-1] < 0.15 * subopt[0], subopt[[0, -1]]  # 0.073 here
    hops = read(path, "hops/source", "hops/dest")
    assert set(zip(hops["hops/source"].tolist(), hops["hops/dest"].tolist())) == set(graph_links(path))


def test_a_single_worker_graph_steps_alone(tmp_path):
    path = simulate(tmp_path, "decentralized_async_sgd", ["problem.name=quadratic", "problem.dim=10", "workers.n=1",
                                                          'graph.topology="mesh"', "stop.time=5"])
    assert attrs(path)["status"] == "completed" and len(read(path, "trace/iteration")["trace/iteration"]) > 10


def test_a_link_without_time_is_refused():
    graph = Graph.from_config(GraphConfig(topology="ring", rho=0.0), 4)
    plan = make_plan(graph, "decentralized_async_sgd", {"pivot": "center"}, 1, np.ones(4))
    with pytest.raises(ConfigError, match="graph.rho > 0"):
        DecentralizedAsyncSGD.make_nodes(np.zeros(3), 0.1, 1, plan, range(4))


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_four_ranks_on_a_ring_converge_over_mpiexec(tmp_path):
    path = tmp_path / "run.h5"
    args = ["run", "--method", "decentralized_async_sgd", "--output", str(path)] + sets(
        problem={"name": "quadratic", "dim": 30, "samples": 3, "lam": 0.5},
        method={"lr": 0.2},
        workers={"data_split": "partition", "compute": "sqrt", "compute_scale": 0.005},
        graph={"topology": "ring", "rho": 0.02},
        # Local steps, not seconds (about 1 s idle; in the simulator f - f* falls to 0.1% of its start):
        # a loaded machine makes fewer steps a second. The time only caps a hang.
        stop={"iterations": 200, "time": 60.0}, output={"snapshot_every": 0.2},
    )
    done = run_mpi(4, args, timeout=100)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["status"] == "completed"
    data = read(path, "metrics/suboptimality", "hops/source", "hops/dest", "hops/kind", "workers/grads")
    subopt = data["metrics/suboptimality"]
    assert np.all(np.isfinite(subopt)) and subopt[-1] < 0.3 * subopt[0], subopt[[0, -1]]
    assert set(zip(data["hops/source"].tolist(), data["hops/dest"].tolist())) == set(graph_links(path))
    assert set(data["hops/kind"].tolist()) == {7, 8}  # offers and shares
    assert np.all(data["workers/grads"] > 0)
