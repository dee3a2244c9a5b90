"""Mean and variance of a metric over the final part of runs: Freya PAGE's Table 2 (test accuracy, last 100K s).

`asyncopt final-stats FILES|DIR [--final 0.2] [--metric test_accuracy]` takes, in each file,
the snapshots whose time is in the last `final` share of that run's evaluated span
[(1 - final) T, T] (T = the last snapshot's time), and prints the mean and the population
variance of the metric over them, one row per file (sorted by mean, best first for
accuracies). Files without the metric (no held-out rows: all nan) show nan.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .errors import ConfigError
from .results import DAMAGE, damaged, open_results, require_groups, shown, values

ACCURACY_METRICS = ("accuracy", "test_accuracy")


def final_stats(path: str, metric: str = "test_accuracy", final: float = 0.2) -> dict[str, Any]:
    """{file, method, metric, from, to, rows, mean, variance, std} of `metric` over the run's last `final` share."""
    if not (isinstance(final, (int, float)) and 0 < final <= 1):
        raise ConfigError(f"--final: the share of the run to average over, a number in (0, 1], got {final}")
    try:
        times, metric_values, method = _read(path, metric)
    except DAMAGE as exc:
        raise damaged(path, exc) from None
    end = float(times[-1]) if len(times) else math.nan
    start = (1.0 - final) * end
    chosen = metric_values[(times >= start) & np.isfinite(metric_values)] if len(times) else metric_values[:0]
    mean = float(chosen.mean()) if chosen.size else math.nan
    variance = float(chosen.var()) if chosen.size else math.nan
    return {"file": path, "method": method, "metric": metric, "from": start, "to": end, "rows": int(chosen.size),
            "mean": mean, "variance": variance, "std": math.sqrt(variance) if chosen.size else math.nan}


def _read(path: str, metric: str) -> tuple[np.ndarray, np.ndarray, str]:
    """/metrics/time and /metrics/METRIC of a results file, and its method."""
    with open_results(path) as handle:
        require_groups(handle, path, ("metrics",))
        group = handle["metrics"]
        if metric not in group:
            raise ConfigError(f"--metric: {shown(path)} has no metrics/{shown(metric)}; it has "
                              f"{shown(', '.join(sorted(group)))}")
        times, metric_values = values(group["time"]), values(group[metric]).astype(float)
        if times.shape != metric_values.shape or times.ndim != 1:
            raise ValueError(f"metrics/time and metrics/{metric} differ in shape")
        return times, metric_values, str(handle.attrs.get("method", "?"))


def format_final_stats(rows: list[dict[str, Any]], fmt: str = "table") -> str:
    """A Markdown table like Freya PAGE's Table 2 (method, mean, variance over the window), or JSON."""
    if not rows:
        return ""
    metric = rows[0]["metric"]
    best_first = metric in ACCURACY_METRICS
    rows = sorted(rows, key=lambda r: (math.isnan(r["mean"]), -r["mean"] if best_first else r["mean"]))
    if fmt == "json":
        return json.dumps([{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                           for r in rows], indent=2)
    lines = [f"| method | mean {metric} | variance | std | snapshots | window [s] | file |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['mean']:.4f} | {r['variance']:.3g} | {r['std']:.3g} | {r['rows']} | "
                     f"{r['from']:.4g} to {r['to']:.4g} | {r['file']} |")
    return "\n".join(lines)
