"""The public graph interface: the built-in graph and finite-sum baselines import only `asyncopt_mpi`'s public
names, and a decentralized method written from those names alone runs as a plugin in the simulator and over MPI."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import asyncopt_mpi as ao
from conftest import attrs, graph_links, read, registered_methods, run_mpi, sets, simulate

METHODS_DIR = Path(ao.__file__).parent / "methods"
WRITTEN_AGAINST_THE_API = ("relay_sgd", "gradient_tracking", "decentralized_async_sgd", "spider", "synthesis")


def non_public_uses(source: str) -> list[str]:
    """What `source` takes from asyncopt_mpi beyond its public names; other imports may be numpy or the standard library."""
    found = []
    aliases = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or module.startswith("asyncopt_mpi."):
                found.append(f"from {'.' * node.level}{module} import ...")
            elif module == "asyncopt_mpi":
                found += [alias.name for alias in node.names if alias.name not in ao.__all__]
            elif module.split(".")[0] not in {"numpy", "__future__", *sys.stdlib_module_names}:
                found.append(f"from {module} import ...")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "asyncopt_mpi":
                    aliases.add(alias.asname or alias.name)
                elif alias.name.split(".")[0] not in {"numpy", *sys.stdlib_module_names}:
                    found.append(f"import {alias.name}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if node.attr not in ao.__all__:
                found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("module", WRITTEN_AGAINST_THE_API)
def test_the_baselines_import_only_public_names(module):
    source = (METHODS_DIR / f"{module}.py").read_text()
    assert non_public_uses(source) == []
    assert "import asyncopt_mpi as ao" in source


def test_every_public_graph_name_resolves_and_says_what_it_is():
    for name in ("DecentralizedMethod", "Message", "MessageKind", "Net", "Plan", "Graph", "Tree", "NeighbourRoutes",
                 "PivotRecord", "method_class"):
        assert name in ao.__all__
        assert (getattr(ao, name).__doc__ or "").strip(), name
    assert ao.method_class("spider").name == "spider"
    with pytest.raises(ao.ConfigError, match=r"no method is registered as 'x+\.\.\.; registered: .*spider") as refused:
        ao.method_class("x" * 5000)
    assert len(str(refused.value)) < 1000  # the name is cut


# ---------------------------------------------------------------- a method written from the public names only

NEIGHBOUR_MODEL = max(ao.MessageKind) + 1  # this method's one message kind, after the built-ins'


class GossipNode:
    """Node i of decentralized parallel SGD: each round x_i = mean of its and its graph neighbours' x - lr g_i(x_i)."""

    def __init__(self, node: int, x0: np.ndarray, lr: float, batch: int, neighbours: list[int],
                 record: ao.PivotRecord):
        self.node, self.x, self.lr, self.batch = node, x0.copy(), lr, batch
        self.neighbours, self.record = neighbours, record
        self.round = 0
        self.gradient: np.ndarray | None = None
        self.inbox: dict[int, dict[int, np.ndarray]] = {}  # round -> neighbour -> its model

    def start(self, net: ao.Net) -> None:
        self._begin_round(net)

    def on_gradient(self, net: ao.Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        self.gradient = gradient.copy()
        self.record.job_done(net, self.node, self.round)
        self._end_round(net)

    def on_message(self, net: ao.Net, message: ao.Message) -> None:
        self.inbox.setdefault(message.version, {})[message.origin] = message.vector.copy()
        self.record.message(net, message.origin, message.kind, message.version)
        self._end_round(net)

    def on_link_free(self, net: ao.Net, to: int) -> None:
        pass

    def _begin_round(self, net: ao.Net) -> None:
        for neighbour in self.neighbours:
            net.send(ao.Message(NEIGHBOUR_MODEL, self.round, neighbour, self.node, self.x))
        net.compute(self.round, self.x, self.batch)

    def _end_round(self, net: ao.Net) -> None:
        models = self.inbox.get(self.round, {})
        if self.gradient is None or len(models) < len(self.neighbours):
            return
        del self.inbox[self.round]
        self.x = (self.x + sum(models.values())) / (1 + len(models)) - self.lr * self.gradient
        self.gradient = None
        self.round += 1
        self.record.round_done(net, self.x, self.round)
        self._begin_round(net)


class GossipSGD(ao.DecentralizedMethod):
    name = "public_api_gossip_sgd"
    description = "decentralized parallel SGD: each round a node averages its graph neighbours' models and steps"
    paper = "Lian et al., Can decentralized algorithms outperform centralized algorithms?, NeurIPS 2017"
    routes = ao.NeighbourRoutes

    @classmethod
    def make_nodes(cls, x0: np.ndarray, lr: float, batch: int, plan: ao.Plan,
                   nodes: range | list[int]) -> dict[int, Any]:
        record = ao.PivotRecord(plan.graph.n, batch)
        return {node: GossipNode(node, x0, lr, batch, plan.graph.neighbours(node), record) for node in nodes}


def plugin_file(tmp_path: Path) -> Path:
    """The method above as a plugin file: its imports, its source, its registration."""
    path = tmp_path / "gossip_plugin.py"
    parts = ["from __future__ import annotations", "from typing import Any", "import numpy as np",
             "import asyncopt_mpi as ao", "", f"NEIGHBOUR_MODEL = {int(NEIGHBOUR_MODEL)}", "",
             inspect.getsource(GossipNode), inspect.getsource(GossipSGD), "ao.register_method(GossipSGD)"]
    path.write_text("\n".join(parts) + "\n")
    return path


def test_the_plugin_file_uses_only_public_names(tmp_path):
    assert non_public_uses(plugin_file(tmp_path).read_text()) == []


def test_a_method_from_public_names_runs_on_the_graph_simulator(tmp_path):
    # A ring of four: the pivot's tree leaves one ring edge out, which only the direct routes use.
    with registered_methods(GossipSGD):
        path = simulate(tmp_path, GossipSGD.name, ["problem.name=quadratic", "problem.dim=10", "problem.noise=0.01",
                                                   "workers.n=4", 'graph.topology="ring"', "graph.rho=0.01",
                                                   "method.lr=0.3", "stop.time=4", "output.snapshot_every=0.5"])
    assert attrs(path)["status"] == "completed"
    data = read(path, "metrics/suboptimality", "hops/source", "hops/dest", "hops/kind", "events/kind",
                "trace/grads_used")
    subopt = data["metrics/suboptimality"]
    assert np.all(np.isfinite(subopt)) and subopt[-1] < 0.1 * subopt[0], subopt[[0, -1]]
    mine = data["hops/kind"] == NEIGHBOUR_MODEL
    assert mine.all()
    # every directed ring link carries models, and each message crosses one link: no hop is relayed
    assert set(zip(data["hops/source"].tolist(), data["hops/dest"].tolist())) == set(graph_links(path))
    assert NEIGHBOUR_MODEL in set(data["events/kind"].tolist())
    assert np.all(data["trace/grads_used"] == 4)  # a round: one job at each of the four nodes


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_a_method_from_public_names_runs_as_a_plugin_over_mpiexec(tmp_path):
    path = tmp_path / "run.h5"
    args = ["run", "--plugin", str(plugin_file(tmp_path)), "--method", GossipSGD.name, "--output", str(path)] + sets(
        problem={"name": "quadratic", "dim": 10, "noise": 0.01},
        method={"lr": 0.3},
        workers={"compute_scale": 0.005},
        graph={"topology": "line", "rho": 0.01},
        # steps, not seconds: a loaded machine makes fewer steps a second (60 take f - f* to ~1% in the simulator)
        stop={"iterations": 60, "time": 60.0}, output={"snapshot_every": 0.2},
    )
    done = run_mpi(3, args, timeout=100)
    assert done.returncode == 0, done.stderr
    assert attrs(path)["status"] == "completed"
    data = read(path, "metrics/suboptimality", "hops/kind", "trace/grads_used")
    subopt = data["metrics/suboptimality"]
    assert np.all(np.isfinite(subopt)) and subopt[-1] < 0.1 * subopt[0], subopt[[0, -1]]
    assert len(data["hops/kind"]) and np.all(data["hops/kind"] == NEIGHBOUR_MODEL)
    assert np.all(data["trace/grads_used"] == 2)
