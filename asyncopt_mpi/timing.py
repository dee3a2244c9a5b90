"""Compute and communication time models of heterogeneous workers, shared by both runtimes.

Worker i (1-based) has a mean time per stochastic gradient s_i, taken from
`workers.compute_times` or from `compute_scale` and the profile (equal: s_i = scale,
sqrt: s_i = scale*sqrt(i) as in Rennala/Freya/Shadowheart, linear: s_i = scale*i as in
AsGrad's speeds 1..n). `workers.compute` picks the distribution around it:

  fixed        s_i per gradient (sqrt: fixed with the sqrt profile)
  uniform      U(0, 2 s_i)
  exponential  Exp(mean s_i)
  poisson      unit * Poisson(s_i/unit), unit = compute_scale (AsGrad)
  normal       unit * (|N(s_i/unit, s_i/unit)| + 1) (AsGrad)
  geometric    a job of b gradients takes b s_i p Geometric(p): one draw for the whole task,
               mean b s_i, p = compute_p (SFW-asyn's queueing model, seed 003 appendix D)
  uniform_range  every job draws its seconds per gradient tau ~ U(a, b), [a, b] = compute_range,
               the same for every worker (a job of b gradients: b tau); Shadowheart's "adding
               more workers" experiment (tau_i, theta_i ~ U(0.1, 1) redrawn every iteration)

A job of b gradients takes the sum of b independent draws (geometric: one draw per job, as
in the seed, so that task times stay as varied as p says however large the task). Communication: worker i needs
theta_i seconds per float it sends (comm = fixed: comm_times or comm_scale; sqrt:
comm_scale*sqrt(i); uniform_range: every job draws theta ~ U(a, b), [a, b] = comm_range, after
its compute draw); the server's downlink is free, as in the papers' models, except where a
method charges it: shadowheart_sgd's broadcast takes method.server_comm seconds per float of its
(compressed) message, given to every worker's next job as Job.wait (methods/compressed.py).
A job may set the floats its upload is charged for (Job.upload): freya_page's
method.full_gradient = "allreduce" charges its blocks none (they are summed on the worker) and
each worker's share of the ring AllReduce 2n ceil(d/(n+1)) floats (methods/finite_sum.py,
allreduce_floats), so the reduction lasts as long as its slowest link needs.

Faults: a job that starts inside a `slowdown` window [worker, start, end, factor] takes
factor times longer; a worker never finishes a job that would end after its `dead_after`
time (it stops answering).

Traces: `compute = "trace"` replays measured times per gradient from `compute_trace` (CSV or
.npy, see traces.py), cyclically per worker; their means stand in for s_i.
"""

from __future__ import annotations

import math

import numpy as np

from .config import WorkersConfig
from .errors import ConfigError

_PROFILES = {
    "equal": lambda i: np.ones_like(i),
    "sqrt": np.sqrt,
    "linear": lambda i: i,
}


