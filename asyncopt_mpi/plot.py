"""Figures like the seed papers': a metric against time, gradients, bytes or iterations, one line per configuration.

A configuration is everything a run's file records except its seeds (workers.seed,
problem.seed), its stop rules and its output settings: backend, number of workers, problem and
data, timing model, method and every method key. Runs of one configuration form one line, the
median over the runs with a band from the 25th to the 75th percentile (interquartile range);
the legend names what differs between the lines. A run whose values become non-finite or grow
more than DIVERGED_FACTOR times above their start is left out, and a note under the figure says
so. Reads results files only.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import parse_stored_config
from .errors import UserError
from .results import read_run

X_AXES = {
    "time": "time", "grads": "gradients computed", "bytes": "bytes sent (up and down)", "iteration": "iterations",
}
Y_AXES = {
    "suboptimality": "f(x) - f*", "loss": "f(x)", "grad_norm_sq": "||grad f(x)||^2", "accuracy": "accuracy",
    "test_loss": "test loss (held-out rows)", "test_accuracy": "test accuracy (held-out rows)",
}
LOG_Y = {"suboptimality", "loss", "grad_norm_sq", "test_loss"}
# Method parameters that name a line when it is the only configuration, if they are set.
LABEL_KEYS = ("lr", "batch", "S", "p", "R", "K", "assign", "block", "sigma2", "eps", "max_delay", "delay_adaptive")
# Keys that do not make two runs different configurations: seeds, stop rules, output settings.
SEED_KEYS = ("workers.seed", "problem.seed")
IGNORED_SECTIONS = ("stop", "output")
DIVERGED_FACTOR = 1e3  # a loss-like curve that climbs this far above its first value diverged
BAND = "interquartile range (25th-75th percentile)"
SETTING_ORDER = ("backend", "workers", "problem.", "workers.", "graph.", "method.")


@dataclass
class Curve:
    label: str  # the run's method and step size (run_label)
    x: np.ndarray
    y: np.ndarray
    backend: str
    path: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # what makes its configuration (run_settings)

    @property
    def key(self) -> tuple:
        return settings_key(self.settings)


@dataclass
class Drawn:
    """What a figure shows: one entry per line, and notes about runs left out."""
    labels: list[str]
    runs: list[int]
    notes: list[str]


def run_label(config: dict) -> str:
    """'method (lr=..., key=value, ...)' from a run's stored config: step size and non-default parameters."""
    from .methods import METHODS

    method = config.get("method", {})
    name = method.get("name", "?")
    defaults = {"batch": 1, **(METHODS[name].params if name in METHODS else {})}
    parts = [f"{key}={method[key]:g}" if isinstance(method[key], float) else f"{key}={method[key]}"
             for key in LABEL_KEYS if key in method and (key == "lr" or method[key] != defaults.get(key))]
    return f"{name} ({', '.join(parts)})" if parts else name


def run_settings(attrs: dict, config: dict) -> dict[str, Any]:
    """A run's configuration as flat `section.key` settings plus `backend` and `workers`, seeds left out."""
    workers = attrs.get("n_workers", config.get("workers", {}).get("n")) or 0
    settings: dict[str, Any] = {"backend": str(attrs.get("backend", "mpi")), "workers": int(workers)}
    for section, values in config.items():
        if section in IGNORED_SECTIONS or not isinstance(values, dict):
            continue
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in SEED_KEYS and name != "workers.n":
                settings[name] = value
    return settings


def settings_key(settings: dict[str, Any]) -> tuple:
    return tuple(sorted((name, repr(value)) for name, value in settings.items()))


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
        config = parse_stored_config(run["attrs"].get("config", ""), str(path))
        column = {"grads": "grads", "bytes": "bytes", "iteration": "iteration"}.get(x_axis, "time")
        curves.append(Curve(run_label(config), np.asarray(metrics[column], dtype=float),
                            np.asarray(metrics[y_axis], dtype=float), run["attrs"].get("backend", "mpi"),
                            path=str(path), settings=run_settings(run["attrs"], config)))
    return curves


