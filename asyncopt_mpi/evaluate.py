"""Metrics at the recorded snapshots, computed after the run so evaluation never distorts timing."""

from __future__ import annotations

import math

import numpy as np

from .objective import reported
from .problems.base import Problem
from .results import METRIC_COLUMNS, read_snapshots, write_metrics

VALUE_COLUMNS = ("loss", "suboptimality", "grad_norm_sq", "accuracy", "test_loss", "test_accuracy")


def evaluate_points(problem: Problem, xs: np.ndarray, f_star: float) -> np.ndarray:
    """Rows of VALUE_COLUMNS for each point in xs (test_*: on the problem's held-out rows, nan without)."""
    rows = np.full((len(xs), len(VALUE_COLUMNS)), math.nan)
    objective = reported(problem)  # (1/n) sum_i f_i for Malenia/Amelie on shards (asyncopt_mpi.objective)
    for i, x in enumerate(xs):
        if not np.isfinite(x).all():
            continue  # a diverged point has no meaningful metrics; leave nan
        values = objective.metrics(x)
        test = problem.test_metrics(x) if hasattr(problem, "test_metrics") else {}
        rows[i] = (values["loss"], values["loss"] - f_star, values["grad_norm_sq"], values.get("accuracy", math.nan),
                   test.get("test_loss", math.nan), test.get("test_accuracy", math.nan))
    return rows


def metrics_table(snapshots: dict[str, np.ndarray], values: np.ndarray) -> dict[str, np.ndarray]:
    table = {name: snapshots[name] for name in ("time", "iteration", "grads", "bytes")}
    table.update({name: values[:, i] for i, name in enumerate(VALUE_COLUMNS)})
    assert set(table) == set(METRIC_COLUMNS)
    return table


def evaluate_file(path: str, problem: Problem, f_star: float,
                  snapshots: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Compute and store /metrics of a results file in this process; `snapshots` are its snapshots as
    read_snapshots reads them, when the caller has them (the run that wrote them), else they are read."""
    if snapshots is None:
        snapshots = read_snapshots(path)
    table = metrics_table(snapshots, evaluate_points(problem, snapshots["x"], f_star))
    write_metrics(path, table, f_star)
    return table
