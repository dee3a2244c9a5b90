"""Measured compute-time traces (workers.compute = "trace"): per worker a sequence of seconds per gradient.

Like FedScale's device traces, a trace replays times measured on real devices instead of a
parametric model. Worker w's k-th gradient takes the trace's k-th time for w, cyclically (after
the last time the sequence starts again); a job of b gradients takes the sum of the next b
times. The server draws every duration in both runtimes, so a run replays the same times in the
simulator and over MPI.

Files (workers are 0-based; a file may list more workers than the run uses, never fewer):
  CSV   one measured time per line, `worker,seconds`, in the order they were measured;
        an optional header line and `#` comments.
  .npy  a 2-D float array, row w = worker w's times; rows may end in NaN padding.
A trace file is a regular file of at most 16 MB (inputs.TABLE_MAX_BYTES).
"""

from __future__ import annotations

import io
import math

import numpy as np

from .errors import ConfigError
from .inputs import TABLE_MAX_BYTES, clip, npy_header, read_input, shown

KEY = "workers.compute_trace"
_ANNOUNCED: set[tuple[str, int]] = set()


def load_trace(path: str, n_workers: int) -> list[np.ndarray]:
    """Worker 0..n_workers-1's times from a CSV or .npy trace; ConfigError with one line on anything wrong."""
    if not path:
        raise ConfigError(f'{KEY}: workers.compute = "trace" needs a trace file (CSV or .npy)')
    data = read_input(path, f"{KEY}: trace file", TABLE_MAX_BYTES)
    name = clip(path)  # the path as error lines show it
    rows = _read_npy(name, data) if path.endswith(".npy") else _read_csv(name, data)
    if not any(len(times) for times in rows.values()):
        raise ConfigError(f"{KEY}: {name} has no times (empty trace)")
    missing = [worker for worker in range(n_workers) if not len(rows.get(worker, ()))]
    if missing:
        listed = clip(", ".join(str(w) for w in sorted(w for w, t in rows.items() if len(t)))) or "none"
        raise ConfigError(
            f"{KEY}: {name} has no times for worker {missing[0]}"
            f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; the run has {n_workers} workers "
            f"(0..{n_workers - 1}) and the trace lists workers {listed}"
        )
    traces = [np.asarray(rows[worker], dtype=float) for worker in range(n_workers)]
    for worker, times in enumerate(traces):
        if not times.sum() > 0:
            raise ConfigError(f"{KEY}: {name}: every time of worker {worker} is 0; a worker needs some time per gradient")
    import logging

    if (path, n_workers) in _ANNOUNCED:  # the config check and the run both load it: say it once
        return traces
    _ANNOUNCED.add((path, n_workers))
    logging.getLogger("asyncopt").info(
        "%s: replaying %d workers' measured times (%s per worker; mean %.3g to %.3g s per gradient)", path, n_workers,
        f"{min(map(len, traces))}" if min(map(len, traces)) == max(map(len, traces)) else f"{min(map(len, traces))} to {max(map(len, traces))}", min(t.mean() for t in traces), max(t.mean() for t in traces))
    return traces


def _check_time(path: str, where: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{KEY}: {path}{where}: time {value} is not a finite number of seconds")
    if value < 0:
        raise ConfigError(f"{KEY}: {path}{where}: time {value} is negative (times are seconds >= 0)")


def _read_csv(path: str, data: bytes) -> dict[int, list[float]]:
    rows: dict[int, list[float]] = {}
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{KEY}: cannot read {path} as CSV text: {clip(str(exc))}") from None
    seen_data = False
    for lineno, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = [field.strip() for field in text.split(",")]
        try:
            if len(fields) != 2:
                raise ValueError
            worker, seconds = int(fields[0]), float(fields[1])
        except ValueError:
            if not seen_data and not any(_is_number(field) for field in fields):
                seen_data = True  # a header line such as "worker,seconds"
                continue
            raise ConfigError(f"{KEY}: {path}:{lineno}: expected 'worker,seconds', got {shown(text)}") from None
        seen_data = True
        if worker < 0:
            raise ConfigError(f"{KEY}: {path}:{lineno}: worker {clip(str(worker))} is negative (workers are 0-based)")
        _check_time(path, f":{lineno}", seconds)
        rows.setdefault(worker, []).append(seconds)
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_npy(path: str, data: bytes) -> dict[int, list[float]]:
    from numpy.lib import format as npy

    stream = io.BytesIO(data)
    try:
        shape, dtype = npy_header(stream)
        if math.prod(shape) * dtype.itemsize > len(data) - stream.tell():  # before numpy allocates that much
            raise ValueError(f"the header declares shape {shape} of {dtype}, more than the file holds")
        stream.seek(0)
        array = npy.read_array(stream, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"{KEY}: cannot read {path} as a .npy array: {clip(str(exc))}") from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ConfigError(f"{KEY}: {path}: expected a 2-D numeric array (workers x times), got shape {array.shape} "
                          f"of {array.dtype}")
    rows: dict[int, list[float]] = {}
    for worker, row in enumerate(np.asarray(array, dtype=float)):
        present = ~np.isnan(row)
        if present.any() and not present[: int(np.flatnonzero(present)[-1]) + 1].all():
            raise ConfigError(f"{KEY}: {path}: row {worker} has NaN between times (NaN may only pad a row's end)")
        times = row[present]
        for column, value in enumerate(times):
            _check_time(path, f" [worker {worker}, time {column}]", float(value))
        rows[worker] = times.tolist()
    return rows


class TraceReplay:
    """Cyclic replay of each worker's times; the position of every worker advances with its jobs."""

    def __init__(self, traces: list[np.ndarray]):
        self.times = traces
        self.cumulative = [np.concatenate([[0.0], np.cumsum(times)]) for times in traces]
        self.position = [0] * len(traces)

    def means(self) -> np.ndarray:
        return np.array([float(times.mean()) for times in self.times])

    def take(self, worker: int, n_grads: int) -> float:
        """Seconds of worker's next n_grads gradients (the next n_grads times, cyclically)."""
        times, sums = self.times[worker], self.cumulative[worker]
        length, start = len(times), self.position[worker]
        if n_grads == 1:
            self.position[worker] = start + 1 if start + 1 < length else 0
            return float(times[start])
        cycles, rest = divmod(n_grads, length)
        total = cycles * sums[-1]
        end = start + rest
        total += sums[end] - sums[start] if end <= length else (sums[-1] - sums[start]) + sums[end - length]
        self.position[worker] = end % length
        return float(total)
