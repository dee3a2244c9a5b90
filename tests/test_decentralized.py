"""Worker graphs and the decentralized methods in the simulator: topology, pivot, routing, hops, Fragile, Amelie."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.config import GraphConfig
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError, DataError
from asyncopt_mpi.graph import Graph, Tree, mesh_shape, read_edges, round_trips, t_star
from asyncopt_mpi.methods.decentralized import make_plan
from asyncopt_mpi.pivots import choose_pivot
from asyncopt_mpi.runtime.build import build_problem
from conftest import attrs, graph_attrs, graph_links, read, run_cli, simulate

QUADRATIC = ["problem.name=quadratic", "problem.dim=20"]


def graph(topology: str, n: int, rho: float = 1.0, edges: str = "") -> Graph:
    return Graph.from_config(GraphConfig(topology=topology, rho=rho, edges=edges), n)


def undirected(g: Graph) -> set[frozenset]:
    return {frozenset(edge) for edge in g.links}


# ---------------------------------------------------------------- topology


@pytest.mark.parametrize(
    "topology, n, count",
    [("line", 5, 4), ("ring", 5, 5), ("star", 5, 4), ("mesh", 9, 12), ("torus", 9, 18), ("mesh", 100, 180),
     ("torus", 100, 200)],
)
def test_topologies_have_the_expected_edges(topology, n, count):
    g = graph(topology, n, rho=2.5)
    assert len(undirected(g)) == count
    assert all(time == 2.5 for time in g.links.values())
    assert all((j, i) in g.links for i, j in g.links)  # both directions


def test_mesh_neighbours_are_grid_neighbours():
    g = graph("mesh", 12)
    assert mesh_shape(12) == (3, 4)
    assert g.neighbours(0) == [1, 4] and g.neighbours(5) == [1, 4, 6, 9]
    assert graph("torus", 12).neighbours(0) == [1, 3, 4, 8]


def test_edge_file_gives_per_link_times(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("# i j time\n0 1 2.0\n1 0 3.0\n1 2\n")
    g = graph("edges", 3, rho=0.5, edges=str(path))
    assert g.links == {(0, 1): 1.0, (1, 0): 1.5, (1, 2): 0.5, (2, 1): 0.5}
    np.testing.assert_allclose(g.distances(), [[0, 1.0, 1.5], [1.5, 0, 0.5], [2.0, 0.5, 0]])


@pytest.mark.parametrize("text, where", [("0 1\n1 x\n", ":2:"), ("0 5\n", ":1:"), ("0 1 -1\n", ":1:"), ("", "no edges")])
def test_bad_edge_files_name_file_and_line(tmp_path, text, where):
    path = tmp_path / "edges.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=where):
        read_edges(str(path), 3)


def test_a_disconnected_graph_is_refused(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("0 1\n2 3\n")
    with pytest.raises(ConfigError, match="not connected"):
        graph("edges", 4, edges=str(path))


# ---------------------------------------------------------------- pivot and tree


def test_t_star_and_pivot_match_a_hand_computation():
    # Line 0 - 1 - 2, rho = 3 per link, h = (10, 1, 0.5), s = 4.
    # Pivot 0: r = (0, 6, 12), max(r, h) = (10, 6, 12): prefixes give max(6, 4/1) = 6, then 10, 12 -> 6.
    # Pivot 1: r = (6, 0, 6), (10, 1, 6): max(1, 4) = 4, max(6, 4/3) = 6, 10 -> 4.
    # Pivot 2: r = (12, 6, 0), (12, 6, 0.5): max(0.5, 4/2) = 2 -> 2, using worker 2 alone.
    g = graph("line", 3, rho=3.0)
    h = np.array([10.0, 1.0, 0.5])
    trips = round_trips(g)
    assert [t_star(4.0, h, trips[:, j])[0] for j in range(3)] == [6.0, 4.0, 2.0]
    assert choose_pivot(g, 4.0, h) == 2
    assert choose_pivot(g, 4.0, h, "center") == 1
    time, chosen = t_star(4.0, h, trips[:, 2])
    assert time == 2.0 and chosen.tolist() == [2]
    plan = make_plan(g, "fragile_sgd", {"S": 4, "pivot": "tstar"}, 1, h)
    assert plan.pivot == 2 and plan.participants.tolist() == [2] and plan.tree.parent.tolist() == [1, 2, -1]


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_t_star_counts_gradients_whatever_the_batch(batch):
    # Four equal workers (1 s a gradient) on a line with free links, S = 8 gradients: all four
    # collect 8 gradients in 2 s with any batch. With h = tau * batch and S counted as jobs, a
    # batch of 2 would have given max(2, 8 / (4/2)) = 4 s (and 8 s for a batch of 4).
    g = graph("line", 4, rho=0.0)
    plan = make_plan(g, "fragile_sgd", {"S": 8, "pivot": "tstar"}, batch, np.ones(4))
    assert plan.t_star == pytest.approx(max(2.0, float(batch)))
    # batch 4: one job takes 4 s, so two workers already give 8 gradients by then (ties: fewest workers)
    assert plan.participants.tolist() == ([0, 1, 2, 3] if batch <= 2 else [0, 1])


def test_tree_routes_along_edges_only():
    g = graph("mesh", 16)
    tree = Tree(g, 5)
    edges = set(g.links)
    for source in range(16):
        for dest in range(16):
            path = tree.path(source, dest)
            assert path[0] == source and path[-1] == dest and len(set(path)) == len(path)
            assert all((a, b) in edges for a, b in zip(path, path[1:]))
    # The tree is a shortest-path tree: depth = grid distance to the root (1, 1).
    assert tree.depth[15] == 4 and tree.depth[0] == 2


# ---------------------------------------------------------------- simulator


def mesh_run(tmp_path, method: str, extra: list[str] = (), name: str = "run"):
    # Few snapshots: at the default rate they cost three times the run's events.
    common = QUADRATIC + ["problem.noise=0.01", "workers.n=9", "workers.compute=sqrt", "workers.compute_scale=1.0",
                          "graph.topology=mesh", "graph.rho=2.0", "stop.time=400", "method.lr=0.5",
                          "output.snapshot_every=20"]
    return simulate(tmp_path, method, common + list(extra), name=name)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fragile_sgd", "amelie_sgd", "minibatch_sgd", "async_sgd"])
def test_messages_cross_edges_one_hop_at_a_time_each_taking_rho(tmp_path, method):
    path = mesh_run(tmp_path, method)
    data = read(path, "hops/queued", "hops/start", "hops/arrived", "hops/source", "hops/dest", "hops/rho")
    links = graph_links(path)
    pairs = list(zip(data["hops/source"].tolist(), data["hops/dest"].tolist()))
    assert len(pairs) > 50
    assert all(pair in links for pair in pairs), "a message skipped an edge"
    np.testing.assert_allclose(data["hops/rho"], [links[pair] for pair in pairs])
    np.testing.assert_allclose(data["hops/arrived"] - data["hops/start"], data["hops/rho"], atol=1e-9)
    assert np.all(data["hops/start"] >= data["hops/queued"] - 1e-12)
    # A link carries one message at a time: per link, transmissions do not overlap.
    for pair in set(pairs):
        mine = np.flatnonzero([p == pair for p in pairs])
        start, arrived = data["hops/start"][mine], data["hops/arrived"][mine]
        order = np.argsort(start)
        assert np.all(start[order][1:] >= arrived[order][:-1] - 1e-9)
    assert attrs(path)["status"] == "completed"


@pytest.mark.slow
def test_async_gradients_are_routed_to_the_pivot_and_points_back(tmp_path):
    path = mesh_run(tmp_path, "async_sgd", ["graph.topology=line"], name="line")
    data = read(path, "hops/source", "hops/dest", "hops/kind", "events/worker")
    pivot = int(graph_attrs(path)["pivot"])
    # On a line every gradient of the far end crosses every edge between it and the pivot.
    assert set(data["events/worker"]) == set(range(9))
    far = 0 if pivot >= 4 else 8
    assert np.any((data["hops/source"] == far) & (data["hops/kind"] == 2))
    assert np.any((data["hops/dest"] == far) & (data["hops/kind"] == 1))


@pytest.mark.slow
def test_fragile_never_mixes_gradients_of_two_points(tmp_path):
    # Noiseless gradients: a step that used only gradients at x_k is exactly x_k - lr grad f(x_k).
    # A snapshot after every event: a shorter run (some 35 steps).
    path = mesh_run(tmp_path, "fragile_sgd", ["problem.noise=0", "output.snapshot_every=0", "method.S=5",
                                              "stop.time=180"])
    data = read(path, "snapshots/x", "snapshots/iteration", "events/delay", "events/accepted", "trace/grads_used")
    config = load_config(None, QUADRATIC + ["stop.time=1"], backend="sim")
    problem = build_problem(config)
    iterations, xs = data["snapshots/iteration"], data["snapshots/x"]
    checked = 0
    for k in range(len(iterations) - 1):
        if iterations[k + 1] == iterations[k] + 1:
            expected = xs[k] - 0.5 * problem.full_grad(xs[k])
            np.testing.assert_allclose(xs[k + 1], expected, rtol=0, atol=1e-12)
            checked += 1
    assert checked > 20
    accepted = data["events/accepted"].astype(bool)
    assert np.all(data["events/delay"][accepted] == 0)
    assert np.any(~accepted) and np.all(data["events/delay"][~accepted] > 0)  # stale sums arrived and were dropped
    assert np.all(data["trace/grads_used"] >= 5)


@pytest.mark.slow
def test_fragile_leaves_out_workers_beyond_t_star(tmp_path):
    # With S = 16 the eight equal workers make t* = 16/8 = 2 s; a worker 100x slower never computes.
    times = [1.0] * 8 + [100.0]
    path = mesh_run(tmp_path, "fragile_sgd", [f"workers.compute_times={times}", "method.S=16", "graph.rho=0.1"])
    grads = read(path, "workers/grads")["workers/grads"]
    assert grads[8] == 0 and np.all(grads[:8] > 0)


@pytest.mark.slow
def test_fragile_beats_minibatch_on_the_papers_mesh_with_slow_links(tmp_path):
    # 100 workers on a 10 x 10 mesh, d = 1000, h_i = sqrt(i), rho = 10 (the paper's slow-communication set-up).
    common = ["problem.name=quadratic", "problem.dim=1000", "problem.noise=0.001", "problem.noise_type=zero_last",
              "workers.n=100", "workers.compute=sqrt", "workers.compute_scale=1.0", "graph.topology=mesh",
              "graph.rho=10.0", "stop.time=30000", "output.snapshot_every=250", "stop.target=0.02"]
    reached = {}
    for method, lr in (("fragile_sgd", 1.0), ("minibatch_sgd", 1.0)):
        path = simulate(tmp_path, method, common + [f"method.lr={lr}"], name=method)
        info = attrs(path)
        reached[method] = read(path, "snapshots/time")["snapshots/time"][-1] if info["stop_reason"].startswith("target") \
            else np.inf
    assert reached["fragile_sgd"] < 0.8 * reached["minibatch_sgd"], reached


@pytest.mark.slow
def test_amelie_beats_fragile_on_heterogeneous_data(tmp_path):
    # Three classes sorted across workers: Fragile's pivot uses the few workers near it (a few
    # classes), Amelie weighs every worker's data equally.
    common = ["problem.name=logistic", "problem.samples=2000", "problem.dim=20", "problem.classes=3", "workers.n=9",
              "workers.data_split=by_label", "workers.compute_profile=linear", "workers.compute_scale=0.02",
              "method.lr=2.0", "graph.topology=mesh", "graph.rho=0.05", "stop.time=60", "output.snapshot_every=2"]
    losses = {}
    for method in ("amelie_sgd", "fragile_sgd"):
        data = read(simulate(tmp_path, method, common, name=method), "metrics/loss", "metrics/time")
        losses[method] = data["metrics/loss"][data["metrics/time"] >= 50].mean()
    assert losses["amelie_sgd"] < 0.8 * losses["fragile_sgd"], losses


@pytest.mark.slow
def test_amelie_steps_only_with_every_worker_reporting(tmp_path):
    path = mesh_run(tmp_path, "amelie_sgd", ["method.batch=1"])
    grads_used = read(path, "trace/grads_used")["trace/grads_used"]
    assert len(grads_used) > 5 and np.all(grads_used >= 9)  # S = max(.., n) and every s_i >= 1


@pytest.mark.slow
def test_graph_runs_are_reproducible(tmp_path):
    first = read(mesh_run(tmp_path, "fragile_sgd", name="a"), "trace/time", "snapshots/x", "hops/arrived")
    second = read(mesh_run(tmp_path, "fragile_sgd", name="b"), "trace/time", "snapshots/x", "hops/arrived")
    for name in first:
        assert np.array_equal(first[name], second[name])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--method", "fragile_sgd"], "graph.topology: fragile_sgd runs on a worker graph"),
        (["--method", "rennala_sgd", "--set", "graph.topology=\"mesh\""], "graph.topology: only decentralized"),
        (["--method", "fragile_sgd", "--set", "graph.topology=\"hypercube\""], "graph.topology: 'hypercube'"),
        (["--method", "fragile_sgd", "--set", "graph.topology=\"edges\"", "--set", "graph.edges=\"/nonexistent\""],
         "graph.edges: edge-list file not found"),
        (["--method", "fragile_sgd", "--set", "graph.topology=\"mesh\"", "--set", "method.pivot=\"middle\""],
         "method.pivot"),
        (["--method", "fragile_sgd", "--set", "graph.topology=\"mesh\"", "--set", "graph.rho=-1"], "graph.rho"),
    ],
)
def test_bad_graph_configs_exit_2_naming_the_key(tmp_path, overrides, message):
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=4", "--set", "stop.time=1",
                    "--output", str(tmp_path / "x.h5"), *overrides])
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_graph_run_refuses_resume_and_keeps_its_file(tmp_path):
    path = mesh_run(tmp_path, "fragile_sgd")
    before = path.read_bytes()
    done = run_cli(["run", "--backend", "sim", "--resume", str(path), "--set", "stop.time=800"])
    assert done.returncode == 2 and "cannot be resumed yet" in done.stderr
    assert path.read_bytes() == before


def test_a_single_worker_graph_is_its_own_pivot(tmp_path):
    path = simulate(tmp_path, "fragile_sgd", QUADRATIC + ["workers.n=1", "graph.topology=mesh", "stop.time=50",
                                                         "method.S=2"])
    assert int(graph_attrs(path)["pivot"]) == 0 and len(read(path, "trace/iteration")["trace/iteration"]) > 5
