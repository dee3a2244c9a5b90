"""Decentralized methods as per-node policies over a worker graph: Fragile SGD, Amelie SGD and graph baselines.

Tyurin & Richtarik, On the optimal time complexities in decentralized stochastic
asynchronous optimization, NeurIPS 2024 (seeds 001, 004). There is no server in the math:
each worker runs a node policy that reacts to its own finished gradients, to messages from
its tree neighbours and to its uplink becoming free. The pivot steps and reports each step
(the runtime records it). A node talks to the runtime through `Net`; policies never import
MPI, so the simulator and the MPI runtime run the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError
from ..graph import Graph, Tree
from ..inputs import shown
from ..pivots import RoundTrips, best_eccentricity, choose_pivot
from . import register_method
from .base import Method, Result, Server
from .collect import batch_from_noise
from .replan import REPLAN_PARAMS, JobClock, Replanning, check_replan, decode_plan, encode_plan


class Kind(IntEnum):
    """What a message between nodes carries (public as `asyncopt_mpi.MessageKind`).

    The runtime reads one kind: a node's `net.arrived(origin, GRADS, version, count, accepted)`
    counts `count` gradients (/metrics grads, stop.gradients). Every kind labels its /events and
    /hops rows (int8); 0 is reserved, 1-11 are the built-in methods', a plugin's own kinds take 12 to 127.
    """

    POINT = 1  # x at `version`, travelling down the tree
    GRADS = 2  # a sum of `count` gradients at `version`
    PARTIAL = 3  # Amelie: sum over a subtree of g_i / s_i, with `weight` = sum of 1/s_i over `nodes` nodes
    # Re-planning (methods/replan.py; 4-8 are gradient_tracking's, relay_sgd's and decentralized_async_sgd's):
    PLAN = 9  # the point at `version` and the new plan (replan.encode_plan), `count` numbers the plans; an event row
    TIMES = 10  # measured seconds per gradient, pairs (node, seconds), towards the pivot when no result carries them
    PIVOT = 11  # an event row only: the new pivot of a re-plan


MessageKind = Kind  # the public name


@dataclass(slots=True)
class Message:
    """One message between nodes: `net.send` routes it to node `dest` hop by hop, each hop paying its link's rho.

    The runtime carries every field; what `count`, `weight` and `nodes` mean is the method's.
    """

    kind: int  # a MessageKind, or a method's own number (12 to 127)
    version: int
    dest: int
    origin: int
    vector: np.ndarray
    count: int = 0
    weight: float = 0.0
    nodes: int = 0


class Net(Protocol):
    """What a node policy may use of the runtime (public as `asyncopt_mpi.Net`): the same in the simulator and over MPI.

    A computation started with `compute` comes back as the policy's `on_gradient(net, version,
    gradient, n_grads)` (`gradient`: the mean of `batch` stochastic gradients of the node's own f_i at x).
    Only the pivot's `publish` and `arrived` are recorded (the results file follows the pivot's model).
    """

    node: int
    parent: int  # -1 at the pivot
    children: list[int]

    def now(self) -> float: ...
    def send(self, message: Message) -> None: ...  # routed hop by hop (the method's `routes`); the vector is copied
    def link_free(self, to: int) -> bool: ...  # nothing queued or in flight on the link to neighbour `to`
    def compute(self, version: int, x: np.ndarray, batch: int) -> None: ...  # replaces a running computation
    def publish(self, x: np.ndarray, version: int, grads_used: int) -> None: ...  # the pivot stepped
    def arrived(self, origin: int, kind: int, version: int, count: int, accepted: bool) -> None: ...  # at the pivot
    def follow(self, tree: Tree) -> None: ...  # a re-plan: parent, children and routing from `tree` on


@dataclass
class Plan:
    """The graph, the pivot, its tree, the workers that compute, and the step threshold."""

    graph: Graph
    tree: Tree
    pivot: int
    participants: np.ndarray
    S: int
    t_star: float
    times: np.ndarray  # the seconds per gradient the plan was made with
    options: dict[str, Any]  # the method's options it was made from (a re-plan uses them again)


def _broadcast(net: Net, x: np.ndarray, version: int) -> None:
    for child in net.children:
        net.send(Message(Kind.POINT, version, child, net.node, x))


class TreeNode:
    """What Fragile and Amelie nodes share: the newest point comes down the tree and is passed on,
    results for it go up, results for an older point are dropped (never mixed).

    With `replanning` (method.replan = "drift", methods/replan.py) a node also measures its jobs,
    reports drifted times towards the pivot, and follows the plans the pivot sends down.
    """

    def __init__(self, node: int, x0: np.ndarray, lr: float, S: int, batch: int, participates: bool = True,
                 plan: Plan | None = None, replanning: Replanning | None = None):
        self.node = node
        self.x = x0.copy()
        self.version = 0
        self.lr = lr
        self.S = S
        self.batch = batch
        self.participates = participates
        self.early: list[Message] = []  # results for a newer point: a re-plan reached their sender first
        self.replanning = replanning
        if replanning is not None:
            self.plan = plan
            self.pivot = plan.pivot
            self.participants = plan.participants
            self.known = plan.times.copy()  # seconds per gradient of every node, as the pivot knows them
            self.clock = JobClock(replanning, float(self.known[node]))
            self.plan_number = 0
            self.waiting_plans: dict[int, Message] = {}  # plans that overtook an earlier one
            self.drift_heard = False  # at the pivot: a node's time drifted since the last plan
            self.reports: dict[int, float] = {}  # measured times on their way to the pivot (node -> seconds)

    def start(self, net: Net) -> None:
        if self.participates:
            self._compute(net)

    def on_message(self, net: Net, message: Message) -> None:
        kind = message.kind
        if kind == Kind.POINT:
            if message.version > self.version:
                self.x[:] = message.vector
                self._moved_to(net, message.version)
            return
        if kind == Kind.PLAN:
            self._plan_arrived(net, message)
            return
        if kind == Kind.TIMES:
            self._keep_reports(net, message.vector)
            self._report(net)
            return
        if message.vector.size > self.x.size:  # measured times riding on a result
            self._keep_reports(net, message.vector[self.x.size :])
            message.vector = message.vector[: self.x.size]
        if message.version > self.version:
            message.vector = message.vector.copy()  # the runtime may reuse its receive buffer
            self.early.append(message)
            return
        fresh = message.version == self.version
        if net.parent < 0:
            net.arrived(message.origin, message.kind, message.version, message.count, fresh)
        if fresh:
            self._take(net, message)
        if self.replanning is not None and self.reports:
            self._report(net)

    def on_link_free(self, net: Net, to: int) -> None:
        if to == net.parent:
            self._flush(net)
            if self.replanning is not None and self.reports:
                self._report(net)

    def _compute(self, net: Net) -> None:
        if self.replanning is not None:
            self.clock.start(net.now())
            self._check_drift(net)
        net.compute(self.version, self.x, self.batch)

    def _job_done(self, net: Net) -> None:
        """The running job finished (whatever its point): measure it."""
        if self.replanning is not None:
            self.clock.finish(net.now())
            self._check_drift(net)

    def _check_drift(self, net: Net) -> None:
        estimate = self.clock.drifted()
        if estimate is not None:
            self._keep_reports(net, np.array([self.node, estimate]))
            self._report(net)

    def _keep_reports(self, net: Net, pairs: np.ndarray) -> None:
        """Measured times (node, seconds per gradient): the pivot knows them from now, other nodes pass them up."""
        for origin, seconds in pairs.reshape(-1, 2):
            if net.parent < 0:
                self.known[int(origin)] = seconds
                self.drift_heard = True
            else:
                self.reports[int(origin)] = float(seconds)

    def _report(self, net: Net) -> None:
        """Reports ride on the next result up; with no result to send, alone once the link is free."""
        if net.parent < 0 or not self.reports or not net.link_free(net.parent):
            return
        self._flush(net)
        if self.reports:
            net.send(Message(Kind.TIMES, self.version, net.parent, self.node, self._with_reports(_NO_VECTOR)))

    def _with_reports(self, vector: np.ndarray) -> np.ndarray:
        """A result's vector with the pending reports appended (they leave with it)."""
        if self.replanning is None or not self.reports:
            return vector
        pairs = np.array([value for item in self.reports.items() for value in item], dtype=float)
        self.reports.clear()
        return np.concatenate([vector, pairs])

    def _moved_to(self, net: Net, version: int, grads_used: int = -1, broadcast: bool = True) -> None:
        """x is now point `version` (the pivot's own step when grads_used >= 0): start over there."""
        self.version = version
        self._reset()
        if grads_used >= 0:
            plan = self._replan(net) if self.replanning is not None and self.drift_heard else None
            net.publish(self.x, version, grads_used)
            if plan is not None:
                self._plan_arrived(net, plan)  # sends the point down with the plan
                broadcast = False
        if broadcast:
            _broadcast(net, self.x, version)
        early, self.early = self.early, []
        for message in early:
            if message.version >= version:
                self.on_message(net, message)
        if self.participates and self.version == version:
            self._compute(net)

    def _replan(self, net: Net) -> Message | None:
        """At the pivot's step: a new plan from the known times, as a PLAN message, if pivot or participants change."""
        self.drift_heard = False
        rule = self.replanning
        plan = make_plan(self.plan.graph, rule.method_name, rule.options, rule.batch, self.known)
        if plan.pivot == self.pivot and np.array_equal(plan.participants, self.participants):
            return None
        chosen = set(plan.participants.tolist())
        for node in range(self.plan.graph.n):  # recorded with this step, before the file sees it
            net.arrived(node, Kind.PLAN, self.version - 1, 0, node in chosen)
        net.arrived(plan.pivot, Kind.PIVOT, self.version - 1, 0, True)
        vector = encode_plan(self.x, plan.pivot, plan.participants, self.known)
        return Message(Kind.PLAN, self.version, -1, self.node, vector, count=self.plan_number + 1)

    def _plan_arrived(self, net: Net, message: Message) -> None:
        """Plans are followed in the order the pivot made them (a later one may come first along a newer tree)."""
        if message.count <= self.plan_number:
            return
        message.vector = message.vector.copy()
        self.waiting_plans[message.count] = message
        while self.plan_number + 1 in self.waiting_plans:
            self._follow(net, self.waiting_plans.pop(self.plan_number + 1))

    def _follow(self, net: Net, message: Message) -> None:
        """Pass the plan on down the tree it replaces, then switch to it and to its point."""
        for child in net.children:
            net.send(Message(Kind.PLAN, message.version, child, self.node, message.vector, count=message.count))
        x, pivot, participants, known = decode_plan(message.vector, self.x.size)
        self.plan_number = message.count
        self.known = known
        self.clock.known = float(known[self.node])
        self.participants = participants
        was_computing = self.participates
        self.participates = bool(np.isin(self.node, participants))
        moved = pivot != self.pivot
        if moved:
            self.pivot = pivot
            net.follow(plan_tree(self.plan.graph, self.replanning.method_name, pivot))
        if message.version > self.version:
            self.x[:] = x
            self._moved_to(net, message.version, broadcast=False)
            return
        # This node is at the plan's point or past it: its sums stay, new children may lack that point.
        if moved:
            self._children_changed(net)
        _broadcast(net, self.x, self.version)
        if self.participates and not was_computing:
            self._compute(net)

    def _children_changed(self, net: Net) -> None:
        """The tree changed under this node's sums for its point (Fragile's go to the new parent as they are)."""

    def _reset(self) -> None:
        raise NotImplementedError

    def _take(self, net: Net, message: Message) -> None:
        raise NotImplementedError

    def _flush(self, net: Net) -> None:
        raise NotImplementedError


_NO_VECTOR = np.empty(0)


class FragileNode(TreeNode):
    """Fragile SGD at one node: compute at the newest point, sum (gradients, count) towards the pivot.

    The pivot steps x <- x - (gamma / count) * sum once count >= S. With `one_job = True`
    every node computes one job per point (minibatch SGD routed over the tree).
    """

    def __init__(self, node: int, x0: np.ndarray, lr: float, S: int, batch: int, participates: bool,
                 one_job: bool = False, plan: Plan | None = None, replanning: Replanning | None = None):
        super().__init__(node, x0, lr, S, batch, participates, plan, replanning)
        self.one_job = one_job
        self.sum = np.zeros_like(self.x)
        self.count = 0

    def on_gradient(self, net: Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        self._job_done(net)
        if version != self.version:
            return
        if net.parent < 0:
            net.arrived(self.node, Kind.GRADS, version, n_grads, True)
        self._add(net, n_grads * gradient, n_grads)  # a job's gradient is a batch mean
        if self.participates and not self.one_job and version == self.version:
            self._compute(net)

    def _take(self, net: Net, message: Message) -> None:
        self._add(net, message.vector, message.count)

    def _add(self, net: Net, vector: np.ndarray, count: int) -> None:
        self.sum += vector
        self.count += count
        if net.parent >= 0:
            self._flush(net)
        elif self.count >= self.S:
            self.x -= (self.lr / self.count) * self.sum
            self._moved_to(net, self.version + 1, self.count)

    def _flush(self, net: Net) -> None:
        if self.count and net.link_free(net.parent):
            net.send(Message(Kind.GRADS, self.version, net.parent, self.node, self._with_reports(self.sum),
                             count=self.count))
            self._reset()

    def _reset(self) -> None:
        self.sum[:] = 0.0
        self.count = 0


class AmelieNode(TreeNode):
    """Amelie SGD at one node (heterogeneous data): own sum g_i of s_i gradients at the newest point.

    A node sends up the sum over its subtree of g_i / s_i and of b = 1/s_i (the latest value
    of each child replaces the previous one). The pivot steps with g = (1/n) sum_i g_i / s_i
    once every node has reported and n / b >= S / n (Malenia's harmonic rule).
    """

    def __init__(self, node: int, x0: np.ndarray, lr: float, S: int, batch: int, n_nodes: int,
                 plan: Plan | None = None, replanning: Replanning | None = None):
        super().__init__(node, x0, lr, S, batch, True, plan, replanning)
        self.n_nodes = n_nodes
        self.own = np.zeros_like(self.x)
        self.own_count = 0
        self.parts: dict[int, Message] = {}  # each child's latest PARTIAL at this version
        self.part_nodes = 0  # sum of their `nodes` (kept as they change: the pivot checks it at every event)
        self.dirty = False
        self.total = np.zeros_like(self.x)

    def on_gradient(self, net: Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        self._job_done(net)
        if version != self.version:
            return
        self.own += n_grads * gradient
        self.own_count += n_grads
        if net.parent < 0:
            net.arrived(self.node, Kind.GRADS, version, n_grads, True)
        self._changed(net)
        if version == self.version:
            self._compute(net)

    def _take(self, net: Net, message: Message) -> None:
        message.vector = message.vector.copy()
        replaced = self.parts.get(message.origin)
        self.part_nodes += message.nodes - (replaced.nodes if replaced is not None else 0)
        self.parts[message.origin] = message
        self._changed(net)

    def _aggregate(self) -> tuple[np.ndarray, float, int, int]:
        """Over this node's subtree: sum of g_i / s_i, sum of 1/s_i, reporting nodes, gradients."""
        total = self.total
        if self.own_count:
            np.multiply(self.own, 1.0 / self.own_count, out=total)
        else:
            total[:] = 0.0
        weight = 1.0 / self.own_count if self.own_count else 0.0
        nodes = 1 if self.own_count else 0
        count = self.own_count
        for part in self.parts.values():
            total += part.vector
            weight += part.weight
            nodes += part.nodes
            count += part.count
        return total, weight, nodes, count

    def _changed(self, net: Net) -> None:
        self.dirty = True
        if net.parent >= 0:
            self._flush(net)
            return
        # The vectors are summed only for a step: the pivot hears from its children at every event.
        if (1 if self.own_count else 0) + self.part_nodes != self.n_nodes:
            return
        if self.n_nodes / self._weight() >= self.S / self.n_nodes:
            total, _, _, count = self._aggregate()
            self.x -= (self.lr / self.n_nodes) * total
            self._moved_to(net, self.version + 1, count)

    def _weight(self) -> float:
        """_aggregate's sum of 1/s_i, in its order (the same float)."""
        weight = 1.0 / self.own_count if self.own_count else 0.0
        for part in self.parts.values():
            weight += part.weight
        return weight

    def _flush(self, net: Net) -> None:
        if not self.dirty or not net.link_free(net.parent):
            return
        total, weight, nodes, count = self._aggregate()
        if nodes:
            net.send(Message(Kind.PARTIAL, self.version, net.parent, self.node, self._with_reports(total), count=count,
                             weight=weight, nodes=nodes))
            self.dirty = False

    def _children_changed(self, net: Net) -> None:
        """Partials of nodes that are no longer children would count their subtrees twice: dropped."""
        self.parts = {child: part for child, part in self.parts.items() if child in net.children}
        self.part_nodes = sum(part.nodes for part in self.parts.values())
        self.dirty = True
        if net.parent >= 0:
            self._flush(net)

    def _reset(self) -> None:
        self.own[:] = 0.0
        self.own_count = 0
        self.parts.clear()
        self.part_nodes = 0
        self.dirty = False


class AsyncPivotNode:
    """Asynchronous SGD at the pivot: every gradient is routed to the pivot, applied on arrival,
    and the new point is routed back to the worker that computed it."""

    def __init__(self, node: int, x0: np.ndarray, lr: float, batch: int, pivot: int):
        self.node = node
        self.x = x0.copy()
        self.version = 0
        self.lr = lr
        self.batch = batch
        self.pivot = pivot

    def start(self, net: Net) -> None:
        net.compute(self.version, self.x, self.batch)

    def on_gradient(self, net: Net, version: int, gradient: np.ndarray, n_grads: int) -> None:
        if self.node == self.pivot:
            self._apply(net, gradient, version, n_grads, self.node)
            net.compute(self.version, self.x, self.batch)
        else:
            net.send(Message(Kind.GRADS, version, self.pivot, self.node, gradient, count=n_grads))

    def on_message(self, net: Net, message: Message) -> None:
        if message.kind == Kind.POINT:
            self.x[:] = message.vector
            self.version = message.version
            net.compute(self.version, self.x, self.batch)
        else:
            self._apply(net, message.vector, message.version, message.count, message.origin)
            net.send(Message(Kind.POINT, self.version, message.origin, self.node, self.x))

    def on_link_free(self, net: Net, to: int) -> None:
        pass

    def _apply(self, net: Net, gradient: np.ndarray, version: int, n_grads: int, origin: int) -> None:
        net.arrived(origin, Kind.GRADS, version, n_grads, True)
        self.x -= self.lr * gradient
        self.version += 1
        net.publish(self.x, self.version, n_grads)


# ---------------------------------------------------------------- methods and plans

PIVOT_RULES = ("tstar", "center")


def _check_pivot(options: dict[str, Any], rules: tuple[str, ...]) -> None:
    rule = str(options["pivot"])
    if rule not in rules and not rule.isdigit():
        raise ConfigError(f"method.pivot: {shown(rule)} is not accepted; accepted: {', '.join(rules)} or a worker "
                          "index (the node whose model the file records)")


class DecentralizedMethod(Method):
    """A method whose math runs at the nodes of a worker graph (`[graph]`): `asyncopt_mpi.DecentralizedMethod`.

    A subclass registers like any method and builds one policy per node in `make_nodes`. A node
    policy has four hooks, each given the node's `Net`: `start(net)`, `on_gradient(net, version,
    gradient, n_grads)` when its computation finishes, `on_message(net, message)` when a `Message`
    for it arrives (the vector is the runtime's buffer: copy what you keep), and
    `on_link_free(net, to)` when the link to neighbour `to` is free again (nothing queued or in flight). Messages
    follow `routes` (a `Tree` subclass built from the graph and the pivot, `method.pivot`: the graph
    centre or a worker index); the pivot's `net.publish` is what the results file records.
    """

    decentralized = True
    params: dict[str, Any] = {"pivot": "center"}
    routes: type[Tree] = Tree

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        _check_pivot(options, ("center",))

    @classmethod
    def make_nodes(cls, x0: np.ndarray, lr: float, batch: int, plan: Plan, nodes: range | list[int]) -> dict[int, Any]:
        """The policy of each of `nodes` (an MPI rank runs one, the simulator all), each starting from x0."""
        raise NotImplementedError

    def start(self, server: Server) -> None:  # the graph runtime drives the nodes instead
        raise NotImplementedError

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        raise NotImplementedError


class PlannedMethod(DecentralizedMethod):
    """Fragile and Amelie: the pivot's plan, made once or again when measured times drift (methods/replan.py)."""

    params = {"S": 0, "sigma2": 0.0, "eps": 0.0, "pivot": "tstar", **REPLAN_PARAMS}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        _check_pivot(options, PIVOT_RULES)
        if options["S"] < 0:
            raise ConfigError(f"method.S: must be >= 0 (0: from sigma2/eps, else the number of workers), got {options['S']}")
        check_replan(options)


@register_method
class FragileSGD(PlannedMethod):
    name = "fragile_sgd"
    description = ("decentralized: workers sum gradients at the newest point up a spanning tree to a pivot chosen by "
                   "the t* rule, which steps at S; too slow or too far workers sit out")
    paper = "Tyurin & Richtarik, Optimal time complexities in decentralized stochastic asynchronous optimization, NeurIPS 2024"


@register_method
class AmelieSGD(PlannedMethod):
    name = "amelie_sgd"
    objective = "worker_mean"  # minimises (1/n) sum_i f_i over the shards (asyncopt_mpi.objective)
    description = ("decentralized, heterogeneous data: every worker's g_i / s_i and 1/s_i go up the tree; the pivot "
                   "steps when the harmonic mean of s_i reaches S / n")
    paper = "Tyurin & Richtarik, Optimal time complexities in decentralized stochastic asynchronous optimization, NeurIPS 2024"


GRAPH_BASELINES = ("minibatch_sgd", "async_sgd")


def uses_graph(method_name: str, topology: str) -> bool:
    """Whether a run goes to the graph runtime: a decentralized method, or a baseline with a [graph]."""
    from . import METHODS

    if getattr(METHODS[method_name], "decentralized", False):
        return True
    return topology != "none" and method_name in GRAPH_BASELINES


def make_plan(graph: Graph, method_name: str, options: dict[str, Any], batch: int, expected_times: np.ndarray) -> Plan:
    """Pivot, tree, participants and S for a run on `graph` (again on measured times: methods/replan.py)."""
    n = graph.n
    floor = n if method_name == "amelie_sgd" else 1
    S = int(options.get("S", 0)) or batch_from_noise(options, default=n, floor=floor)
    S = max(S, floor)
    # h is the time of one job of `batch` gradients while S counts gradients: S gradients are
    # S / batch jobs, so t* takes s = S / batch with h per job (the collection term
    # (S / batch) / sum 1/h_job = S / sum 1/tau_i, in seconds, whatever the batch).
    h = np.asarray(expected_times, dtype=float) * batch
    jobs = S / batch
    if method_name == "minibatch_sgd":
        # every worker answers every step: the pivot whose slowest round (point down, job, sum up) is
        # shortest, the graph centre for equal times (t*'s rule picks a pivot for a prefix of the workers)
        pivot = best_eccentricity(graph, h)
    else:
        pivot = choose_pivot(graph, jobs, h, str(options.get("pivot", "tstar")))
    tree = plan_tree(graph, method_name, pivot)
    time, chosen = RoundTrips(graph).t_star_within(pivot, jobs, h, math.inf)
    participants = chosen if method_name == "fragile_sgd" else np.arange(n)
    return Plan(graph, tree, pivot, participants, S, time, np.asarray(expected_times, dtype=float), dict(options))


def plan_tree(graph: Graph, method_name: str, pivot: int) -> Tree:
    """The tree messages follow to and from `pivot` (a method may route otherwise: its `routes`)."""
    from . import METHODS

    return getattr(METHODS.get(method_name), "routes", Tree)(graph, pivot)


def make_nodes(method_name: str, lr: float, batch: int, x0: np.ndarray, plan: Plan,
               nodes: range | list[int] | None = None) -> dict[int, Any]:
    """The policy of every node (or of `nodes` only: an MPI rank runs one)."""
    from . import METHODS

    n = plan.graph.n
    method = METHODS.get(method_name)
    if isinstance(method, type) and issubclass(method, DecentralizedMethod) and not issubclass(method, PlannedMethod):
        return method.make_nodes(x0, lr, batch, plan, range(n) if nodes is None else nodes)  # its own policies
    chosen = set(int(i) for i in plan.participants)
    replanning = Replanning.from_options(method_name, plan.options, batch)
    policies: dict[int, Any] = {}
    for node in (range(n) if nodes is None else nodes):
        if method_name == "fragile_sgd":
            policies[node] = FragileNode(node, x0, lr, plan.S, batch, node in chosen, plan=plan, replanning=replanning)
        elif method_name == "minibatch_sgd":
            policies[node] = FragileNode(node, x0, lr, n * batch, batch, True, one_job=True)
        elif method_name == "amelie_sgd":
            policies[node] = AmelieNode(node, x0, lr, plan.S, batch, n, plan=plan, replanning=replanning)
        elif method_name == "async_sgd":
            policies[node] = AsyncPivotNode(node, x0, lr, batch, plan.pivot)
        else:
            raise ConfigError(f"method.name: {method_name} does not run on a worker graph; accepted: "
                              f"fragile_sgd, amelie_sgd, {', '.join(GRAPH_BASELINES)}")
    return policies


def graph_attrs(plan: Plan) -> dict[str, Any]:
    """What the results file stores under /graph."""
    links = sorted(plan.graph.links.items())
    return {
        "topology": plan.graph.topology,
        "pivot": plan.pivot,
        "S": plan.S,
        "t_star": plan.t_star if math.isfinite(plan.t_star) else -1.0,
        "participants": np.asarray(plan.participants, dtype=np.int64),
        "parent": plan.tree.parent.astype(np.int64),
        "link_source": np.array([i for (i, _), _ in links], dtype=np.int64),
        "link_dest": np.array([j for (_, j), _ in links], dtype=np.int64),
        "link_time": np.array([t for _, t in links], dtype=float),
    }