class TimingModel:
    """Per-worker time draws; workers are numbered 0..n-1 here (rank = worker + 1)."""

    def __init__(self, config: WorkersConfig, n_workers: int):
        self.n_workers = n_workers
        self.distribution = "fixed" if config.compute == "sqrt" else config.compute
        profile = "sqrt" if config.compute == "sqrt" else config.compute_profile
        index = np.arange(1, n_workers + 1, dtype=float)
        self.replay = None  # measured times (workers.compute = "trace"), replayed cyclically
        if config.compute == "trace":
            from .traces import TraceReplay, load_trace

            self.replay = TraceReplay(load_trace(config.compute_trace, n_workers))
            self.mean_compute = self.replay.means()
        elif config.compute == "uniform_range":
            self.compute_range = tuple(float(v) for v in config.compute_range)
            self.mean_compute = np.full(n_workers, sum(self.compute_range) / 2)
        elif config.compute_times:
            self.mean_compute = _per_worker("workers.compute_times", config.compute_times, n_workers)
        else:
            self.mean_compute = config.compute_scale * _PROFILES[profile](index)
        self.unit = config.compute_scale
        if self.distribution in ("poisson", "normal") and self.unit <= 0:
            raise ConfigError(
                f"workers.compute_scale: the {self.distribution} model counts time in units of "
                f"compute_scale, which must be > 0, got {self.unit}"
            )
        self.p = config.compute_p
        self.dead_after = _per_worker("workers.dead_after", config.dead_after, n_workers) if config.dead_after \
            else np.full(n_workers, np.inf)
        self.slowdowns: dict[int, list[tuple[float, float, float]]] = {}
        for worker, start, end, factor in config.slowdown:
            if worker >= n_workers:
                raise ConfigError(f"workers.slowdown: worker {int(worker)} does not exist (workers are 0..{n_workers - 1})")
            self.slowdowns.setdefault(int(worker), []).append((start, end, factor))
        self.faults = bool(self.slowdowns) or bool(np.isfinite(self.dead_after).any())
        self.comm_range = None  # comm = "uniform_range": (a, b) drawn per job; comm_per_float holds the mean
        if config.comm == "none":
            self.comm_per_float = np.zeros(n_workers)
        elif config.comm == "uniform_range":
            self.comm_range = tuple(float(v) for v in config.comm_range)
            self.comm_per_float = np.full(n_workers, sum(self.comm_range) / 2)
        elif config.comm_times:
            self.comm_per_float = _per_worker("workers.comm_times", config.comm_times, n_workers)
        elif config.comm == "sqrt":
            self.comm_per_float = config.comm_scale * np.sqrt(index)
        else:
            self.comm_per_float = np.full(n_workers, config.comm_scale)

    def job_time(self, worker: int, n_grads: int, n_floats: int, start: float, rng: np.random.Generator) -> float:
        """Seconds a job started at `start` takes: compute, then send; with the worker's faults applied."""
        seconds = self.compute_time(worker, n_grads, rng) + self.comm_time(worker, n_floats, rng)
        if not self.faults:
            return seconds
        for window_start, window_end, factor in self.slowdowns.get(worker, ()):
            if window_start <= start < window_end:
                seconds *= factor
        if start + seconds > self.dead_after[worker]:
            return math.inf
        return seconds

    def compute_time(self, worker: int, n_grads: int, rng: np.random.Generator) -> float:
        """Seconds worker needs for n_grads stochastic gradients."""
        mean = float(self.mean_compute[worker])
        if n_grads <= 0:
            return 0.0
        if not math.isfinite(mean):
            return math.inf
        kind = self.distribution
        if kind == "fixed":
            return mean * n_grads
        if kind == "uniform_range":
            return n_grads * float(rng.uniform(*self.compute_range))  # one tau per job
        if kind == "trace":
            return self.replay.take(worker, n_grads)
        if kind == "uniform":
            return float(rng.uniform(0.0, 2.0 * mean, size=n_grads).sum())
        if kind == "exponential":
            return float(rng.gamma(n_grads, mean))
        if kind == "poisson":
            return self.unit * float(rng.poisson(n_grads * mean / self.unit))
        if kind == "normal":
            centre = mean / self.unit
            draws = np.abs(rng.normal(centre, centre, size=n_grads)) + 1.0
            return self.unit * float(draws.sum())
        # geometric: the seed's model draws one Geometric(p) (support 1, 2, ...) per task.
        return mean * n_grads * self.p * float(rng.geometric(self.p))

    def master_time(self, n_grads: int, rng: np.random.Generator) -> float:
        """Seconds the server needs for work worth n_grads gradients (sfw_dist's master 1-SVD).

        The server computes at compute_scale seconds per gradient (the profiles' unit: worker 1's
        mean), drawn from the workers' distribution (one geometric draw for the task, as in seed 003).
        """
        if n_grads <= 0:
            return 0.0
        kind, mean = self.distribution, float(self.unit)
        if kind in ("fixed", "poisson", "normal") or kind not in ("uniform", "exponential", "geometric"):
            return mean * n_grads
        if kind == "uniform":
            return float(rng.uniform(0.0, 2.0 * mean, size=n_grads).sum())
        if kind == "exponential":
            return float(rng.gamma(n_grads, mean))
        return mean * n_grads * self.p * float(rng.geometric(self.p))

    def comm_time(self, worker: int, n_floats: int, rng: np.random.Generator | None = None) -> float:
        """Seconds worker needs to send n_floats to the server (uniform_range: one theta drawn per call)."""
        if self.comm_range is not None and n_floats > 0:
            if rng is None:
                raise ValueError("comm_time: the uniform_range model draws theta and needs the worker's rng")
            return n_floats * float(rng.uniform(*self.comm_range))
        return float(self.comm_per_float[worker]) * n_floats

    def expected_compute(self) -> np.ndarray:
        """Expected seconds per gradient of every worker (random models use the mean)."""
        if self.distribution != "normal":
            return self.mean_compute.copy()
        centre = self.mean_compute / self.unit
        # E|N(c, c)| = c * (sqrt(2/pi) e^{-1/2} + 1 - 2 Phi(-1)) for c > 0.
        folded = centre * (math.sqrt(2 / math.pi) * math.exp(-0.5) + math.erf(1 / math.sqrt(2)))
        return self.unit * (folded + 1.0)


def _per_worker(key: str, values: list[float], n_workers: int) -> np.ndarray:
    if len(values) != n_workers:
        raise ConfigError(f"{key}: has {len(values)} entries but the run has {n_workers} workers")
    return np.asarray(values, dtype=float)
