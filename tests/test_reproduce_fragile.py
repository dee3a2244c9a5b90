"""`asyncopt reproduce fragile` and `amelie`: graph minibatch SGD steps from the graph's centre, and the small
scales write their reports with Fragile ahead of minibatch SGD under slow links and Amelie ahead of Fragile on
label-sorted data."""

from __future__ import annotations

import numpy as np

from asyncopt_mpi.config import GraphConfig
from asyncopt_mpi.graph import Graph, round_trips
from asyncopt_mpi.methods.decentralized import make_plan


def test_graph_minibatch_sgd_steps_from_the_centre_where_its_slowest_round_is_shortest():
    mesh = Graph.from_config(GraphConfig(topology="mesh", rho=1.0), 100)
    plan = make_plan(mesh, "minibatch_sgd", {}, 1, np.ones(100))
    # every worker answers every step: a 10 x 10 mesh's centre is 10 hops from the farthest worker (a corner
    # pivot, t*'s pick for a prefix of the workers, was 16 hops away: 38 s a step instead of 25)
    assert round_trips(mesh)[:, plan.pivot].max() == 20.0
    assert len(plan.participants) == 100
