"""Figures like the seed papers': a metric against time, gradients, bytes or iterations, one line per configuration.

A configuration is everything a run's file records except its seeds (workers.seed,
problem.seed), its stop rules and its output settings: backend, number of workers, problem and
data, timing model, method and every method key. Runs of one configuration form one line, the
median over the runs with a band from the 25th to the 75th percentile (interquartile range);
the legend names what differs between the lines, and lines are ordered by their settings (numbers
as numbers: n=4, n=8, n=16). A run whose values become non-finite or grow more than
DIVERGED_FACTOR times above their start is left out, and a note under the figure says so. A run
whose problem has no known f* is drawn on the loss instead of f(x) - f*, with a note. With
`best`, each method is drawn at its best parameters only (choose_best); a best value at the edge
of the values tried gets a note. Reads results files only.
"""

from __future__ import annotations

import csv
import io
import math
import os
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Collection

import numpy as np

from . import side_files
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
    metric: str = ""  # the /metrics column drawn: the one asked for, or "loss" when f* is unknown

    @property
    def key(self) -> tuple:
        return settings_key(self.settings)


@dataclass
class Drawn:
    """What a figure shows: one entry per line, and notes about runs left out."""
    labels: list[str]
    runs: list[int]
    notes: list[str]
    considered: int = 0  # runs looked at (after choosing the best parameters, if asked)


@dataclass
class Choice:
    """The curves of each method's best parameters, the method keys that were chosen, and notes."""
    curves: list[Curve]
    tuned: set[str]
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


def load_curves(paths: list[str], x_axis: str, y_axis: str, skippable: Collection[str] = frozenset(),
                warn: Callable[[str], None] | None = None) -> list[Curve]:
    """One curve per file. A file in `skippable` (found in a folder) that cannot be plotted (no
    metrics: a killed run) is left out with a `warn`ing; any other raises UserError."""
    if x_axis not in X_AXES:
        raise UserError(f"--x {x_axis!r} is not accepted; accepted: {', '.join(X_AXES)}")
    if y_axis not in Y_AXES:
        raise UserError(f"--y {y_axis!r} is not accepted; accepted: {', '.join(Y_AXES)}")
    curves = []
    for path in paths:
        try:
            curves.append(_load_curve(path, x_axis, y_axis))
        except UserError as exc:
            if path not in skippable:
                raise
            if warn is not None:
                warn(f"skipped: {exc}")
    if paths and not curves:
        raise UserError(f"none of the {len(paths)} files could be plotted (see the warnings above)")
    return curves


def _load_curve(path: str, x_axis: str, y_axis: str) -> Curve:
    run = read_run(path)
    metrics = run["metrics"]
    if y_axis not in metrics or not len(metrics[y_axis]):
        name = side_files.shown(str(path))
        raise UserError(f"{name}: no metrics to plot; compute them with `asyncopt evaluate {name}`")
    metric = y_axis
    if y_axis == "suboptimality" and f_star_unknown(run) and "loss" in metrics:
        metric = "loss"  # f(x) - f* is nan throughout; the loss still shows the run
    config = parse_stored_config(run["attrs"].get("config", ""), str(path))
    column = {"grads": "grads", "bytes": "bytes", "iteration": "iteration"}.get(x_axis, "time")
    return Curve(run_label(config), np.asarray(metrics[column], dtype=float),
                 np.asarray(metrics[metric], dtype=float), run["attrs"].get("backend", "mpi"),
                 path=str(path), settings=run_settings(run["attrs"], config), metric=metric)


def f_star_unknown(run: dict) -> bool:
    """The run's /problem attribute f_star is missing or nan (a problem without compute_f_star)."""
    try:
        return not math.isfinite(float(run["problem"].get("f_star", math.nan)))
    except (TypeError, ValueError):
        return True


