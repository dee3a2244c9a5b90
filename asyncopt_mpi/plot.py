"""Figures like the seed papers': a metric against time, gradients, bytes or iterations, one line per run.

Runs that differ only in their seeds (workers.seed, problem.seed) form one line: the median
over seeds with a band from the lowest to the highest value. Reads results files only.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .results import read_run

X_AXES = {
    "time": "time", "grads": "gradients computed", "bytes": "bytes sent (up and down)", "iteration": "iterations",
}
Y_AXES = {
    "suboptimality": "f(x) - f*", "loss": "f(x)", "grad_norm_sq": "||grad f(x)||^2", "accuracy": "accuracy",
}
LOG_Y = {"suboptimality", "loss", "grad_norm_sq"}
# Method parameters that name a line, when they are set.
LABEL_KEYS = ("lr", "batch", "S", "p", "R", "K", "assign", "block", "sigma2", "eps", "max_delay", "delay_adaptive")


@dataclass
class Curve:
    label: str
    x: np.ndarray
    y: np.ndarray
    backend: str


def run_label(config: dict) -> str:
    """'method (lr=..., key=value, ...)' from a run's stored config: step size and non-default parameters."""
    from .methods import METHODS

    method = config.get("method", {})
    name = method.get("name", "?")
    defaults = {"batch": 1, **(METHODS[name].params if name in METHODS else {})}
    parts = [f"{key}={method[key]:g}" if isinstance(method[key], float) else f"{key}={method[key]}"
             for key in LABEL_KEYS if key in method and (key == "lr" or method[key] != defaults.get(key))]
    return f"{name} ({', '.join(parts)})" if parts else name


def load_curves(paths: list[str], x_axis: str, y_axis: str) -> list[Curve]:
    if x_axis not in X_AXES:
        raise UserError(f"--x {x_axis!r} is not accepted; accepted: {', '.join(X_AXES)}")
    if y_axis not in Y_AXES:
        raise UserError(f"--y {y_axis!r} is not accepted; accepted: {', '.join(Y_AXES)}")
    curves = []
    for path in paths:
        run = read_run(path)
        metrics = run["metrics"]
        if y_axis not in metrics or not len(metrics[y_axis]):
            raise UserError(f"{path}: no metrics to plot; compute them with `asyncopt evaluate {path}`")
        config = tomllib.loads(run["attrs"].get("config", ""))
        column = {"grads": "grads", "bytes": "bytes", "iteration": "iteration"}.get(x_axis, "time")
        curves.append(Curve(run_label(config), np.asarray(metrics[column], dtype=float),
                            np.asarray(metrics[y_axis], dtype=float), run["attrs"].get("backend", "mpi")))
    return curves


def median_band(curves: list[Curve], points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeds of one configuration on a common x grid: x, median, low, high (step interpolation)."""
    end = min(curve.x[-1] for curve in curves)
    start = max(curve.x[0] for curve in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([start])
    values = np.array([curve.y[np.clip(np.searchsorted(curve.x, grid, side="right") - 1, 0, None)] for curve in curves])
    return grid, np.median(values, axis=0), values.min(axis=0), values.max(axis=0)


def best_per_method(paths: list[str], y_axis: str = "suboptimality") -> list[str]:
    """For each method, the files of its best parameters: lowest final median value (how papers tune)."""
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    finals: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in paths:
        run = read_run(path)
        config = tomllib.loads(run["attrs"].get("config", ""))
        method, label = config.get("method", {}).get("name", "?"), run_label(config)
        groups[method][label].append(path)
        values = run["metrics"].get(y_axis, [])
        finals[(method, label)].append(float(values[-1]) if len(values) else math.inf)
    chosen = []
    for method, labels in sorted(groups.items()):
        best = min(labels, key=lambda label: np.nan_to_num(np.median(finals[(method, label)]), nan=math.inf))
        chosen += labels[best]
    return chosen


def plot(paths: list[str], output: str, x_axis: str = "time", y_axis: str = "suboptimality",
         title: str | None = None, logx: bool = False, size: tuple[float, float] = (6.4, 4.2), dpi: int = 120) -> None:
    """Draw one line per configuration (median and band over seeds) and save it as PNG or PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = load_curves(paths, x_axis, y_axis)
    groups: dict[str, list[Curve]] = defaultdict(list)
    for curve in curves:
        groups[curve.label].append(curve)
    figure, axes = plt.subplots(figsize=size, dpi=dpi)
    for label, members in groups.items():
        if len(members) == 1:
            line, = axes.step(members[0].x, members[0].y, where="post", label=label)
        else:
            grid, median, low, high = median_band(members)
            line, = axes.plot(grid, median, label=f"{label}, median of {len(members)}")
            axes.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if y_axis in LOG_Y and all(np.all(curve.y[np.isfinite(curve.y)] > 0) for curve in curves):
        axes.set_yscale("log")
    if logx:
        axes.set_xscale("log")
    x_label = X_AXES[x_axis]
    if x_axis == "time":
        virtual = all(curve.backend == "sim" for curve in curves)
        x_label = "time (virtual seconds)" if virtual else "time (seconds)"
    axes.set_xlabel(x_label)
    axes.set_ylabel(Y_AXES[y_axis])
    if title:
        axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    directory = os.path.dirname(output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(output)
    plt.close(figure)
