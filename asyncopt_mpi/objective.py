"""Which objective a run reports: the mean over all samples, or (1/n) sum_i f_i over the workers' shards.

Methods for heterogeneous data (malenia_sgd, amelie_sgd; seed 001) minimise
f(x) = (1/n) sum_i f_i(x), f_i the mean loss over worker i's shard D_i. With unequal shards
(workers.data_split = dirichlet, by_label with a remainder) that is not the mean over all
samples, and its minimiser differs. Such a method declares `objective = "worker_mean"`; the run
then reports loss, suboptimality (against that objective's own f*), grad_norm_sq and accuracy
of (1/n) sum_i f_i, and /problem's `objective` attribute says which one the file holds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SAMPLE_MEAN = "sample_mean"  # f = (1/m) sum_j f_j: every other method
WORKER_MEAN = "worker_mean"  # f = (1/n) sum_i f_i, f_i = mean over worker i's shard
SOLVER_OPTIONS = {"maxiter": 10_000, "maxfun": 20_000, "gtol": 1e-10, "ftol": 1e-15, "maxcor": 20}
ROW_BLOCK_FLOATS = 2**16  # floats of the shards' gradients full_grad sums in one block
DESCRIPTIONS = {
    SAMPLE_MEAN: "sample_mean: f(x) = (1/m) sum_j f_j(x), the mean over all samples",
    WORKER_MEAN: "worker_mean: f(x) = (1/n) sum_i f_i(x), f_i the mean over worker i's samples (Malenia/Amelie)",
}


class WorkerMeanObjective:
    """(1/n) sum_i f_i of a finite-sum problem, f_i the mean of its terms over shard i.

    Needs the problem's `loss_of(x, idx)` (mean loss of the terms idx, regulariser included)
    next to `grad(x, idx)`. f* is found with L-BFGS-B from the problem's x0 (compute_f_star).
    """

    name = WORKER_MEAN

    def __init__(self, problem: Any, shards: list[np.ndarray]):
        self.problem = problem
        self.shards = [np.asarray(shard) for shard in shards]
        # Equal shards as the rows of one array: the problem's row methods then evaluate many at once
        # (loss_rows, grad_rows: the numbers of loss_of and grad, shard by shard).
        self.rows = np.array(self.shards) if len({len(shard) for shard in self.shards}) == 1 else None
        self._f_star: float | None = None

    def loss(self, x: np.ndarray) -> float:
        if self.rows is not None and hasattr(self.problem, "loss_rows"):
            return float(np.mean(self.problem.loss_rows(x, self.rows)))
        return float(np.mean([self.problem.loss_of(x, shard) for shard in self.shards]))

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        g = np.zeros(self.problem.dim)
        if self.rows is not None:
            chunk = max(1, ROW_BLOCK_FLOATS // self.problem.dim)
            for start in range(0, len(self.rows), chunk):
                block = self.rows[start:start + chunk]
                stack = np.empty((len(block) + 1, g.size))
                stack[0] = g
                stack[1:] = self.problem.grad_rows(np.tile(x, (len(block), 1)), block)
                np.add.reduce(stack, axis=0, out=g)  # g + grad_1 + grad_2 + ..., in order (as the loop adds)
            return g / len(self.shards)
        for shard in self.shards:
            g += self.problem.grad(x, shard)
        return g / len(self.shards)

    def accuracy(self, x: np.ndarray) -> float:
        """Mean over workers of the accuracy on their own samples (nan for a problem without classes)."""
        predict = getattr(self.problem, "predict", None)
        if predict is None:
            return math.nan
        hits = predict(x) == self.problem.labels()
        if self.rows is not None:
            return float(np.mean(hits[self.rows].mean(axis=1)))
        return float(np.mean([hits[shard].mean() for shard in self.shards]))

    def metrics(self, x: np.ndarray) -> dict[str, float]:
        g = self.full_grad(x)
        return {"loss": self.loss(x), "grad_norm_sq": float(g @ g), "accuracy": self.accuracy(x)}

    def compute_f_star(self) -> float:
        """min (1/n) sum_i f_i as L-BFGS-B reaches it; kept in the f* cache (problems.f_star_cache) when
        the problem has a cache identity, per that identity and the shards."""
        if self._f_star is None:
            problem_identity = getattr(self.problem, "f_star_identity", None)
            if problem_identity is None:
                self._f_star = self._solve()
            else:
                from .problems import f_star_cache

                start = self.loss(self.problem.x0())
                key = f_star_cache.identity(WORKER_MEAN, problem_identity(), "L-BFGS-B", SOLVER_OPTIONS, *self.shards)
                self._f_star = f_star_cache.cached(key, self._solve, accept=lambda value: value <= start)
        return self._f_star

    def _solve(self) -> float:
        import scipy.optimize  # here, not at start-up: loading it costs more CPU than numpy and h5py together

        x0 = self.problem.x0()
        result = scipy.optimize.minimize(lambda x: (self.loss(x), self.full_grad(x)), x0, jac=True,
                                         method="L-BFGS-B", options=SOLVER_OPTIONS)
        value = self.loss(result.x) if np.all(np.isfinite(result.x)) else math.nan
        # never above f(x0): f* must bound every iterate's loss from below where it can
        return min(value, self.loss(x0)) if math.isfinite(value) else math.nan


def method_objective(method_name: str) -> str:
    """The objective a registered method minimises (SAMPLE_MEAN unless it declares another)."""
    from .methods import METHODS

    cls = METHODS.get(method_name)
    return getattr(cls, "objective", SAMPLE_MEAN) if cls is not None else SAMPLE_MEAN


def attach_objective(method_name: str, problem: Any, shards: list[np.ndarray | None]) -> None:
    """Give `problem` the objective the run reports (problem.reported_objective), from the method and the shards.

    Only a worker-mean method with real shards (not iid) and a problem that can evaluate a
    shard's loss gets WorkerMeanObjective; with iid data (1/n) sum_i f_i is the sample mean anyway.
    """
    if method_objective(method_name) != WORKER_MEAN or any(shard is None for shard in shards):
        return
    if not hasattr(problem, "loss_of"):
        return
    problem.reported_objective = WorkerMeanObjective(problem, shards)


def reported(problem: Any) -> Any:
    """What metrics and f* are computed from: the attached objective, else the problem itself."""
    return getattr(problem, "reported_objective", problem)


def objective_name(problem: Any) -> str:
    return WORKER_MEAN if isinstance(reported(problem), WorkerMeanObjective) else SAMPLE_MEAN
