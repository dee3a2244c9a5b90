"""`asyncopt summary`: one row per results file (or per worker), as a table, CSV or JSON; reads files only."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any, Callable

import numpy as np

from .config import parse_stored_config
from .errors import UserError
from .parameters import cell, flat_config, parameter_columns
from .results import DAMAGE, damaged, decode_attrs, open_results, read_run, require_groups, values
from .results import shown as cut

COLUMNS = (
    "file", "method", "backend", "workers", "status", "duration", "updates", "gradients",
    "loss", "suboptimality", "time_to_target",
)
PARAMETERS_AFTER = "method"  # the runs' differing config keys (and seed) follow this column

WORKER_COLUMNS = (
    "file", "worker", "jobs", "grads", "busy_time", "idle_time", "overrun_time", "bytes_up", "bytes_down",
    "accepted_share",
)


def time_to_target(metrics: dict[str, np.ndarray], target: float | None) -> float:
    """First snapshot time at which f - f* <= target (nan if never or no target)."""
    if target is None or "suboptimality" not in metrics or not len(metrics["suboptimality"]):
        return math.nan
    reached = np.flatnonzero(metrics["suboptimality"] <= target)
    return float(metrics["time"][reached[0]]) if reached.size else math.nan


def _duration(run: dict[str, Any]) -> float:
    ends = [column[-1] for column in (run["snapshots"].get("time", []), run["trace"].get("time", [])) if len(column)]
    return float(max(ends)) if ends else 0.0


# What a run's row shows, by where it is in the file: root attributes, then columns of which the
# row needs the last value only, then columns it looks through (time to target).
ROW_ATTRS = ("method", "backend", "n_workers", "status", "config")
LAST_ROWS = {"snapshots": ("time", "grads"), "trace": ("time", "iteration")}
WHOLE_COLUMNS = {"metrics": ("time", "loss", "suboptimality")}


# Row values of files this process wrote (a sweep's runs), by absolute path, with the file's identity
# (device, inode, size, modification time) then: read_row_values answers from here while it is unchanged.
_written: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}


def _identity(path: str) -> tuple[int, ...] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def remember_row_values(path: str, attrs: dict[str, Any], snapshots: dict[str, np.ndarray],
                        trace: dict[str, np.ndarray], metrics: dict[str, np.ndarray]) -> None:
    """What read_row_values would read from the closed file `path`, as the run that wrote it knows it:
    its ROW_ATTRS, its snapshots (all rows) and /trace's last row, and its metrics table."""
    identity = _identity(path)
    if identity is None:
        return
    run = {"attrs": {key: attrs[key] for key in ROW_ATTRS if key in attrs},
           "snapshots": {name: snapshots[name][-1:] for name in LAST_ROWS["snapshots"]},
           "trace": {name: trace[name] for name in LAST_ROWS["trace"] if name in trace},
           **{group: {name: np.asarray(metrics[name]) for name in names if name in metrics}
              for group, names in WHOLE_COLUMNS.items()}}
    _written[os.path.abspath(path)] = (identity, run)


def forget_row_values() -> None:
    """Forget what remember_row_values kept (a sweep starts with its own runs only)."""
    _written.clear()


def read_row_values(path: str) -> dict[str, Any]:
    """The parts of a results file a run's row shows, shaped as read_run's answer: ROW_ATTRS, the last
    row of the LAST_ROWS columns and the WHOLE_COLUMNS (all of them a few values per snapshot). The rest
    (events, points, workers, provenance) is not read: a sweep's summary reads each of its files, unless
    this process wrote the file and it has not changed since (remember_row_values)."""
    known = _written.get(os.path.abspath(path))
    if known is not None and known[0] == _identity(path):
        return known[1]
    try:
        with open_results(path) as handle:
            require_groups(handle, path, ("snapshots",))
            run: dict[str, Any] = {"attrs": decode_attrs({key: handle.attrs[key] for key in ROW_ATTRS
                                                          if key in handle.attrs})}
            for group, names in LAST_ROWS.items():
                found = handle[group] if group in handle else {}
                present = names if group == "snapshots" else [name for name in names if name in found]
                run[group] = {name: _last_row(found[name]) for name in present}  # snapshots: each column required
            for group, names in WHOLE_COLUMNS.items():
                found = handle[group] if group in handle else {}
                run[group] = {name: values(found[name]) for name in names if name in found}
    except DAMAGE as exc:
        raise damaged(path, exc) from None
    return run


def _last_row(dataset) -> Any:
    """A column's last row as a one-row array (none: empty), checked as `values` checks a read."""
    rows = dataset.shape[0]
    return values(dataset, slice(max(rows - 1, 0), rows))


