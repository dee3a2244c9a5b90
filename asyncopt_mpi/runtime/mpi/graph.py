"""MPI runtime of decentralized methods: worker ranks talk to their graph neighbours; rank 0 records.

Worker rank r runs node r - 1. A message to a neighbour is held by the sender until its
release time (the link's previous message released, plus rho) and only then sent, so the
node keeps computing while its messages are "in flight" and the receiver sees each hop
take at least rho. Messages to non-neighbours are routed hop by hop along the pivot's tree.
Every receiver logs its hops; the pivot sends rank 0 a copy of each step (with the results
that reached it) without waiting for rank 0. At the stop, every node sends CLOSE to each
neighbour and receives theirs, so no message stays unmatched, then reports to rank 0.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from enum import IntEnum

import numpy as np
from mpi4py import MPI

from ...errors import RunError
from ...graph import Tree
from ...methods.base import Job, JobKind
from ...methods.decentralized import Message, Plan, make_nodes
from .backoff import Backoff, poll
from ..graph.core import GraphCore, message_bytes
from ..signals import SignalWatch
from ..worker import WorkerContext, timing_rng

CLOSE = 0  # link message kind: the sender stops; nothing follows on this link
# Link message header: kind, version, dest, origin, count, weight, nodes, queued, start, rho.
LINK_HEADER = 10
EVENT_FLOATS = 6  # time, origin, kind, version, count, accepted
HOP_FLOATS = 8  # queued, start, arrived, source, dest, kind, version, rho (results.HOP_COLUMNS)
HOP_LOG_ROWS = 200_000  # per node; later hops are counted, not logged
STATS = ("jobs", "grads", "busy_time", "bytes_up", "bytes_down")
SLICE = 1e-3  # longest sleep between polls of a waiting node


class GTag(IntEnum):
    LINK = 21  # node <-> neighbour
    STEP = 22  # pivot -> rank 0: time, version, grads_used, n_events, events, x
    STOP = 23  # rank 0 -> nodes
    FINAL = 24  # node -> rank 0: stats, hop count, hop rows
    NOTICE = 25  # node -> rank 0: b"E" + error text, or b"S" + signal name


def shared_start(comm: MPI.Comm, hosts: list[str]) -> float:
    """A common time origin: rank 0's monotonic clock where the host is shared (Linux's is system-wide)."""
    origin = comm.bcast(time.monotonic() if comm.rank == 0 else None, root=0)
    comm.Barrier()
    return origin if hosts[comm.rank] == hosts[0] else time.monotonic()


class GraphServer(GraphCore):
    """Rank 0: records the pivot's steps, applies the stop rules, ends the run."""

    def __init__(self, *args, comm: MPI.Comm, hosts: list[str], t0: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.comm = comm
        self.hosts = hosts
        self.t0 = t0
        self.clock = 0.0
        self.status_object = MPI.Status()
        self.backoff = Backoff(maximum=SLICE)
        self.hop_rows: list[np.ndarray] = []
        self.early_steps: dict[int, np.ndarray] = {}  # a re-plan's new pivot reported before the old one

    def now(self) -> float:
        return self.clock

    def worker_name(self, worker: int) -> str:
        return f"worker {worker} (rank {worker + 1} on {self.hosts[worker + 1]})"

    def run(self) -> None:
        """After start(): record the pivot's steps until a stop rule fires."""
        comm, status = self.comm, self.status_object
        while not self.stopping:
            if self.check_signal():
                break
            self.clock = time.monotonic() - self.t0
            if comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, status):
                self._take(status, recording=True)
                self.backoff.reset()
                continue
            self.after_event(self.clock)
            if not self.stopping:
                self.backoff.sleep()
        self.clock = time.monotonic() - self.t0
        self.final_snapshot()

    def _take(self, status: MPI.Status, recording: bool) -> int:
        """Receive the probed message; returns its tag."""
        source, tag = status.Get_source(), status.Get_tag()
        if tag == GTag.NOTICE:
            text = bytearray(status.Get_count(MPI.BYTE))
            self.comm.Recv(text, source=source, tag=tag)
            kind, message = bytes(text[:1]), bytes(text[1:]).decode("utf-8", "replace")
            if recording:
                if kind == b"S":
                    self.stop_by_signal(message, f"rank {source}")
                else:
                    raise RunError(f"{self.worker_name(source - 1)} failed: {message}")
            return tag
        buffer = np.empty(status.Get_count(MPI.DOUBLE))
        self.comm.Recv(buffer, source=source, tag=tag)
        if tag == GTag.STEP and recording:
            self._record(buffer)
        elif tag == GTag.FINAL:
            self._final(source - 1, buffer)
        return tag

    def _record(self, buffer: np.ndarray) -> None:
        """Step reports in the order of their versions (after a re-plan two nodes report, each on its own link)."""
        version = int(buffer[1])
        if version > self.version + 1:
            self.early_steps[version] = buffer
            return
        self._take_step(buffer)
        while self.version + 1 in self.early_steps and not self.stopping:
            self._take_step(self.early_steps.pop(self.version + 1))

    def _take_step(self, buffer: np.ndarray) -> None:
        """A step report: time, version, grads_used, n_events, events, the pivot's link bytes since its last
        report (in, out), x."""
        when, version, grads_used, n_events = buffer[:4]
        end = 4 + int(n_events) * EVENT_FLOATS
        for at, origin, kind, at_version, count, accepted in buffer[4:end].reshape(-1, EVENT_FLOATS):
            self.clock = float(at)
            self.record_arrival(float(at), int(origin), int(kind), int(at_version), int(count), bool(accepted))
        if int(version) != self.version + 1:
            raise RunError(f"the pivot reported step {int(version)} after step {self.version}")
        self.clock = float(when)
        self.bytes_up += int(buffer[end])
        self.bytes_down += int(buffer[end + 1])
        self.record_step(buffer[end + 2 :], int(grads_used))
        self.after_event(self.clock)

    def _final(self, worker: int, buffer: np.ndarray) -> None:
        for index, name in enumerate(STATS):
            self.stats[name][worker] = buffer[index]
        hops = buffer[len(STATS) + 1 :].reshape(-1, HOP_FLOATS)
        self.hop_rows.append(hops)

    def shutdown(self, failed: bool) -> list[int]:
        """Stop every node, take their reports (and late steps); returns the workers that did not report."""
        requests = [self.comm.Isend(np.array([float(failed)]), worker + 1, GTag.STOP) for worker in range(self.n_workers)]
        waiting = set(range(self.n_workers))
        deadline = time.monotonic() + self.stop_rules.grace
        backoff, status = Backoff(maximum=SLICE), self.status_object
        while waiting and time.monotonic() < deadline:
            if self.comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, status):
                if self._take(status, recording=False) == GTag.FINAL:
                    waiting.discard(status.Get_source() - 1)
                backoff.reset()
                continue
            backoff.sleep()
        if not waiting:
            poll(lambda: MPI.Request.Testall(requests), timeout=self.stop_rules.grace)
        rows = np.concatenate(self.hop_rows) if self.hop_rows else np.empty((0, HOP_FLOATS))
        for row in rows[np.argsort(rows[:, 2], kind="stable")]:
            self.writer.hop((row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]), int(row[6]), row[7]))
        return sorted(waiting)


