"""HDF5 results: a streaming writer for rank 0 and the readers used by summary, plot and evaluate.

Layout (DESIGN.md): /trace, /events, /snapshots, /metrics, /workers groups of column
datasets, run attributes on /, problem attributes on /problem. The writer opens the file in
SWMR mode: rows go to chunked, resizable datasets and are flushed at least once a second,
so a reader (always opening with swmr=True) sees a running file and a killed run leaves a
readable file at most a second behind. `recover` turns such a file into a normally
closed one.

Under MPI the writing happens on a background thread (`background=True`): the server loop
only appends rows and snapshot copies to thread-safe queues, so a flush, which can take
tens of milliseconds on a busy machine, never delays the handling of a result. h5py
serialises its own calls and only that thread touches the file until `finish`.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import h5py
import numpy as np

from .errors import UserError

FORMAT_VERSION = 1
FLUSH_SECONDS = 1.0
BLOCK_ROWS = 1 << 16

TRACE_COLUMNS = {
    "time": "f8", "iteration": "i8", "grads_used": "i8", "max_delay": "i8", "bytes_up": "i8", "bytes_down": "i8",
}
EVENT_COLUMNS = {
    "time": "f8", "worker": "i4", "kind": "i1", "point_version": "i8", "delay": "i8", "accepted": "i1",
}
SNAPSHOT_COLUMNS = {"time": "f8", "iteration": "i8", "grads": "i8", "bytes": "i8"}
METRIC_COLUMNS = (
    "time", "iteration", "grads", "bytes", "loss", "suboptimality", "grad_norm_sq", "accuracy",
)
WORKER_COLUMNS = {
    "jobs": "i8", "grads": "i8", "busy_time": "f8", "sleep_time": "f8", "overrun_time": "f8",
    "bytes_up": "i8", "bytes_down": "i8", "shard_size": "i8", "shard_labels": "i8",
}
# /hops (graph runs): one row per message crossing a link, as the receiving node saw it.
HOP_COLUMNS = {
    "queued": "f8", "start": "f8", "arrived": "f8", "source": "i4", "dest": "i4", "kind": "i1", "version": "i8",
    "rho": "f8",
}
STATUSES = ("running", "completed", "stopped", "failed")


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class _Table:
    """Rows buffered as tuples in memory and appended to a group of column datasets in blocks.

    With `keep` given, the table continues existing datasets, cut to their first `keep` rows.
    """

    def __init__(self, group: h5py.Group, columns: dict[str, str], keep: int | None = None):
        self.names = tuple(columns)
        self.dtype = np.dtype([(name, kind) for name, kind in columns.items()])
        if keep is None:
            self.datasets = [
                group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(4096,), dtype=kind)
                for name, kind in columns.items()
            ]
        else:
            self.datasets = [group[name] for name in columns]
            for dataset in self.datasets:
                dataset.resize((keep,))
        self.rows: deque[tuple] = deque()  # appended by the server loop, taken by the flushing thread
        self.length = keep or 0

    def flush(self) -> None:
        count = len(self.rows)
        if not count:
            return
        take = self.rows.popleft
        block = np.array([take() for _ in range(count)], dtype=self.dtype)
        end = self.length + len(block)
        for name, dataset in zip(self.names, self.datasets):
            dataset.resize((end,))
            dataset[self.length : end] = block[name]
            dataset.flush()
        self.length = end


@dataclass
class ResumePoint:
    """Where a stopped or killed run continues: its last snapshot and what it had counted there."""

    config: str
    time: float
    iteration: int
    grads: int
    bytes_up: int
    bytes_down: int
    x: np.ndarray
    state: dict[str, np.ndarray]
    workers: dict[str, np.ndarray]
    segment: int  # 1 for the first resume, 2 for the next, ...
    rows: dict[str, int]  # rows of trace, events and snapshots to keep


def require_groups(handle: h5py.File, path: str, groups: tuple[str, ...] = ("trace", "events", "snapshots", "workers")) -> None:
    """One line naming what is missing from a file that a run left without its groups (exit 2)."""
    missing = [f"/{group}" for group in groups if group not in handle]
    if "snapshots" in groups and "snapshots" in handle:
        missing += [f"/snapshots/{name}" for name in ("time", "x") if name not in handle["snapshots"]]
    if missing:
        status, reason = _text(handle.attrs.get("status", "unknown")), _text(handle.attrs.get("stop_reason", ""))
        raise UserError(
            f"{path}: the run ended before it wrote {', '.join(missing)} (status {status}"
            f"{': ' + reason if reason else ''}); there is nothing to read or resume, start the run again"
        )


def read_resume_point(path: str) -> ResumePoint:
    with open_results(path) as handle:
        require_groups(handle, path)
        snapshots = handle["snapshots"]
        count = min(snapshots["time"].shape[0], snapshots["x"].shape[0])
        if count == 0:
            raise UserError(f"{path}: no snapshot to resume from")
        last = count - 1
        when = float(snapshots["time"][last])
        iteration = int(snapshots["iteration"][last])
        # Updates up to the snapshot's iteration stay (a trace row's time can trail its snapshot's).
        trace_rows = int(np.searchsorted(handle["trace/iteration"][:], iteration, side="right"))
        bytes_up = int(handle["trace/bytes_up"][trace_rows - 1]) if trace_rows else 0
        state_group = snapshots.get("state")
        return ResumePoint(
            config=_text(handle.attrs["config"]),
            time=when,
            iteration=iteration,
            grads=int(snapshots["grads"][last]),
            bytes_up=bytes_up,
            bytes_down=int(snapshots["bytes"][last]) - bytes_up,
            x=snapshots["x"][last],
            state={name: data[last] for name, data in state_group.items()} if state_group else {},
            workers={name: data[:] for name, data in handle["workers"].items()},
            segment=int(handle.attrs.get("segments", 1)),
            rows={
                "trace": trace_rows,
                "events": int(np.searchsorted(handle["events/time"][:], when, side="right")),
                "snapshots": count,
            },
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ResultsWriter:
    """Streams one run to an HDF5 file; only rank 0 (or the simulator) creates one."""

    def __init__(
        self,
        path: str,
        *,
        attrs: dict[str, Any],
        dim: int,
        n_workers: int,
        trace_extra: tuple[str, ...] = (),
        problem_attrs: dict[str, Any] | None = None,
        state_shapes: dict[str, int] | None = None,
        resume: ResumePoint | None = None,
        background: bool = False,
        graph: dict[str, Any] | None = None,
    ):
        """A new file, or with `resume`, the existing file cut back to its last snapshot.

        `graph` (attributes of a decentralized run's graph) adds /graph and the /hops table.
        """
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.path = path
        self.worker_stats: Callable[[], dict[str, np.ndarray]] = dict  # the server's counters, stored at each flush
        trace_columns = dict(TRACE_COLUMNS, **{name: "f8" for name in trace_extra})
        if resume is None:
            self.file = h5py.File(path, "w", libver="latest")
            for key, value in attrs.items():
                self.file.attrs[key] = value
            self.file.attrs["format_version"] = FORMAT_VERSION
            self.file.attrs["segments"] = 1
            self.file.attrs["started_at"] = _utc_now()
            problem = self.file.create_group("problem")
            for key, value in (problem_attrs or {}).items():
                problem.attrs[key] = value
            for group in ("trace", "events", "snapshots", "workers", "metrics"):
                self.file.create_group(group)
            snapshots = self.file["snapshots"]
            rows_per_chunk = max(1, min(64, (1 << 20) // (8 * max(dim, 1))))
            snapshots.create_dataset("x", shape=(0, dim), maxshape=(None, dim), chunks=(rows_per_chunk, dim), dtype="f8")
            state = snapshots.create_group("state")
            for name, size in (state_shapes or {}).items():
                state.create_dataset(name, shape=(0, size), maxshape=(None, size), chunks=(rows_per_chunk, size), dtype="f8")
            for name, kind in WORKER_COLUMNS.items():
                self.file["workers"].create_dataset(name, shape=(n_workers,), dtype=kind)
            keep = {"trace": None, "events": None, "snapshots": None}
            if graph is not None:
                group = self.file.create_group("graph")
                for key, value in graph.items():
                    group.attrs[key] = value
                self.file.create_group("hops")
        else:
            self.file = h5py.File(path, "r+", libver="latest")
            self.file.attrs["segments"] = resume.segment + 1
            keep = resume.rows
            if "metrics" in self.file:  # recomputed from all snapshots at the end
                del self.file["metrics"]
            self.file.create_group("metrics")
        self.file.attrs["status"] = "running"
        self.file.attrs["stop_reason"] = ""
        self.file.attrs["finished_at"] = ""
        self.trace_table = _Table(self.file["trace"], trace_columns, keep["trace"])
        self.event_table = _Table(self.file["events"], EVENT_COLUMNS, keep["events"])
        snapshots = self.file["snapshots"]
        self.snapshot_table = _Table(snapshots, SNAPSHOT_COLUMNS, keep["snapshots"])
        self.hop_table = _Table(self.file["hops"], HOP_COLUMNS, keep.get("hops")) if "hops" in self.file else None
        self.snapshot_x = snapshots["x"]
        self.snapshot_state = dict(snapshots["state"].items()) if "state" in snapshots else {}
        for dataset in (self.snapshot_x, *self.snapshot_state.values()):
            dataset.resize((self.snapshot_table.length, *dataset.shape[1:]))
        self.worker_datasets = dict(self.file["workers"].items())
        self.file.swmr_mode = True
        self.trace = self.trace_table.rows.append
        self.event = self.event_table.rows.append
        self.hop = self.hop_table.rows.append if self.hop_table is not None else None
        self.snapshots: deque[tuple[np.ndarray, dict[str, np.ndarray]]] = deque()
        self._last_flush = time.monotonic()
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        if background:
            self._wake = threading.Event()
            self._closing = False
            self._thread = threading.Thread(target=self._flush_loop, name="results-writer", daemon=True)
            self._thread.start()

    def _flush_loop(self) -> None:
        """The background thread: flush twice a second, or sooner when asked."""
        while not self._closing:
            self._wake.wait(FLUSH_SECONDS / 2)
            self._wake.clear()
            try:
                self._write()
            except BaseException as exc:  # reported to the server loop by maybe_flush/finish
                self._thread_error = exc
                return

    def snapshot(
        self, time_s: float, iteration: int, grads: int, n_bytes: int, x: np.ndarray,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        """A snapshot row with the point (and the method's state, for resuming); copies are queued."""
        copies = {name: np.array(value, dtype=float) for name, value in (state or {}).items()}
        # The row goes in with its point, so a reader never sees a row without its x.
        self.snapshots.append(((time_s, iteration, grads, n_bytes), np.array(x, dtype=float), copies))
        self.flush()

    def maybe_flush(self) -> None:
        """Flush if a second has passed or a block is full (called often from the server loop)."""
        if self._thread_error is not None:
            raise self._thread_error
        if (
            time.monotonic() - self._last_flush >= FLUSH_SECONDS
            or len(self.event_table.rows) >= BLOCK_ROWS
            or len(self.trace_table.rows) >= BLOCK_ROWS
            or (self.hop_table is not None and len(self.hop_table.rows) >= BLOCK_ROWS)
        ):
            self.flush()

    def flush(self) -> None:
        """Write what is queued now, or ask the background thread to."""
        if self._thread is not None:
            self._last_flush = time.monotonic()
            self._wake.set()
        else:
            self._write()

    def _write(self) -> None:
        self.trace_table.flush()
        self.event_table.flush()
        if self.hop_table is not None:
            self.hop_table.flush()
        while self.snapshots:
            row, x, state = self.snapshots.popleft()
            rows = self.snapshot_x.shape[0]
            for dataset, value in ((self.snapshot_x, x), *((self.snapshot_state[k], v) for k, v in state.items())):
                dataset.resize((rows + 1, dataset.shape[1]))
                dataset[rows] = value
            self.snapshot_table.rows.append(row)
        self.snapshot_table.flush()
        for dataset in (self.snapshot_x, *self.snapshot_state.values()):
            dataset.flush()
        for name, values in self.worker_stats().items():
            dataset = self.worker_datasets[name]
            dataset[...] = values
            dataset.flush()
        self.file.flush()
        self._last_flush = time.monotonic()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def finish(self, status: str, stop_reason: str, workers: dict[str, np.ndarray], extra_attrs: dict[str, Any] | None = None) -> None:
        """Write the last rows, per-worker totals and final status, and close the file."""
        self._stop_thread()
        self.worker_stats = lambda: workers
        self._write()
        self.file.attrs["status"] = status
        self.file.attrs["stop_reason"] = stop_reason
        self.file.attrs["finished_at"] = _utc_now()
        for key, value in (extra_attrs or {}).items():
            self.file.attrs[key] = value
        self.file.close()

    def abandon(self) -> None:
        """Close without marking completion (after an unexpected error: flush what we have)."""
        try:
            self._stop_thread()
            self._write()
            self.file.attrs["status"] = "failed"
            self.file.attrs["stop_reason"] = "error: the run failed while it was being set up"
            self.file.attrs["finished_at"] = _utc_now()
            self.file.close()
        except Exception:
            pass


def open_results(path: str) -> h5py.File:
    """Open a results file for reading, also while it is being written or after a crash."""
    return h5py.File(path, "r", libver="latest", swmr=True)


def read_snapshots(path: str) -> dict[str, np.ndarray]:
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
        group = handle["snapshots"]
        rows = min(group["time"].shape[0], group["x"].shape[0])
        return {name: group[name][:rows] for name in (*SNAPSHOT_COLUMNS, "x")}


def write_metrics(path: str, metrics: dict[str, np.ndarray], f_star: float) -> None:
    """Store metrics at snapshots (replacing earlier ones) in a normally closed file."""
    with h5py.File(path, "r+", libver="latest") as handle:
        if "metrics" in handle:
            del handle["metrics"]
        group = handle.create_group("metrics")
        for name in METRIC_COLUMNS:
            group.create_dataset(name, data=np.asarray(metrics[name]))
        handle["problem"].attrs["f_star"] = f_star


def read_run(path: str) -> dict[str, Any]:
    """Attributes and all column groups of a results file as numpy arrays."""
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
        run: dict[str, Any] = {"path": path, "attrs": _decode_attrs(handle.attrs)}
        run["problem"] = _decode_attrs(handle["problem"].attrs) if "problem" in handle else {}
        for group in ("trace", "events", "metrics", "workers"):
            run[group] = {name: dataset[:] for name, dataset in handle[group].items()} if group in handle else {}
        snapshots = handle["snapshots"]
        run["snapshots"] = {name: snapshots[name][:] for name in SNAPSHOT_COLUMNS}
    return run


def _decode_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def is_cleanly_closed(path: str) -> bool:
    """False when a writer died without closing the file (normal readers refuse it)."""
    try:
        with h5py.File(path, "r"):
            return True
    except OSError as exc:
        if "already open for write" in str(exc):
            return False
        raise


def recover(path: str, reason: str = "killed: the run ended without closing its file (recovered)") -> None:
    """Rewrite a file whose writer died into a normally readable, closed file (status failed)."""
    temporary = path + ".recovering"
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
    with open_results(path) as source, h5py.File(temporary, "w", libver="latest") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for name in source:
            source.copy(source[name], target, name=name)
        rows = min(target["snapshots/time"].shape[0], target["snapshots/x"].shape[0])
        for name in ("time", "iteration", "grads", "bytes", "x"):
            dataset = target["snapshots"][name]
            if dataset.shape[0] > rows:
                dataset.resize((rows, *dataset.shape[1:]))
        if target.attrs.get("status") == "running":
            target.attrs["status"] = "failed"
            target.attrs["stop_reason"] = reason
            target.attrs["finished_at"] = f"unknown (recovered {_utc_now()})"
    os.replace(temporary, path)
