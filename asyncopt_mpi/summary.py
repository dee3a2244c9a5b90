"""`asyncopt summary`: one row per results file, read from the file (never from a live run)."""

from __future__ import annotations

import math
import os
import tomllib
from typing import Any

import numpy as np

from .results import read_run

COLUMNS = (
    "file", "method", "backend", "workers", "status", "duration", "updates", "gradients",
    "loss", "suboptimality", "time_to_target",
)


def time_to_target(metrics: dict[str, np.ndarray], target: float | None) -> float:
    """First snapshot time at which f - f* <= target (nan if never or no target)."""
    if target is None or "suboptimality" not in metrics or not len(metrics["suboptimality"]):
        return math.nan
    reached = np.flatnonzero(metrics["suboptimality"] <= target)
    return float(metrics["time"][reached[0]]) if reached.size else math.nan


def summary_row(path: str) -> dict[str, Any]:
    run = read_run(path)
    attrs = run["attrs"]
    snapshots, trace, metrics = run["snapshots"], run["trace"], run["metrics"]
    times = [column[-1] for column in (snapshots.get("time", []), trace.get("time", [])) if len(column)]
    target = tomllib.loads(attrs.get("config", "")).get("stop", {}).get("target")
    has_metrics = "loss" in metrics and len(metrics["loss"]) > 0
    return {
        "file": path,
        "method": attrs.get("method", "?"),
        "backend": attrs.get("backend", "?"),
        "workers": attrs.get("n_workers", 0),
        "status": attrs.get("status", "?"),
        "duration": max(times) if times else 0.0,
        "updates": int(trace["iteration"][-1]) if len(trace.get("iteration", [])) else 0,
        # The last snapshot is taken when the run ends, so it counts every gradient received.
        "gradients": int(snapshots["grads"][-1]) if len(snapshots["grads"]) else 0,
        "loss": float(metrics["loss"][-1]) if has_metrics else math.nan,
        "suboptimality": float(metrics["suboptimality"][-1]) if has_metrics else math.nan,
        "time_to_target": time_to_target(metrics, target),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def summarize(paths: list[str]) -> str:
    rows = [summary_row(path) for path in paths]
    for row in rows:
        row["file"] = os.path.relpath(row["file"]) if not os.path.isabs(row["file"]) else row["file"]
    cells = [list(COLUMNS)] + [[_cell(row[name]) for name in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)