def group_curves(curves: list[Curve]) -> dict[tuple, list[Curve]]:
    """Curves of the same configuration (all settings equal; seeds may differ), in first-seen order."""
    groups: dict[tuple, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(curve.key, []).append(curve)
    return groups


def ordered_groups(groups: dict[tuple, list[Curve]]) -> dict[tuple, list[Curve]]:
    """The groups by method, then by their settings in SETTING_ORDER, numbers compared as numbers."""
    firsts = [members[0].settings for members in groups.values()]
    names = sorted(set().union(*firsts) - {"method.name"}, key=_order) if firsts else []

    def value_key(value: Any) -> tuple:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, value if isinstance(value, str) else repr(value))

    def group_key(item: tuple[tuple, list[Curve]]) -> tuple:
        settings = item[1][0].settings
        return (str(settings.get("method.name", "")),
                *(value_key(settings[name]) if name in settings else (2, 0.0, "") for name in names))

    return dict(sorted(groups.items(), key=group_key))


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


def legend_labels(groups: dict[tuple, list[Curve]], shown: set[str] = frozenset()) -> dict[tuple, str]:
    """'method (what differs from the other lines)'.

    Settings outside [method] (backend, workers, problem, timing, graph) are named when they
    differ between any lines; a method's own keys when they differ between lines of that method,
    or when they are in `shown` (parameters chosen as the best, named even if every line has the
    same). A method with a single line is named with its step size and non-default keys (run_label).
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
    own = {}
    for method, curves in by_method.items():
        chosen = {name for name in shown if any(name in curve.settings for curve in curves)}
        own[method] = sorted(set(differing(curves, inside_method=True)) | chosen, key=_order)
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
    """Non-finite values, or (loss-like metrics) a climb above DIVERGED_FACTOR times the first value
    (for a first value at or below zero: by DIVERGED_FACTOR times its size, at least 1)."""
    if not np.all(np.isfinite(curve.y)):
        return True
    if (curve.metric or y_axis) in LOG_Y and curve.y.size:
        first, top = float(curve.y[0]), float(np.max(curve.y))
        return top > DIVERGED_FACTOR * first if first > 0 else top - first > DIVERGED_FACTOR * max(-first, 1.0)
    return False


def unavailable(curve: Curve) -> bool:
    """Every value nan: the metric does not apply to the run (e.g. accuracy of a regression)."""
    return bool(curve.y.size) and bool(np.all(np.isnan(curve.y)))


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
    return [curve.path for curve in choose_best(curves).curves]


def choose_best(curves: list[Curve]) -> Choice:
    """Per method and setting outside [method], the configuration with the lowest final median value.

    The method keys whose values differ among a method's configurations were chosen (`tuned`, which
    always holds method.lr: a folder of tuned runs holds only the chosen step sizes); a chosen
    number that is the smallest or largest of the values tried gets a note: the best may lie
    beyond the grid.
    """
    candidates: dict[tuple, list[list[Curve]]] = defaultdict(list)
    for members in ordered_groups(group_curves(curves)).values():  # notes in the legend's order
        settings = members[0].settings
        candidates[settings_key(_outside_method(settings))].append(members)
    outside = [_outside_method(options[0][0].settings) for options in candidates.values()]
    naming = [name for name in sorted(set().union(*outside) - {"method.name"}, key=_order)
              if len({repr(settings.get(name)) for settings in outside}) > 1] if outside else []
    chosen: list[Curve] = []
    tuned = {"method.lr"}
    notes: list[str] = []
    for options in candidates.values():
        best = min(options, key=_final)
        chosen += best
        settings = best[0].settings
        where = ", ".join(_part(name, settings.get(name, "-"), naming) for name in naming)
        method = str(settings.get("method.name", best[0].label.split(" ")[0]))
        subject = f"{method} ({where})" if where else method
        for name in sorted({name for members in options for name in members[0].settings}, key=_order):
            if not name.startswith("method.") or name == "method.name":
                continue
            tried = {repr(members[0].settings.get(name)): members[0].settings.get(name) for members in options}
            if len(tried) < 2:
                continue
            tuned.add(name)
            value = settings.get(name)
            numbers = sorted(v for v in tried.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
            if len(numbers) < len(tried) or value not in (numbers[0], numbers[-1]) or _final(best) == math.inf:
                continue  # not numbers, inside the grid, or every value failed (then no best to extend from)
            edge = "smallest" if value == numbers[0] else "largest"
            grid = ", ".join(_show(number) for number in numbers)
            notes.append(f"{subject}: best {name} = {_show(value)} is the {edge} of its grid ({grid}); extend the grid")
    return Choice(chosen, tuned, notes)


def _outside_method(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if not k.startswith("method.") or k == "method.name"}


def _final(members: list[Curve]) -> float:
    """The median over runs of the last value (non-finite or no values: inf, never the best)."""
    median = float(np.median([curve.y[-1] if curve.y.size else math.inf for curve in members]))
    return median if math.isfinite(median) else math.inf


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
    import matplotlib.style

    if style is None:
        return matplotlib.style.context("default")
    if style not in matplotlib.style.available and not os.path.isfile(style):
        accepted = ", ".join(sorted(name for name in matplotlib.style.available if not name.startswith("_")))
        raise UserError(f"--style {style!r}: not a matplotlib style or style file; accepted: {accepted}")
    return matplotlib.style.context(style)


def plot(paths: list[str], output: str, x_axis: str = "time", y_axis: str = "suboptimality",
         title: str | None = None, logx: bool = False, size: tuple[float, float] = (6.4, 4.2), dpi: int = 120,
         ylim: tuple[float | None, float | None] | None = None, style: str | None = None,
         export: str | None = None, best: bool = False, skippable: Collection[str] = frozenset(),
         warn: Callable[[str], None] | None = None) -> Drawn:
    """Draw one line per configuration (median and interquartile band over its runs); save PNG/PDF/SVG.

    `best`: each method at its best parameters only (choose_best). Diverged runs are left out
    with a note under the figure; `export` writes the drawn lines as CSV. Files in `skippable`
    that cannot be plotted are left out with a `warn`ing (load_curves).
    """
    # A Figure of its own, saved through the file format's canvas: never pyplot, so the caller's
    # matplotlib backend (a notebook's) is left as it was and no figure stays open.
    from matplotlib.figure import Figure

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
    curves = load_curves(paths, x_axis, y_axis, skippable, warn)
    notes: list[str] = []
    shown: set[str] = set()
    if best:
        choice = choose_best(curves)
        curves, shown, notes = choice.curves, choice.tuned, choice.notes
    groups = ordered_groups(group_curves(curves))
    labels = legend_labels(groups, shown)
    rows, drawn = [], Drawn([], [], [], considered=len(curves))
    no_f_star = [labels[key] for key, members in groups.items() if any(curve.metric != y_axis for curve in members)]
    if no_f_star:
        notes.append(f"f* unknown, drawn on the loss f(x): {', '.join(no_f_star)}")
    with _apply_style(style):
        figure = Figure(figsize=size, dpi=dpi)
        axes = figure.subplots()
        kept_curves = []
        for key, members in groups.items():
            empty = [curve for curve in members if unavailable(curve)]
            if empty:
                notes.append(f"{labels[key]}: {len(empty)} of {len(members)} runs have no {y_axis} values (nan), "
                             "not drawn")
            kept = [curve for curve in members if not unavailable(curve) and not diverged(curve, y_axis)]
            if len(kept) + len(empty) < len(members):
                gone = len(members) - len(kept) - len(empty)
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
        axes.set_ylabel(_y_label(y_axis, curves))
        if title:  # wrapped: a reproduction's title (figure, panel, scale) is wider than the axes
            axes.set_title("\n".join(textwrap.wrap(title, 64)), fontsize="medium")
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
            # Drawn into memory, then written here: savefig into a path can drop a failed write (a full disk,
            # /dev/full) without an error, and the plot would be reported written.
            image = io.BytesIO()
            figure.savefig(image, format=extension or None)
            with open(output, "wb") as handle:
                handle.write(image.getbuffer())
        except OSError as exc:
            raise UserError(f"-o {output[:200]}: cannot write it ({exc.strerror or exc})") from None
    if export:
        write_csv(export, x_axis, y_axis, rows)
    drawn.notes = notes
    return drawn


def _y_label(y_axis: str, curves: list[Curve]) -> str:
    """The metric's name; the loss's when no run knows f*, both when some do and some do not."""
    metrics = {curve.metric for curve in curves}
    if metrics == {"loss"} and y_axis != "loss":
        return f"{Y_AXES['loss']} (f* unknown)"
    if len(metrics) > 1:
        return f"{Y_AXES[y_axis]}, or {Y_AXES['loss']} where f* is unknown"
    return Y_AXES[y_axis]


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