def summary_row(path: str, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run's row (from read_row_values, or read_run's whole file); its flat config (`section.key`
    values) is under the key "parameters"."""
    run = run or read_row_values(path)
    attrs = run["attrs"]
    snapshots, trace, metrics = run["snapshots"], run["trace"], run["metrics"]
    config = parse_stored_config(attrs.get("config", ""), path)
    target = config.get("stop", {}).get("target")
    has_metrics = "loss" in metrics and len(metrics["loss"]) > 0
    return {
        "parameters": flat_config(config),
        "file": path,
        "method": attrs.get("method", "?"),
        "backend": attrs.get("backend", "?"),
        "workers": int(attrs.get("n_workers", 0)),
        "status": attrs.get("status", "?"),
        "duration": _duration(run),
        "updates": int(trace["iteration"][-1]) if len(trace.get("iteration", [])) else 0,
        # The last snapshot is taken when the run ends, so it counts every gradient received.
        "gradients": int(snapshots["grads"][-1]) if len(snapshots["grads"]) else 0,
        "loss": float(metrics["loss"][-1]) if has_metrics else math.nan,
        "suboptimality": float(metrics["suboptimality"][-1]) if has_metrics else math.nan,
        "time_to_target": time_to_target(metrics, target),
    }


def worker_rows(path: str, run: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per worker: jobs, gradients, busy and idle time, overrun, bytes, share of results the method used."""
    run = run or read_run(path)
    workers, events = run["workers"], run["events"]
    duration = _duration(run)
    n = int(run["attrs"].get("n_workers", 0))
    answered = np.bincount(events.get("worker", np.zeros(0, int)), minlength=n)
    used = np.bincount(events.get("worker", np.zeros(0, int)), weights=events.get("accepted", np.zeros(0)), minlength=n)
    rows = []
    for worker in range(n):
        busy = float(workers["busy_time"][worker])
        rows.append({
            "file": path, "worker": worker,
            "jobs": int(workers["jobs"][worker]), "grads": int(workers["grads"][worker]),
            "busy_time": busy, "idle_time": max(duration - busy, 0.0),
            "overrun_time": float(workers["overrun_time"][worker]),
            "bytes_up": int(workers["bytes_up"][worker]), "bytes_down": int(workers["bytes_down"][worker]),
            "accepted_share": float(used[worker] / answered[worker]) if answered[worker] else math.nan,
        })
    return rows


def _sort(rows: list[dict[str, Any]], key: str | None, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    if key is None:
        return rows
    if key not in columns:
        raise UserError(f"--sort {key!r} is not a column; accepted: {', '.join(columns)}")

    def order(row: dict[str, Any]):
        value = row[key]
        missing = isinstance(value, float) and math.isnan(value)
        return (missing, 0 if missing else value)  # runs without a value (never reached) go last

    return sorted(rows, key=order)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [list(columns)] + [[_cell(row[name]) for name in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: "" if isinstance(row[name], float) and math.isnan(row[name]) else row[name]
                         for name in columns})
    return buffer.getvalue().rstrip("\n")


def _json(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    clean = [{key: None if isinstance(row[key], float) and not math.isfinite(row[key]) else row[key]
              for key in columns} for row in rows]
    return json.dumps(clean, indent=2)


def with_parameters(rows: list[dict[str, Any]], columns: tuple[str, ...], all_keys: bool = False,
                    seed: bool = False) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Rows with one column per config key that differs among them (every key with `all_keys`), and
    `seed` (workers.seed) when asked, placed after the method column."""
    chosen = parameter_columns([row["parameters"] for row in rows], all_keys)
    extra = [name for name in chosen if name not in ("method.name", "workers.seed")]
    extra += ["seed"] if seed or "workers.seed" in chosen else []
    for row in rows:
        parameters = row.pop("parameters")
        row.update({name: cell(parameters.get(name)) for name in extra if name != "seed"})
        if "seed" in extra:
            row["seed"] = parameters.get("workers.seed", 0)
    at = columns.index(PARAMETERS_AFTER) + 1
    return rows, (*columns[:at], *extra, *columns[at:])


def summarize(paths: list[str], sort: str | None = None, fmt: str = "table", workers: bool = False,
              skippable: set[str] = frozenset(), warn: Callable[[str], None] | None = None,
              all_keys: bool = False) -> str:
    """The summary of results files as text: fmt is table, csv or json; per worker with workers=True.

    Run rows carry one column per config key that differs among the runs (`all_keys`: every key);
    CSV and JSON always carry the seed. A file in `skippable` (found in a folder) that cannot be read
    is left out with a `warn`ing; any other unreadable file raises UserError.
    """
    rows: list[dict[str, Any]] = []
    skipped = 0
    for path in paths:
        shown = os.path.relpath(path) if not os.path.isabs(path) else path
        try:
            run = read_run(path) if workers else read_row_values(path)
            try:
                found = worker_rows(shown, run) if workers else [summary_row(shown, run)]
            except DAMAGE as exc:  # a value of a damaged file that is not what a run writes
                raise UserError(f"{cut(path)}: not a complete results file ({type(exc).__name__}: {cut(str(exc))})") from None
        except UserError as exc:
            if path not in skippable:
                raise
            skipped += 1
            if warn is not None:
                warn(f"skipped: {exc}")
            continue
        rows += found
    if skipped and not rows:
        raise UserError(f"none of the {skipped} files could be read (see the warnings above)")
    columns = WORKER_COLUMNS if workers else COLUMNS
    if not workers:
        rows, columns = with_parameters(rows, columns, all_keys, seed=fmt in ("csv", "json"))
    rows = _sort(rows, sort, columns)
    if fmt == "csv":
        return _csv(rows, columns)
    if fmt == "json":
        return _json(rows, columns)
    return _table(rows, columns)
