"""Virtual-clock runtime of decentralized methods: node policies, gradient jobs and links in one event heap.

A link i -> j carries one message at a time: a message starts when the link is free and
arrives rho_{i->j} later, so each hop takes at least its rho and a busy link queues. A node
computes one job at a time for the duration the timing model draws; a new computation
replaces a running one. Ties are broken by a sequence number (bit-for-bit reproducible).
"""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np

from ...graph import Tree
from ...methods.base import Job, JobKind
from ...methods.decentralized import Message, make_nodes
from .core import GraphCore, message_bytes
from ..server import StopReason
from ..worker import WorkerContext

DONE, ARRIVE, FREE = 0, 1, 2  # event types


class SimNode:
    """The runtime as one node's policy sees it (methods.decentralized.Net)."""

    __slots__ = ("sim", "node", "parent", "children", "tree", "free_at", "job", "job_start")

    def __init__(self, sim: "GraphSim", node: int):
        self.sim = sim
        self.node = node
        self.follow(sim.plan.tree)
        self.free_at: dict[int, float] = {}
        self.job = 0  # id of the running computation (0: none)
        self.job_start = 0.0

    def now(self) -> float:
        return self.sim.clock

    def send(self, message: Message) -> None:
        self.sim.transmit(self.node, message, message.vector.copy(), self.sim.clock)

    def link_free(self, to: int) -> bool:
        return self.free_at.get(to, -math.inf) <= self.sim.clock

    def compute(self, version: int, x: np.ndarray, batch: int) -> None:
        self.sim.start_job(self, version, x, batch)

    def publish(self, x: np.ndarray, version: int, grads_used: int) -> None:
        self.sim.record_step(x, grads_used)

    def arrived(self, origin: int, kind: int, version: int, count: int, accepted: bool) -> None:
        self.sim.record_arrival(self.sim.clock, origin, kind, version, count, accepted)

    def follow(self, tree: Tree) -> None:
        self.tree = tree  # this node routes by its own tree: during a re-plan, nodes switch one by one
        self.parent = int(tree.parent[self.node])
        self.children = list(tree.children[self.node])
        if self.parent < 0:
            self.sim.pivot = self.node


class GraphSim(GraphCore):
    def __init__(self, *args, contexts: list[WorkerContext], **kwargs):
        super().__init__(*args, **kwargs)
        self.contexts = contexts
        self.clock = 0.0
        self.heap: list[tuple] = []
        self.sequence = itertools.count()
        self.job_ids = itertools.count(1)
        self.links = self.plan.graph.links
        self.nets = [SimNode(self, node) for node in range(self.n_workers)]
        config = self.config
        self.policies = make_nodes(config.method.name, config.method.lr, config.method.batch, self.problem.x0(), self.plan)
        self.message_bytes = message_bytes(self.dim)

    def now(self) -> float:
        return self.clock

    # ----- what nodes do
    def start_job(self, net: SimNode, version: int, x: np.ndarray, batch: int) -> None:
        node = net.node
        if net.job:  # replaced: the time spent so far still counts as busy
            self.stats["busy_time"][node] += self.clock - net.job_start
        job = Job(JobKind.GRAD, version, batch, fail=self.clock >= self.crash_after[node])
        duration = self.timing.job_time(node, batch, 0, self.clock, self.timing_rngs[node])
        if duration == math.inf:
            self.never_answering.add(node)
            net.job = 0
            return
        # The math is done now, at the point the job starts from (the node may move on later).
        vector, n_grads = self.contexts[node].execute(job, lambda _: x)
        net.job = next(self.job_ids)
        net.job_start = self.clock
        self.stats["jobs"][node] += 1
        heapq.heappush(self.heap, (self.clock + duration, next(self.sequence), DONE, node, (net.job, version, vector, n_grads)))

    def transmit(self, node: int, message: Message, vector: np.ndarray, queued: float) -> None:
        """Put a message on the link to the next hop towards message.dest."""
        net = self.nets[node]
        to = net.tree.next_hop(node, message.dest)
        rho = self.links[(node, to)]
        start = max(self.clock, net.free_at.get(to, -math.inf))
        arrival = start + rho
        net.free_at[to] = arrival
        size = self.message_bytes if vector.size == self.dim else message_bytes(vector.size)
        self.stats["bytes_up"][node] += size
        if node == self.pivot:
            self.bytes_down += size
        payload = Message(message.kind, message.version, message.dest, message.origin, vector,
                          message.count, message.weight, message.nodes)
        heapq.heappush(self.heap, (arrival, next(self.sequence), ARRIVE, to, (node, payload, queued, start, rho)))
        heapq.heappush(self.heap, (arrival, next(self.sequence), FREE, node, to))

    # ----- the loop
    def start(self) -> None:
        super().start()
        for node, policy in self.policies.items():
            policy.start(self.nets[node])

    def run(self) -> None:
        """After start(): events until a stop rule fires or nothing is left to do."""
        time_limit = self.stop_rules.time
        heap = self.heap
        signals = self.signals
        hop = self.writer.hop
        while not self.stopping:
            if signals.received is not None:
                self.check_signal()
                break
            if not heap:
                if time_limit is None:
                    self.stop(StopReason.IDLE, "no node has anything left to do, and stop.time is not set")
                else:
                    self.clock = time_limit
                    self.check_time(time_limit)
                break
            when, _, kind, node, data = heapq.heappop(heap)
            if time_limit is not None and when > time_limit:
                self.clock = time_limit
                self.check_time(time_limit)
                break
            self.clock = when
            net = self.nets[node]
            policy = self.policies[node]
            if kind == DONE:
                job, version, vector, n_grads = data
                if job != net.job:
                    continue  # replaced by a newer computation
                net.job = 0
                self.stats["busy_time"][node] += when - net.job_start
                self.stats["grads"][node] += n_grads
                policy.on_gradient(net, version, vector, n_grads)
            elif kind == ARRIVE:
                source, message, queued, start, rho = data
                size = self.message_bytes if message.vector.size == self.dim else message_bytes(message.vector.size)
                self.stats["bytes_down"][node] += size
                if node == self.pivot:
                    self.bytes_up += size
                hop((queued, start, when, source, node, message.kind, message.version, rho))
                if message.dest != node:
                    self.transmit(node, message, message.vector, when)  # routed on, hop by hop
                else:
                    policy.on_message(net, message)
            else:
                if net.link_free(data):
                    policy.on_link_free(net, data)
            self.after_event(when)
        self.final_snapshot()
