"""Method interface: jobs, results and the server-side policy every method implements.

A method decides (which worker computes what, at which point; when to step); the runtime
acts (messages, clocks, files). Methods never import MPI, so every method runs unchanged
on the MPI parameter server and on the virtual-clock simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Protocol

import numpy as np

from ..config import MethodConfig
from ..problems.base import Problem
from .vectors import VectorSum


class JobKind(IntEnum):
    """What a worker is asked to compute."""

    GRAD = 1  # mean of `batch` stochastic gradients at point `version`
    GRAD_INDICES = 2  # mean gradient of the finite-sum terms `indices` at point `version`
    GRAD_DIFF = 3  # mean of grad f_j(x_version) - grad f_j(x_version2) over `indices` (two gradients each)
    COMPRESSED = 4  # the SUM of `batch` stochastic gradients at `version`, sent as `copies` compressions
    LMO = 5  # (u, v) with theta u v^T = argmin over the ball of <S, G>, G = mean of `batch` stochastic gradients
    LMO_VR = 6  # the same for G = mean over `batch` samples of grad f_j(X) - grad f_j(W) + grad f(W), W = version2


_LMO_VR, _GRAD_DIFF = JobKind.LMO_VR, JobKind.GRAD_DIFF  # read on every assignment: plain globals are faster


@dataclass(slots=True)
class Job:
    """Work for one worker; `job_id` is set by the server when the job is assigned."""

    kind: JobKind
    version: int
    batch: int = 1
    indices: np.ndarray | None = None
    version2: int = -1  # the second point of a GRAD_DIFF job
    copies: int = 1  # COMPRESSED: independent compressions of the vector, sent together
    compressor: int = 0  # COMPRESSED: compressor code and parameter (asyncopt_mpi.compression)
    compress_param: int = 0
    extra_grads: int = 0  # compute time beyond the batch, in gradients: a 1-SVD, SVRF's full gradient at version2
    wait: float = 0.0  # seconds before the worker can start: master-side work it waits for (sfw_dist's SVD)
    job_id: int = -1
    duration: float = 0.0  # modelled seconds, drawn by the server when the job is assigned
    fail: bool = False  # set by the server: the worker fails on this job (workers.crash_after)
    charge_seed: bool = False  # COMPRESSED: the upload time counts the payload's seed word (method.charge_seed)
    upload: int = -1  # floats the upload time is charged for, if >= 0 instead of the payload's (a reduction's)

    def copy(self, indices: np.ndarray | None = None) -> "Job":
        """An unassigned copy for another worker, with `indices` instead of this job's if given."""
        return Job(self.kind, self.version, self.batch, self.indices if indices is None else indices, self.version2,
                   self.copies, self.compressor, self.compress_param, self.extra_grads, self.wait,
                   charge_seed=self.charge_seed, upload=self.upload)

    @property
    def versions(self) -> tuple[int, ...]:
        """Point versions the worker must hold to run this job."""
        return (self.version,) if self.version2 < 0 else (self.version, self.version2)

    def payload_floats(self, dim: int, shape: tuple[int, int] | None = None) -> int:
        """Float64 words the worker's communication time is charged for (a RandK seed only with charge_seed)."""
        if self.upload >= 0:
            return self.upload
        if self.kind in (JobKind.LMO, JobKind.LMO_VR):
            return shape[0] + shape[1]
        if self.kind != JobKind.COMPRESSED:
            return dim
        from ..compression import compressor_from_code

        compressor = compressor_from_code(self.compressor, self.compress_param)
        return compressor.upload_floats(dim, self.copies, self.charge_seed)

    @property
    def n_grads(self) -> int:
        """Stochastic gradients the job costs (a difference costs two)."""
        kind = self.kind
        if kind is _LMO_VR:
            return 2 * self.batch + self.extra_grads
        if self.indices is None:
            return self.batch + self.extra_grads
        return len(self.indices) * (2 if kind is _GRAD_DIFF else 1)


@dataclass(slots=True)
class Result:
    """A worker's answer. `vector` is only valid during `on_result`: copy what you keep.

    In the simulator `vector` is computed on first access (the worker's random draws are
    made when the job completes, so streams do not depend on it): a result dropped
    without reading it costs no gradient math.
    """

    kind: JobKind
    job_id: int
    worker: int
    version: int
    vector: np.ndarray
    n_grads: int
    delay: int = 0  # server iteration at arrival minus `version`
    duration: float = 0.0  # modelled seconds the job took on the worker