class GraphNode:
    """A worker rank running one node's policy (methods.decentralized.Net for it)."""

    def __init__(self, comm: MPI.Comm, context: WorkerContext, plan: Plan, config, timing, t0: float,
                 signals: SignalWatch | None = None):
        self.comm = comm
        self.node = comm.rank - 1
        self.context = context
        self.plan = plan
        self.tree = plan.tree
        self.parent = int(plan.tree.parent[self.node])
        self.children = list(plan.tree.children[self.node])
        self.neighbours = plan.graph.neighbours(self.node)
        self.links = plan.graph.links
        self.t0 = t0
        self.timing = timing
        self.timing_rng = timing_rng(config.workers.seed, self.node, config.segment)
        self.crash_after = config.workers.crash_after[self.node] if config.workers.crash_after else math.inf
        self.signals = signals or SignalWatch()
        self.signal_reported = False
        dim = context.problem.dim
        self.dim = dim
        self.message_bytes = message_bytes(dim)
        # A non-finite gradient goes on to the pivot, whose next step rank 0 finds non-finite and stops the run
        # as diverged, as in the simulator (the check would fail the run from this rank instead).
        context.check_finite = False
        self.policy = make_nodes(config.method.name, config.method.lr, config.method.batch, context.problem.x0(),
                                 plan, nodes=[self.node])[self.node]
        self.receive_buffer = np.empty(LINK_HEADER + dim)
        self.outbox: list[tuple[float, int, int, np.ndarray]] = []  # (release, sequence, to, buffer)
        self.sequence = itertools.count()
        self.free_at: dict[int, float] = {}
        self.free_notices: list[tuple[float, int]] = []  # (time, link) to tell the policy about
        self.sends: list[tuple[MPI.Request, np.ndarray]] = []
        self.job: tuple[float, int, np.ndarray, int] | None = None  # (done at, version, gradient, n_grads)
        self.job_start = 0.0
        self.events: list[tuple] = []  # results that reached the pivot since its last step report
        self.hops = np.empty((1024, HOP_FLOATS))
        self.hop_count = 0
        self.stats = dict.fromkeys(STATS, 0.0)
        self.closed: set[int] = set()  # neighbours that sent CLOSE
        self.closed_for_good = False  # we stopped: later link messages are matched and dropped
        self.status_object = MPI.Status()
        self.pivot_bytes = [0, 0]  # bytes the pivot received / sent on its links since its last step report

    # ----- Net
    def now(self) -> float:
        return time.monotonic() - self.t0

    def send(self, message: Message) -> None:
        self._transmit(message.dest, message.kind, message.version, message.origin, message.count, message.weight,
                       message.nodes, message.vector, self.now())

    def link_free(self, to: int) -> bool:
        return self.free_at.get(to, -math.inf) <= self.now()

    def compute(self, version: int, x: np.ndarray, batch: int) -> None:
        now = self.now()
        if self.job is not None:
            self.stats["busy_time"] += now - self.job_start
        duration = self.timing.job_time(self.node, batch, 0, now, self.timing_rng)
        if duration == math.inf:
            self.job = None
            return
        job = Job(JobKind.GRAD, version, batch, fail=now >= self.crash_after)
        vector, n_grads = self.context.execute(job, lambda _: x)
        self.job = (now + duration, version, vector, n_grads)
        self.job_start = now
        self.stats["jobs"] += 1

    def publish(self, x: np.ndarray, version: int, grads_used: int) -> None:
        events = np.asarray(self.events, dtype=float).reshape(-1)
        header = [self.now(), version, grads_used, len(self.events)]
        buffer = np.concatenate([header, events, self.pivot_bytes, x])
        self.events.clear()
        self.pivot_bytes = [0, 0]
        self.sends.append((self.comm.Isend(buffer, 0, GTag.STEP), buffer))

    def arrived(self, origin: int, kind: int, version: int, count: int, accepted: bool) -> None:
        self.events.append((self.now(), origin, kind, version, count, accepted))

    def follow(self, tree: Tree) -> None:
        self.tree = tree
        self.parent = int(tree.parent[self.node])
        self.children = list(tree.children[self.node])

    # ----- links
    def _transmit(self, dest, kind, version, origin, count, weight, nodes, vector, queued) -> None:
        to = self.tree.next_hop(self.node, dest)
        rho = self.links[(self.node, to)]
        now = self.now()
        start = max(now, self.free_at.get(to, -math.inf))
        release = start + rho
        self.free_at[to] = release
        heapq.heappush(self.free_notices, (release, to))
        buffer = np.empty(LINK_HEADER + vector.size)
        buffer[:LINK_HEADER] = (kind, version, dest, origin, count, weight, nodes, queued, start, rho)
        buffer[LINK_HEADER:] = vector
        heapq.heappush(self.outbox, (release, next(self.sequence), to, buffer))
        size = self.message_bytes if vector.size == self.dim else message_bytes(vector.size)
        self.stats["bytes_up"] += size
        if self.parent < 0:
            self.pivot_bytes[1] += size

    def _release_due(self, now: float) -> None:
        outbox = self.outbox
        while outbox and outbox[0][0] <= now:
            _, _, to, buffer = heapq.heappop(outbox)
            self.sends.append((self.comm.Isend(buffer, to + 1, GTag.LINK), buffer))

    def _receive(self) -> bool:
        """Take one link message if there is one; returns whether there was."""
        status = self.status_object
        if not self.comm.Iprobe(MPI.ANY_SOURCE, GTag.LINK, status):
            return False
        source = status.Get_source() - 1
        count = status.Get_count(MPI.DOUBLE)
        buffer = self.receive_buffer if count == self.receive_buffer.size else np.empty(count)
        self.comm.Recv(buffer, source=source + 1, tag=GTag.LINK)
        kind = int(buffer[0])
        if kind == CLOSE:
            self.closed.add(source)
            return True
        if self.closed_for_good:
            return True  # a late message after our stop: matched and dropped
        arrived = self.now()
        _, version, dest, origin, count_, weight, nodes, queued, start, rho = buffer[:LINK_HEADER]
        self._log_hop(queued, start, arrived, source, kind, version, rho)
        vector = buffer[LINK_HEADER:]
        size = self.message_bytes if vector.size == self.dim else message_bytes(vector.size)
        self.stats["bytes_down"] += size
        if self.parent < 0:
            self.pivot_bytes[0] += size
        if int(dest) != self.node:
            self._transmit(int(dest), kind, int(version), int(origin), int(count_), weight, int(nodes), vector, arrived)
        else:
            message = Message(kind, int(version), int(dest), int(origin), vector, int(count_), float(weight), int(nodes))
            self.policy.on_message(self, message)
        return True

    def _log_hop(self, queued, start, arrived, source, kind, version, rho) -> None:
        if self.hop_count < HOP_LOG_ROWS:
            if self.hop_count == len(self.hops):
                self.hops = np.concatenate([self.hops, np.empty_like(self.hops)])
            self.hops[self.hop_count] = (queued, start, arrived, source, self.node, kind, version, rho)
        self.hop_count += 1

    # ----- the loop
    def run(self) -> bool:
        """Returns whether rank 0 said the run failed."""
        stop = np.zeros(1)
        stop_request = self.comm.Irecv(stop, source=0, tag=GTag.STOP)
        try:
            self._loop(stop_request)
        except BaseException as exc:  # a policy's or problem's code, sys.exit included
            self._notify(b"E", f"{type(exc).__name__}: {exc}" if not isinstance(exc, RunError) else str(exc))
            poll(stop_request.Test)
            self._close()
            return True  # rank 0 reports the failure
        self._close()
        return bool(stop[0])

    def _loop(self, stop_request: MPI.Request) -> None:
        self.policy.start(self)
        backoff = Backoff(maximum=SLICE)
        while not stop_request.Test():
            if self.signals.received is not None and not self.signal_reported:
                self.signal_reported = True
                self._notify(b"S", self.signals.name)
            busy = False
            while self._receive():
                busy = True
            now = self.now()
            job = self.job
            if job is not None and job[0] <= now:
                self.job = None
                self.stats["busy_time"] += now - self.job_start
                self.stats["grads"] += job[3]
                self.policy.on_gradient(self, job[1], job[2], job[3])
                busy = True
            self._release_due(now)
            while self.free_notices and self.free_notices[0][0] <= now:
                _, to = heapq.heappop(self.free_notices)
                if self.link_free(to):
                    self.policy.on_link_free(self, to)
                busy = True
            self._reap()
            if busy:
                backoff.reset()
                continue
            due = min(self.job[0] if self.job else math.inf, self.outbox[0][0] if self.outbox else math.inf,
                      self.free_notices[0][0] if self.free_notices else math.inf)
            backoff.sleep(max(0.0, due - self.now()))

    def _reap(self) -> None:
        if len(self.sends) > 16:
            self.sends = [(request, buffer) for request, buffer in self.sends if not request.Test()]

    def _close(self) -> None:
        """Tell every neighbour we stop, take what they still send until each has said the same, report."""
        self.closed_for_good = True
        close = np.zeros(LINK_HEADER)
        for neighbour in self.neighbours:
            self.sends.append((self.comm.Isend(close, neighbour + 1, GTag.LINK), close))
        neighbours = set(self.neighbours)

        def all_closed() -> bool:
            while self._receive():
                pass
            return self.closed >= neighbours

        poll(all_closed)
        poll(lambda: MPI.Request.Testall([request for request, _ in self.sends]))
        self.sends.clear()
        stats = [self.stats[name] for name in STATS]
        rows = self.hops[: min(self.hop_count, HOP_LOG_ROWS)]
        report = np.concatenate([stats, [self.hop_count], rows.reshape(-1)])
        poll(self.comm.Isend(report, 0, GTag.FINAL).Test)

    def _notify(self, kind: bytes, text: str) -> None:
        poll(self.comm.Isend(kind + text.encode("utf-8"), 0, GTag.NOTICE).Test)
