"""Methods with compressed uploads: Shadowheart SGD (Tyurin, Pozzi, Ilin, Richtarik 2024; seed 001) and QSGD.

Shadowheart: from the equilibrium time t* (theory.equilibrium_time) every worker i sums
b_i = floor(t*/h_i) stochastic gradients at x^k into v_i and sends m_i = floor(t*/t_i)
independent compressions of it (t_i: time to send one); workers with b_i or m_i = 0 sit
out. The server steps with x^{k+1} = x^k - gamma sum_i w_i sum_j C_ij(v_i) / sum_i w_i m_i b_i,
w_i = 1/(b_i omega + omega sigma2/eps + m_i sigma2/eps); t_i is the cost of one more copy
(K floats for RandK). With `estimate_times`, h_i and t_i are measured: three calibration
rounds (b, m) = (1, 1), (2, 1), (1, 2), then a least-squares fit of each worker's round
durations T = b h + m t + c (c: what a message costs whatever its size), refreshed every
`replan_every` rounds.

A RandK message of m copies is charged m K floats of upload time, the paper's m K theta
(seed 001 line 1153: theta_i seconds per coordinate; the authors' code charges
CompressedVector.number_of_elements(), in cost_send_vector of
code/distributed_optimization_library/asynchronous/algorithm_with_communication.py). The
seed word that carries the copies' indices travels (bytes_up counts it) but is charged only
with `charge_seed = true`.

Compressed broadcast (method.server_compressor = randk or quantize; "none", the default, sends the
point as before). Seed 001's setup item (d) (line 398): "the server can broadcast compressed
vectors to the workers in (at most) tau_serv seconds", compression being a lossy operator applied
to the message; the seed sets the broadcast cost aside "up to Sec. 7" (lines 412, 1087-1088) and its
text of the extension stops there, and the authors' code (asynchronous/algorithm_with_communication.py)
has no server compression. So the rule here is the unbiased one for a broadcast: after a round
the server forms x_next = x - gamma g, broadcasts C_serv(x_next - x), one draw for all workers,
and every worker, and the server, take x + C_serv(x_next - x) as the new point; E of it is x_next.
The workers compute the next round at that point, which the runtimes hand them. (Reconstructing
around the workers' previous copy w instead, w + C(x_next - w), would multiply the error
x - w by omega every round: it diverges for RandK with K < d/2.) The broadcast's time tau_serv =
method.server_comm seconds per float x the floats of one compressed message (server_K for randk
with its seed word only with charge_seed, as for uploads; d for "none") is charged to every
worker before the next round's job (Job.wait, both runtimes); the first round starts at x^0,
which every worker holds. The runtimes still send the reconstructed point itself, so
bytes_down counts d floats, not the compressed message.

QSGD (Alistarh et al., NeurIPS 2017): minibatch SGD in which every worker sends one
compression (RandK or quantized) of its batch's gradient sum; the step waits for all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..compression import make_compressor
from ..errors import ConfigError
from ..inputs import shown
from ..theory import equilibrium_time, shadowheart_plan
from . import register_method
from .base import Job, JobKind, Method, Result, Server

CALIBRATION = ((1, 1), (2, 1), (1, 2))  # (b, m) of the rounds that measure h_i, t_i and c_i


def _compressor(options: dict[str, Any]):
    name = options["compressor"]
    return make_compressor(name, options["K"] if name in ("randk", "randk_fast") else options.get("levels", 0))


class CompressedRounds(Method):
    """Synchronous rounds of COMPRESSED jobs; subclasses choose who computes how much."""

    trace_columns = ("active_workers",)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        _compressor(options)

    def start(self, server: Server) -> None:
        self.compressor = _compressor(self.options)
        self.accumulator = np.zeros(self.problem.dim)
        self.broadcast_wait = 0.0  # seconds every worker waits for the point before its job
        self.start_round(server)

    def plan(self, server: Server) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per worker: gradients b, copies m and weights w of the next round (b = 0: sits out)."""
        raise NotImplementedError

    def start_round(self, server: Server) -> None:
        self.b, self.m, self.w = self.plan(server)
        taking_part = np.flatnonzero(self.b > 0)
        if not taking_part.size:
            raise ConfigError(f"method.name: {self.name} found no worker fast enough to take part")
        self.waiting = set(taking_part.tolist())
        self.copies, self.weights = self.m.tolist(), self.w.tolist()  # read per result: list items, not numpy's
        self.round_started = server.now() + self.broadcast_wait  # the workers' part starts once the point is in
        self.round_times = np.full(server.n_workers, np.nan)
        compressor = self.compressor

        def job(worker: int) -> Job:
            return Job(JobKind.COMPRESSED, server.version, batch=int(self.b[worker]), copies=int(self.m[worker]),
                       compressor=compressor.code, compress_param=compressor.param,
                       charge_seed=self.options["charge_seed"], wait=self.broadcast_wait)

        batches, copies = self.b[taking_part], self.m[taking_part]
        if (batches == batches[0]).all() and (copies == copies[0]).all():
            # One job for all (QSGD; Shadowheart's calibration): one call, the same jobs, ids and order as the loop.
            server.assign_many(taking_part, job(int(taking_part[0])))
            return
        for worker in taking_part.tolist():
            server.assign(worker, job(worker))

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        if worker not in self.waiting or result.version != server.version:
            return False
        self.waiting.discard(worker)
        self.round_times[worker] = server.now() - self.round_started
        self.compressor.decode_add(self.accumulator, result.vector, self.copies[worker], self.weights[worker])
        if not self.waiting:
            denominator = float(np.sum(self.w * self.m * self.b))
            self.take_step(server, self.lr / denominator, grads_used=int(self.b.sum()), max_delay=0,
                           **self.trace_values())
            self.accumulator[:] = 0.0
            self.finish_round(server)
            self.start_round(server)
        return True

    def take_step(self, server: Server, scale: float, **trace: Any) -> None:
        """Publish x - scale * accumulator (Shadowheart may compress the broadcast of it)."""
        server.step(self.accumulator, scale, **trace)

    def trace_values(self) -> dict[str, float]:
        return {"active_workers": int(np.count_nonzero(self.b))}

    def finish_round(self, server: Server) -> None:
        """Hook after a round's step (Shadowheart learns worker times here)."""

    def max_payload_floats(self, dim: int) -> int:
        return max(dim, _compressor(self.options).payload_floats(dim, self.max_copies(dim)))

    def max_copies(self, dim: int) -> int:
        return 1


