"""Plans found without all-pairs distances (asyncopt_mpi/pivots.py) are the brute-force all-pairs plans, bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from asyncopt_mpi.config import GraphConfig
from asyncopt_mpi.graph import Graph, Tree, round_trips, t_star
from asyncopt_mpi.methods.decentralized import make_plan
from asyncopt_mpi.pivots import RoundTrips, order_free
from same_files import datasets, simulate


def reference_plan(graph: Graph, method: str, S: int, h: np.ndarray, rule: str = "tstar") -> dict:
    """make_plan as it was before pivots.py: every pair's round trip, t* at every candidate pivot."""
    trips = round_trips(graph)
    if method == "minibatch_sgd":
        pivot = int(np.argmin((trips + h[:, None]).max(axis=0)))
    elif rule == "center":
        pivot = int(np.argmin(trips.max(axis=0)))
    else:
        pivot = int(np.argmin([t_star(S, h, trips[:, j])[0] for j in range(graph.n)]))
    time, chosen = t_star(S, h, trips[:, pivot])
    return {"pivot": pivot, "t_star": time, "participants": chosen, "parent": Tree(graph, pivot).parent}


def random_graph(n: int, seed: int, times: str) -> Graph:
    """A connected random graph: a random tree plus about n extra links; times whole, fractional or one-way."""
    rng = np.random.default_rng(seed)
    pairs = {(int(rng.integers(node)), node) for node in range(1, n)}
    pairs |= {tuple(sorted(map(int, rng.choice(n, 2, replace=False)))) for _ in range(n)}
    links = {}
    for i, j in sorted(pairs):
        if times == "whole":
            links[(i, j)] = links[(j, i)] = float(rng.integers(1, 6))
        elif times == "fractional":
            links[(i, j)] = links[(j, i)] = float(rng.uniform(0.1, 3.0))
        else:
            links[(i, j)], links[(j, i)] = float(rng.uniform(0.1, 3.0)), float(rng.uniform(0.1, 3.0))
    return Graph(n, links, "edges")


def graphs():
    for topology, n, rho in (("mesh", 36, 1.0), ("mesh", 120, 0.1), ("mesh", 300, 10.0), ("torus", 49, 0.1),
                             ("torus", 144, 1.0), ("line", 30, 0.1), ("ring", 25, 1.0), ("star", 20, 1.0)):
        yield f"{topology}-{n}-rho{rho}", Graph.from_config(GraphConfig(topology=topology, rho=rho), n)
    for n, seed, kinds in ((30, 1, ("whole", "fractional", "one-way")), (90, 2, ("whole", "fractional", "one-way")),
                           (250, 3, ("whole",))):
        for times in kinds:
            yield f"random-{n}-{times}", random_graph(n, seed, times)


TIMES = {
    "sqrt": lambda n, rng: np.sqrt(np.arange(1, n + 1)),
    "equal": lambda n, rng: np.ones(n),
    "random": lambda n, rng: rng.uniform(0.5, 20.0, n),
}


@pytest.mark.parametrize("name,graph", list(graphs()), ids=[name for name, _ in graphs()])
def test_plans_equal_the_all_pairs_reference(name, graph):
    rng = np.random.default_rng(len(name))
    n = graph.n
    for times, S, method, rule in (("sqrt", n, "fragile_sgd", "tstar"), ("equal", max(n // 3, 1), "fragile_sgd", "tstar"),
                                   ("random", 4 * n, "amelie_sgd", "tstar"), ("random", 7, "fragile_sgd", "center"),
                                   ("sqrt", n, "minibatch_sgd", "tstar")):
        h = TIMES[times](n, rng)
        plan = make_plan(graph, method, {"S": S, "pivot": rule}, 1, h)
        want = reference_plan(graph, method, plan.S, h, rule)
        case = f"{name} {times} S={plan.S} {method} {rule}"
        assert plan.pivot == want["pivot"], case
        assert plan.t_star == want["t_star"] or (np.isinf(plan.t_star) and np.isinf(want["t_star"])), case
        assert np.array_equal(plan.tree.parent, want["parent"]), case
        if method == "fragile_sgd":
            assert np.array_equal(plan.participants, want["participants"]), case


def test_order_free_link_times():
    assert order_free(np.array([0.1, 0.1, 0.1]), 10_000)  # equal times: any order of a sum is the same float
    assert order_free(np.array([1.0, 2.0, 0.25]), 10_000)  # multiples of 1/4: exact sums
    assert not order_free(np.array([0.1, 0.2]), 100)
    assert not order_free(np.array([2.0**40, 1.0]), 10_000)  # whole numbers past 2^53 once summed


def test_round_trips_to_one_node_are_the_matrix_column():
    for graph in (random_graph(60, 5, "one-way"), random_graph(60, 6, "fractional"),
                  Graph.from_config(GraphConfig(topology="torus", rho=0.1), 64)):
        reference = round_trips(graph)
        trips_of = RoundTrips(graph)
        for j in (0, 17, 59):
            assert np.array_equal(trips_of.to(j), reference[:, j])


# Files written at b887210 (all-pairs planning, the tree's linear child search), digests of every dataset; the
# re-planning run re-plans (48 PLAN rows) on a star, whose centre routes to 11 neighbours.
BEFORE = {
    "fragile_sgd": ("fe9346539dc83925", [
        "problem.dim=20", "problem.noise=0.01", "problem.noise_type=zero_last", "workers.n=16", "workers.compute=sqrt",
        "graph.topology=mesh", "graph.rho=0.5", "method.S=8", "method.lr=0.5", "stop.time=30", "output.snapshot_every=5"]),
    "fragile_sgd-replan": ("033f00ba4ac19f11", [
        "problem.dim=10", "problem.noise=0.1", "workers.n=12", "workers.compute=uniform", "graph.topology=star",
        "graph.rho=0.3", "method.lr=0.2", "method.replan=drift", "stop.time=50"]),
    "amelie_sgd": ("3be3925a186566d5", [
        "problem.dim=20", "problem.noise=0.01", "workers.n=9", "workers.compute=sqrt", "graph.topology=torus",
        "graph.rho=1", "method.lr=0.3", "stop.time=30"]),
    "minibatch_sgd": ("14b2d7ff12a89a35", [
        "problem.dim=10", "problem.noise=0.01", "workers.n=10", "workers.compute=sqrt", "graph.topology=ring",
        "graph.rho=0.1", "method.lr=0.3", "stop.time=40"]),
}


def digest(path) -> str:
    hashed = hashlib.sha256()
    for name, value in sorted(datasets(path).items()):
        for part in (name, str(value.dtype), str(value.shape)):
            hashed.update(part.encode())
        hashed.update(value.tobytes())
    return hashed.hexdigest()[:16]


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_runs_write_the_files_of_all_pairs_planning(tmp_path, monkeypatch, case):
    """Bit for bit the files of b887210 on a fixed seed, with no n x n distance matrix made on the way."""

    def refused(self):
        raise AssertionError("a plan asked for every pair's distance")

    monkeypatch.setattr(Graph, "distances", refused)
    expected, overrides = BEFORE[case]
    path = tmp_path / "run.h5"
    assert simulate(path, case.split("-")[0], overrides) == 0
    assert digest(path) == expected