@dataclass(frozen=True)
class StepAndRestart:
    """The rule of a method that treats every result alike (see Method.every_result).

    With `collect` = 1 (asynchronous SGD with pure assignment), for each result in arrival
    order: x <- x - scale * result.vector (one new version, its trace row holding
    grads_used = result.n_grads, max_delay = result.delay and `columns`), then the result's
    worker computes `job` again at that new point (job.version is ignored).

    With `collect` > 1 (Rennala SGD: collect = S, fresh_only = True), each result joins a batch,
    unless `fresh_only` and it was computed at an older point than the current one (then it
    is dropped); once the batch holds `collect` gradients or more (counting result.n_grads),
    x <- x - (scale / g) * sum of result.n_grads * result.vector over the batch, g being its
    gradients (trace row: grads_used = g, max_delay = the batch's largest delay), and a new
    batch begins. Either way the worker then computes `job` again at the current point.
    """

    scale: float
    job: Job
    columns: dict[str, float] = field(default_factory=dict)
    collect: int = 1
    fresh_only: bool = False


class Server(Protocol):
    """What a method may use of the runtime (both runtimes offer exactly this)."""

    n_workers: int
    problem: Problem
    rng: np.random.Generator
    expected_times: np.ndarray  # expected seconds per gradient of each worker (the timing model's mean)
    comm_times: np.ndarray  # seconds per float each worker needs to send

    @property
    def x(self) -> np.ndarray: ...  # current point, read-only
    @property
    def version(self) -> int: ...  # number of the current point == iteration

    def new_point(self) -> np.ndarray: ...
    def publish(
        self, x: np.ndarray, *, grads_used: int, max_delay: int, delta: np.ndarray | None = None, **columns: float
    ) -> int: ...
    def step(
        self, direction: "Result | VectorSum | np.ndarray", scale: float, *, grads_used: int, max_delay: int,
        **columns: float
    ) -> int: ...  # publish x - scale * direction
    def vector_sum(self) -> VectorSum: ...
    def assign(self, worker: int, job: Job) -> None: ...
    def assign_many(self, workers: "list[int] | np.ndarray", job: Job, indices: np.ndarray | None = None) -> np.ndarray: ...
    def cancel(self, worker: int) -> None: ...  # abandon its jobs; their results never arrive
    def cancel_many(self, workers: "list[int] | np.ndarray") -> None: ...  # cancel each of them, in one call
    def pin(self, version: int) -> None: ...  # keep an older point available for jobs (an anchor)
    def unpin(self, version: int) -> None: ...
    def idle_workers(self) -> list[int]: ...
    def now(self) -> float: ...
    def stop(self, reason: str) -> None: ...


class Method:
    """Base of all methods: hyperparameters are fixed at construction; state lives on self.

    Subclasses set `name`, `description`, `paper` and `params` (their own config keys with
    defaults) and override `start` and `on_result`. `on_result` returns whether the result
    was used (False: dropped, e.g. a stale gradient).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    trace_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MethodConfig, problem: Problem, n_workers: int):
        self.lr = config.lr
        self.batch = config.batch
        self.options = dict(config.params)
        self.problem = problem
        self.n_workers = n_workers

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Raise ConfigError for an option value the method does not accept (called at validation)."""

    def start(self, server: Server) -> None:
        raise NotImplementedError

    def on_result(self, server: Server, worker: int, result: Result) -> bool:
        raise NotImplementedError

    def every_result(self, server: Server) -> StepAndRestart | None:
        """The one rule this method applies to every result from now on, if it has one (None: it does not).

        Optional. Asked by both runtimes after `start` (and after `load_state`); when they get
        a rule, the simulator applies it to runs of results at once and the MPI server to each
        result directly (runtime/mpi/rule.py), with the same numbers as calling `on_result` for
        each, which they then do not call (over MPI a one-result rule steps with one BLAS axpy,
        which may round the last bit differently). Return a rule only if on_result would do
        exactly that (a batch rule: with a batch of its own that starts empty now).
        """
        return None

    def iterate(self, server: Server) -> np.ndarray:
        """The point whose quality the run reports (snapshots); the published point by default."""
        return server.x

    def max_payload_floats(self, dim: int) -> int:
        """The largest result payload this method's jobs produce (sizes the server's receive buffers)."""
        return dim

    # A method whose progress lives beyond the published point saves it with every snapshot,
    # so a resumed run continues it. "point" names the published point when it is not the iterate.
    def state_shapes(self) -> dict[str, int]:
        """Name -> length of each state vector (none by default)."""
        return {}

    def state(self, server: Server) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, server: Server, state: dict[str, np.ndarray], iterate: np.ndarray) -> None:
        """Called after start() when a run resumes from a snapshot."""

    def sgd_step(self, server: Server, direction: np.ndarray, scale: float, **trace: Any) -> int:
        """Publish x - scale * direction: kept for plugins written before server.step, which it calls."""
        return server.step(direction, scale, **trace)