@register_method
class ShadowheartSGD(CompressedRounds):
    name = "shadowheart_sgd"
    description = "rounds of length t*: worker i sums b_i gradients, sends m_i compressions; weighted aggregation"
    paper = "Tyurin, Pozzi, Ilin, Richtarik, Shadowheart SGD, NeurIPS 2024"
    params = {"compressor": "randk", "K": 1, "levels": 4, "charge_seed": False, "sigma2_over_eps": 1.0,
              "estimate_times": False, "replan_every": 10,
              "server_compressor": "none", "server_K": 1, "server_levels": 4, "server_comm": 0.0}
    trace_columns = ("active_workers", "t_star")

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        super().check_options(options)
        if options["sigma2_over_eps"] < 0 or options["replan_every"] < 1:
            raise ConfigError("method.sigma2_over_eps must be >= 0 and method.replan_every >= 1")
        _server_compressor(options)
        if not 0.0 <= options["server_comm"] < math.inf:
            raise ConfigError(f"method.server_comm: seconds per float of the broadcast must be >= 0 and finite, "
                              f"got {shown(options['server_comm'])}")

    def start(self, server: Server) -> None:
        n = server.n_workers
        self.round = 0
        self.normal = np.zeros((n, 3, 3))  # per worker: sum of a a^T and of a T, a = (b, m, 1)
        self.moment = np.zeros((n, 3))
        self.compressor = _compressor(self.options)
        dim = self.problem.dim
        # Floats one more copy costs (the identity sends its vector once, however many copies).
        self.per_copy = (self.compressor.payload_floats(dim, 2) - self.compressor.payload_floats(dim, 1)) or dim
        if self.options["estimate_times"]:
            self.h = self.t = None
        else:
            self.h = server.expected_times
            self.t = server.comm_times * self.per_copy
        self.plan_arrays = None
        self.server_compressor = _server_compressor(self.options)
        if self.options["server_compressor"] == "randk" and self.options["server_K"] > dim:
            raise ConfigError(f"method.server_K = {self.server_compressor.param} exceeds the problem dimension {dim}")
        sent = self.server_compressor or make_compressor("identity")
        self.broadcast_seconds = self.options["server_comm"] * sent.upload_floats(dim, 1, self.options["charge_seed"])
        self.received = np.zeros(dim) if self.server_compressor is not None else None
        super().start(server)

    def max_copies(self, dim: int) -> int:
        return -(-dim // max(self.options["K"], 1))

    def take_step(self, server: Server, scale: float, **trace: Any) -> None:
        """x + C_serv(x_next - x), x_next = x - scale * accumulator; the next round waits for its broadcast."""
        self.broadcast_wait = self.broadcast_seconds
        if self.server_compressor is None:
            super().take_step(server, scale, **trace)
            return
        change = self.accumulator
        change *= -scale  # x_next - x, in place: the round's sum is not needed after this step
        message = self.server_compressor.encode(change, 1, server.rng)
        self.received[:] = 0.0
        self.server_compressor.decode_add(self.received, message, 1)
        x_next = server.new_point()
        np.add(server.x, self.received, out=x_next)
        server.publish(x_next, **trace)

    def plan(self, server: Server):
        n, dim = server.n_workers, self.problem.dim
        omega, ratio = self.compressor.omega(dim), self.options["sigma2_over_eps"]
        if self.h is None:  # calibrating: every worker, fixed (b, m)
            b, m = CALIBRATION[min(self.round, len(CALIBRATION) - 1)]
            self.t_star = np.nan
            return np.full(n, b), np.full(n, m), np.ones(n)
        # Known times never change: the plan is made once (t* alone cost 60 ms, 14% of a d = 100 run when
        # remade every replan_every rounds); measured ones are refreshed every round, so it is remade then.
        if self.plan_arrays is None or (self.options["estimate_times"]
                                        and self.round % self.options["replan_every"] == 0):
            self.t_star = equilibrium_time(omega, ratio, self.h, self.t)
            plan = shadowheart_plan(self.t_star, omega, ratio, self.h, self.t, dim, max(self.options["K"], 1))
            active = plan["active"]
            self.plan_arrays = (np.where(active, plan["b"], 0), np.where(active, plan["m"], 0),
                                np.where(active, plan["w"], 0.0))
        return self.plan_arrays

    def trace_values(self) -> dict[str, float]:
        return {**super().trace_values(), "t_star": self.t_star}

    def finish_round(self, server: Server) -> None:
        self.round += 1
        if not self.options["estimate_times"]:
            return
        took = np.isfinite(self.round_times)
        features = np.column_stack([self.b[took], self.m[took], np.ones(int(took.sum()))]).astype(float)
        self.normal[took] += features[:, :, None] * features[:, None, :]
        self.moment[took] += features * self.round_times[took, None]
        if self.round < len(CALIBRATION):
            return
        # Least squares per worker; a worker never measured (or degenerate) is treated as unusable.
        solvable = np.linalg.matrix_rank(self.normal) == 3
        h, t = np.full(len(solvable), np.inf), np.full(len(solvable), np.inf)
        solution = np.linalg.solve(self.normal[solvable], self.moment[solvable][:, :, None])[:, :, 0]
        h[solvable], t[solvable] = solution[:, 0], solution[:, 1]
        self.h, self.t = np.maximum(h, 1e-9), np.maximum(t, 1e-9)
        if self.round == len(CALIBRATION):
            self.plan_arrays = None  # first plan from measured times


def _server_compressor(options: dict[str, Any]):
    """The broadcast's compressor (None for "none": the point goes uncompressed)."""
    name = options["server_compressor"]
    if name == "none":
        return None
    if name not in ("randk", "quantize"):
        raise ConfigError(f"method.server_compressor: unknown compressor {shown(name)}; "
                          "choose from none, randk, quantize")
    return make_compressor(name, options["server_K"] if name == "randk" else options["server_levels"], "server_")


@register_method
class QSGD(CompressedRounds):
    name = "qsgd"
    description = "minibatch SGD where every worker sends one compression (randk or quantize) of its gradient sum"
    paper = "Alistarh et al., QSGD, NeurIPS 2017"
    params = {"compressor": "randk", "K": 1, "levels": 4, "charge_seed": False}

    def plan(self, server: Server):
        n = server.n_workers
        return np.full(n, self.batch), np.ones(n, dtype=int), np.ones(n)