def group_curves(curves: list[Curve]) -> dict[tuple, list[Curve]]:
    """Curves of the same configuration (all settings equal; seeds may differ), in first-seen order."""
    groups: dict[tuple, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(curve.key, []).append(curve)
    return groups


def _order(name: str) -> tuple[int, str]:
    for rank, prefix in enumerate(SETTING_ORDER):
        if name == prefix or (prefix.endswith(".") and name.startswith(prefix)):
            return rank, name
    return len(SETTING_ORDER), name


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and os.sep in value:
        return os.path.basename(value)  # data files by name
    text = str(value)
    return text if len(text) <= 30 else text[:27] + "..."


def legend_labels(groups: dict[tuple, list[Curve]]) -> dict[tuple, str]:
    """'method (what differs from the other lines)'.

    Settings outside [method] (backend, workers, problem, timing, graph) are named when they
    differ between any lines; a method's own keys when they differ between lines of that method.
    A method with a single line is named with its step size and non-default keys (run_label).
    """
    firsts = {key: members[0] for key, members in groups.items()}
    missing = object()

    def differing(curves: list[Curve], inside_method: bool) -> list[str]:
        names = set().union(*(curve.settings for curve in curves)) if curves else set()
        names = {name for name in names if name.startswith("method.") == inside_method and name != "method.name"}
        return sorted((name for name in names
                       if len({repr(curve.settings.get(name, missing)) for curve in curves}) > 1), key=_order)

    shared = differing(list(firsts.values()), inside_method=False)
    by_method: dict[str, list[Curve]] = defaultdict(list)
    for curve in firsts.values():
        by_method[curve.settings.get("method.name", curve.label.split(" ")[0])].append(curve)
    own = {method: differing(curves, inside_method=True) for method, curves in by_method.items()}
    labels = {}
    for key, curve in firsts.items():
        method = curve.settings.get("method.name", curve.label.split(" ")[0])
        parts = [_part(name, curve.settings.get(name, "-"), shared) for name in shared]
        if len(by_method[method]) == 1:
            inner = curve.label[len(method):].strip(" ()")
            parts += [inner] if inner else []
        else:
            parts += [_part(name, curve.settings.get(name, "-"), own[method]) for name in own[method]]
        labels[key] = f"{method} ({', '.join(parts)})" if parts else method
    if len(set(labels.values())) < len(labels):  # same visible settings, e.g. lists cut short: number them
        seen: dict[str, int] = defaultdict(int)
        for key, label in labels.items():
            seen[label] += 1
            labels[key] = f"{label} #{seen[label]}"
    return labels


def _part(name: str, value: Any, names: list[str]) -> str:
    """One setting in a legend: the backend bare, workers as n=..., others as key=value (section if ambiguous)."""
    if name == "backend":
        return _show(value)
    if name == "workers":
        return f"n={value}"
    brief = name.split(".", 1)[-1]
    clash = sum(other.split(".", 1)[-1] == brief for other in names) > 1
    return f"{name if clash else brief}={_show(value)}"


def diverged(curve: Curve, y_axis: str) -> bool:
    """Non-finite values, or (loss-like metrics) a climb above DIVERGED_FACTOR times the first value."""
    if not np.all(np.isfinite(curve.y)):
        return True
    if y_axis in LOG_Y and curve.y.size and curve.y[0] > 0:
        return bool(np.max(curve.y) > DIVERGED_FACTOR * curve.y[0])
    return False


def median_band(curves: list[Curve], points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of one configuration on a common x grid: x, median, 25th and 75th percentile (step interpolation)."""
    end = min(curve.x[-1] for curve in curves)
    start = max(curve.x[0] for curve in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([start])
    values = np.array([curve.y[np.clip(np.searchsorted(curve.x, grid, side="right") - 1, 0, None)] for curve in curves])
    low, median, high = np.percentile(values, [25, 50, 75], axis=0)
    return grid, median, low, high


def best_per_method(paths: list[str], y_axis: str = "suboptimality") -> list[str]:
    """For each method (and each backend, problem, workers ... setting), the files of its best method
    parameters: the lowest final median value (how papers tune)."""
    curves = load_curves(paths, "time", y_axis) if paths else []
    candidates: dict[tuple, list[list[Curve]]] = defaultdict(list)
    for members in group_curves(curves).values():
        settings = members[0].settings
        tuning = settings_key({k: v for k, v in settings.items() if not k.startswith("method.") or k == "method.name"})
        candidates[tuning].append(members)
    chosen = []
    for options in candidates.values():
        def final(members: list[Curve]) -> float:
            values = [curve.y[-1] if curve.y.size else math.inf for curve in members]
            return float(np.nan_to_num(np.median(values), nan=math.inf))
        chosen += [curve.path for curve in min(options, key=final)]
    return chosen


MAX_PIXELS = 2**16  # Agg's limit per side


def parse_pair(option: str, text: str | None, allow_empty: bool = False) -> tuple[float | None, float | None] | None:
    """'A,B' as two numbers (either may be empty when allow_empty, e.g. --ylim 1e-8,)."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        values = tuple(None if allow_empty and not part.strip() else float(part) for part in parts)
    except ValueError:
        example = "1e-8,10 (or 1e-8, to set only the bottom)" if allow_empty else "6.4,4.2"
        raise UserError(f"{option} {text!r}: expected two numbers separated by a comma, e.g. {example}") from None
    if not all(value is None or math.isfinite(value) for value in values):
        raise UserError(f"{option} {text!r}: expected finite numbers (not nan or inf)")
    return values


def _apply_style(style: str | None):
    import matplotlib.pyplot as plt

    if style is None:
        return plt.style.context("default")
    if style not in plt.style.available and not os.path.isfile(style):
        accepted = ", ".join(sorted(name for name in plt.style.available if not name.startswith("_")))
        raise UserError(f"--style {style!r}: not a matplotlib style or style file; accepted: {accepted}")
    return plt.style.context(style)


def plot(paths: list[str], output: str, x_axis: str = "time", y_axis: str = "suboptimality",
         title: str | None = None, logx: bool = False, size: tuple[float, float] = (6.4, 4.2), dpi: int = 120,
         ylim: tuple[float | None, float | None] | None = None, style: str | None = None,
         export: str | None = None) -> Drawn:
    """Draw one line per configuration (median and interquartile band over its runs); save PNG/PDF/SVG.

    Diverged runs are left out with a note under the figure; `export` writes the drawn lines as CSV.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if dpi <= 0 or min(size) <= 0:
        raise UserError(f"--dpi {dpi} / --figsize {size[0]:g},{size[1]:g}: must be positive")
    if max(size) * dpi > MAX_PIXELS:
        raise UserError(f"--dpi {dpi} / --figsize {size[0]:g},{size[1]:g}: an image of {size[0] * dpi:.3g} x "
                        f"{size[1] * dpi:.3g} pixels; at most {MAX_PIXELS} per side")
    from matplotlib.backend_bases import FigureCanvasBase

    extension = os.path.splitext(output)[1].lstrip(".").lower()
    if extension and extension not in FigureCanvasBase.get_supported_filetypes():
        accepted = ", ".join(sorted(FigureCanvasBase.get_supported_filetypes()))
        raise UserError(f"-o {output}: .{extension} is not an image format; accepted: {accepted}")
    curves = load_curves(paths, x_axis, y_axis)
    groups = group_curves(curves)
    labels = legend_labels(groups)
    notes, rows, drawn = [], [], Drawn([], [], [])
    with _apply_style(style):
        figure, axes = plt.subplots(figsize=size, dpi=dpi)
        kept_curves = []
        for key, members in groups.items():
            kept = [curve for curve in members if not diverged(curve, y_axis)]
            if len(kept) < len(members):
                gone = len(members) - len(kept)
                notes.append(f"{labels[key]}: {gone} of {len(members)} runs diverged, not drawn")
            if not kept:
                continue
            kept_curves += kept
            if len(kept) == 1:
                x, median = kept[0].x, kept[0].y
                low = high = median
                line, = axes.step(x, median, where="post", label=labels[key])
            else:
                x, median, low, high = median_band(kept)
                line, = axes.plot(x, median, label=f"{labels[key]}, median of {len(kept)}")
                axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn.labels.append(labels[key])
            drawn.runs.append(len(kept))
            rows += [(labels[key], len(kept), *values) for values in zip(x, median, low, high)]
        if y_axis in LOG_Y and kept_curves and all(np.all(curve.y > 0) for curve in kept_curves):
            axes.set_yscale("log")
        if logx:
            axes.set_xscale("log")
        if ylim is not None:
            axes.set_ylim(*ylim)
        axes.set_xlabel(_x_label(x_axis, curves))
        axes.set_ylabel(Y_AXES[y_axis])
        if title:
            axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        if drawn.labels:
            axes.legend(fontsize="small")
        caption = []
        if any(count > 1 for count in drawn.runs):
            caption.append(f"Lines: median over the runs of a configuration (seeds); bands: {BAND}.")
        caption += notes
        if caption:
            figure.text(0.01, 0.01, "\n".join(caption), fontsize="x-small", ha="left", va="bottom", wrap=True)
            figure.tight_layout(rect=(0, 0.035 * len(caption) + 0.01, 1, 1))
        else:
            figure.tight_layout()
        try:
            directory = os.path.dirname(output)
            if directory:
                os.makedirs(directory, exist_ok=True)
            figure.savefig(output)
        except OSError as exc:
            raise UserError(f"-o {output[:200]}: cannot write it ({exc.strerror or exc})") from None
        plt.close(figure)
    if export:
        write_csv(export, x_axis, y_axis, rows)
    drawn.notes = notes
    return drawn


def _x_label(x_axis: str, curves: list[Curve]) -> str:
    if x_axis != "time":
        return X_AXES[x_axis]
    backends = {curve.backend for curve in curves}
    if backends == {"sim"}:
        return "time (virtual seconds)"
    return "time (seconds; virtual for simulator runs)" if "sim" in backends else "time (seconds)"


def write_csv(path: str, x_axis: str, y_axis: str, rows: list[tuple]) -> None:
    """The drawn lines: label, runs, x, median, 25th and 75th percentile (equal for a single run)."""
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "runs", x_axis, f"{y_axis}_median", f"{y_axis}_q25", f"{y_axis}_q75"])
            for label, runs, x, median, low, high in rows:
                writer.writerow([label, runs, repr(float(x)), repr(float(median)), repr(float(low)), repr(float(high))])
    except OSError as exc:  # e.g. a parent that is a file, a read-only or full disk
        raise UserError(f"--export {path[:200]}: cannot write it ({exc.strerror or exc})") from None
