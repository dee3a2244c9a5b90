"""HDF5 results: a streaming writer for rank 0 and the readers used by summary, plot and evaluate.

Layout (README "Results file"): /trace, /events, /snapshots, /metrics, /workers groups of column
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

import contextlib
import datetime
import errno
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import h5py
import numpy as np

from . import side_files, storage, swmr
from .inputs import clip as shown  # a path or an HDF5 message, cut for an error line
from .errors import RunError, UserError
from .output import free_bytes
from .side_files import RECOVERING_SUFFIX, RESERVE_SUFFIX

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
    "test_loss", "test_accuracy",  # on held-out rows (problem.test_data / test_fraction), nan without
)
OPTIONAL_METRICS = ("test_loss", "test_accuracy")
WORKER_COLUMNS = {
    "jobs": "i8", "grads": "i8", "busy_time": "f8", "sleep_time": "f8", "overrun_time": "f8",
    "bytes_up": "i8", "bytes_down": "i8", "shard_size": "i8", "shard_labels": "i8",
}
# /hops (graph runs): one row per message crossing a link, as the receiving node saw it.
HOP_COLUMNS = {
    "queued": "f8", "start": "f8", "arrived": "f8", "source": "i4", "dest": "i4", "kind": "i1", "version": "i8",
    "rho": "f8",
}
STATUSES = ("running", "completed", "stopped", "failed", "diverged")
KEPT_SNAPSHOT_BYTES = 1 << 20  # a new file's snapshots up to this size are also kept in memory, for its evaluation
RESERVE_BYTES = 256 * 1024  # kept free on the results file's disk so the file can still be closed
SWMR_WAIT_SECONDS = 10.0  # a file still marked open for writing must be readable within this
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Files whose HDF5 handle could not be closed after a write error; the process must then end
# with os._exit, because HDF5 would crash (SIGSEGV) closing them at interpreter exit.
UNCLOSED: list[str] = []
# File locking asked of HDF5 for results files in this process: the output.hdf5_locking of the run it
# runs (set by use_locking), None for HDF5's default (locks unless HDF5_USE_FILE_LOCKING says otherwise),
# which readers outside a run keep.
_locking: bool | None = None


def use_locking(setting: bool | str) -> None:
    """Open results files in this process with HDF5 file locking on (True), off (False) or as HDF5's default ("auto")."""
    global _locking
    _locking = None if setting == "auto" else bool(setting)


def locking_environment() -> dict[str, str]:
    """This process's environment for a child that opens its run's results file (the watchdog that repairs
    it): HDF5_USE_FILE_LOCKING as use_locking set it, unless the user set the variable (it wins, as in HDF5)."""
    environ = dict(os.environ)
    if _locking is not None:
        environ.setdefault("HDF5_USE_FILE_LOCKING", "TRUE" if _locking else "FALSE")
    return environ


def _access(**options: Any) -> dict[str, Any]:
    """h5py.File options plus the file locking of use_locking (none given: HDF5's default)."""
    return options if _locking is None else {**options, "locking": _locking}


def _make_reserve(path: str) -> None:
    """RESERVE_BYTES set aside in side file `path`, deleted on a write error (best effort: a full
    disk leaves less or none; a link in its place is refused)."""
    try:
        descriptor = side_files.create(path)
    except OSError:
        return
    try:
        os.posix_fallocate(descriptor, 0, RESERVE_BYTES)
    except OSError:
        try:
            os.write(descriptor, bytes(RESERVE_BYTES))
        except OSError:
            pass
    finally:
        os.close(descriptor)


def create_file(path: str, **options: Any) -> h5py.File:
    """A new HDF5 file as side file `path` (a stale one of ours removed first): HDF5 creates it with
    O_EXCL ("x"), which never follows a link in its place."""
    side_files.clear(path)
    try:
        return h5py.File(path, "x", **_access(**options))
    except FileExistsError:
        raise side_files.refuse(path, "appeared while the run was creating it") from None


class ResultsWriteError(RunError):
    """Writing the results file failed (disk full, I/O error): the run stops, exit 1."""


def _io_reason(exc: BaseException) -> str:
    """The operating system's words for an HDF5 write error (e.g. 'No space left on device')."""
    text = str(exc)
    found = re.search(r"error message = '([^']+)'", text)
    if found:
        return found.group(1)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return text.splitlines()[0] if text else type(exc).__name__


# What h5py raises on a damaged file: HDF5's errors (OSError, KeyError, RuntimeError, ValueError),
# and h5py's objects over broken metadata (a member whose object cannot be opened reads as None:
# AttributeError, TypeError; a damaged dataspace or type: IndexError, OverflowError).
DAMAGE = (OSError, KeyError, RuntimeError, ValueError, IndexError, TypeError, AttributeError, ArithmeticError)
# A dataset may declare more bytes than its file holds only by rows of a block its writer had not
# yet written (at most a flush's worth); anything larger is a damaged shape, not data.
UNWRITTEN_BYTES = 64 << 20
DEFLATE_MAX_RATIO = 1032  # a compressed dataset's bytes hold at most this many bytes of data each


def damaged(path: str, exc: BaseException) -> UserError:
    """The one line for a results file that cannot be read (exit 2)."""
    return UserError(f"{shown(path)}: cannot read this results file (truncated or damaged?): {shown(_io_reason(exc))}")


def _one_line(read: Callable) -> Callable:
    """A reader whose HDF5 errors on a damaged file become one line (UserError naming the file)."""
    import functools

    @functools.wraps(read)
    def wrapper(path: str, *args, **kwargs):
        try:
            return read(path, *args, **kwargs)
        except DAMAGE as exc:
            raise damaged(path, exc) from None

    return wrapper


def values(dataset: h5py.Dataset, rows: slice = slice(None)) -> np.ndarray:
    """A dataset's rows (all, or a slice); one that declares more bytes than its file could hold is
    refused (UserError) before anything is allocated."""
    if not isinstance(dataset, h5py.Dataset):  # h5py gives None for a member whose object cannot be opened
        raise ValueError("a member that is not a readable dataset (its object header is damaged)")
    declared = int(np.prod(dataset.shape, dtype=object)) * dataset.dtype.itemsize
    held = os.path.getsize(dataset.file.filename)
    if dataset.compression is not None:  # output.compression: its data may be far more than the file
        held = dataset.id.get_storage_size() * DEFLATE_MAX_RATIO
    if declared > held + UNWRITTEN_BYTES:
        raise UserError(f"{shown(dataset.file.filename)}: cannot read this results file (damaged): {shown(dataset.name)} "
                        f"declares shape {shown(str(dataset.shape))}, more than the file holds")
    return dataset[()] if not dataset.shape else dataset[rows]


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class _Table:
    """Rows buffered as tuples in memory and appended to a group of column datasets in blocks.

    With `keep` given, the table continues existing datasets, cut to their first `keep` rows; else
    new datasets are created, labelled with their units.
    """

    def __init__(self, group: h5py.Group, columns: dict[str, str], keep: int | None = None):
        self.names = tuple(columns)
        self.dtype = np.dtype([(name, kind) for name, kind in columns.items()])
        self.kinds = tuple(np.dtype(kind) for kind in columns.values())
        if keep is None:
            self.datasets = [
                group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(4096,), dtype=kind)
                for name, kind in columns.items()
            ]
            for dataset, name in zip(self.datasets, columns):
                storage.label(dataset, name)
        else:
            self.datasets = [group[name] for name in columns]
            for dataset in self.datasets:
                dataset.resize((keep,))
        self.rows: deque[tuple | _Block] = deque()  # appended by the server loop, taken by the flushing thread
        self.last: dict[str, np.ndarray] = {}  # each column's last row written, as a one-row array
        self.block_rows = 0  # rows waiting in blocks beyond one per item (for the free-space check)
        self.length = keep or 0

    def block(self, columns: tuple) -> None:
        """Append many rows at once: one array (or scalar, repeated) per column, in column order.

        The arrays are kept as they are until the next flush: the caller must not change them.
        """
        length = len(columns[0])
        self.block_rows += length - 1
        self.rows.append(_Block(length, columns))

    def flush(self) -> None:
        count = len(self.rows)
        if not count:
            return
        take = self.rows.popleft
        items = [take() for _ in range(count)]
        # Each column's parts in row order: blocks as they came (a scalar as (rows, value)), runs of
        # single rows as one table.
        parts: list[list] = [[] for _ in self.names]
        singles: list[tuple] = []
        block_rows = 0

        def add_singles() -> None:
            if singles:
                table = np.array(singles, dtype=self.dtype)
                for column, name in zip(parts, self.names):
                    column.append(table[name])
                singles.clear()

        for item in items:
            if type(item) is _Block:
                add_singles()
                block_rows += item.length - 1
                for column, values in zip(parts, item.columns):
                    column.append(values if type(values) is np.ndarray else (item.length, values))
            else:
                singles.append(item)
        add_singles()
        self.block_rows -= block_rows
        columns = [_joined(column, kind) for column, kind in zip(parts, self.kinds)]
        for dataset, values in zip(self.datasets, columns):
            _append(dataset, self.length, values)
            dataset.id.flush()
        self.length += len(columns[0])
        self.last = {name: values[-1:].copy() for name, values in zip(self.names, columns)}


def _append(dataset: h5py.Dataset, start: int, rows: np.ndarray) -> None:
    """Write `rows` (of the dataset's dtype) at row `start` of a resizable dataset, growing it to end
    there: what `resize` and `dataset[start:] = rows` do, in the HDF5 calls they end in (h5py's
    own checks of each call cost more than the write, at every flush of every column)."""
    identifier = dataset.id
    rows = np.ascontiguousarray(rows, dtype=identifier.dtype)
    count, width = rows.shape[0], identifier.shape[1:]
    if rows.shape[1:] != width:
        raise ValueError(f"rows of shape {rows.shape[1:]} for a dataset of rows of shape {width}")
    identifier.set_extent((start + count, *width))
    space = identifier.get_space()
    space.select_hyperslab((start, *(0 for _ in rows.shape[1:])), rows.shape)
    identifier.write(h5py.h5s.create_simple(rows.shape), space, rows)


def _joined(parts: list, kind: np.dtype) -> np.ndarray:
    """One column from its parts: arrays, and scalars as (rows, value)."""
    if all(type(part) is tuple for part in parts):  # a scalar in every block: one repeat
        lengths, values = zip(*parts)
        return np.repeat(np.array(values, dtype=kind), lengths)
    arrays = [np.full(part[0], part[1], dtype=kind) if type(part) is tuple else part for part in parts]
    return (arrays[0] if len(arrays) == 1 else np.concatenate(arrays)).astype(kind, copy=False)


class _Block:
    """Rows appended at once, one array (or scalar) per column."""

    __slots__ = ("length", "columns")

    def __init__(self, length: int, columns: tuple):
        self.length = length
        self.columns = columns


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
    staged: str | None = None  # the copy the resumed run writes to until it has started cleanly


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


@_one_line
def read_resume_point(path: str) -> ResumePoint:
    with open_results(path) as handle:
        require_groups(handle, path)
        check_intact(handle)  # the resumed run writes into it: damage must show now, not half-way
        snapshots = handle["snapshots"]
        count = min(snapshots["time"].shape[0], snapshots["x"].shape[0])
        if count == 0:
            raise UserError(f"{path}: no snapshot to resume from")
        last = count - 1
        when = float(snapshots["time"][last])
        iteration = int(snapshots["iteration"][last])
        # Updates up to the snapshot's iteration stay (a trace row's time can trail its snapshot's).
        trace_rows = int(np.searchsorted(values(handle["trace/iteration"]), iteration, side="right"))
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
            workers={name: values(data) for name, data in handle["workers"].items()},
            segment=int(handle.attrs.get("segments", 1)),
            rows={
                "trace": trace_rows,
                "events": int(np.searchsorted(values(handle["events/time"]), when, side="right")),
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
        staging: str | None = None,
        compression: str = "none",
    ):
        """A new file, or with `resume`, the existing file cut back to its last snapshot.

        `graph` (attributes of a decentralized run's graph) adds /graph and the /hops table.
        With `staging`, the file is written there (for a resume: a copy prepared there) until
        `publish` moves it to `path`; a new staged file is created with O_EXCL, never through a
        link in its place. If the set-up fails, the staged file is removed. `compression` is
        output.compression: the tables are compressed once the file is closed (compress_tables).
        """
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.final_path = path
        self.attrs = attrs  # the root attributes it was given
        self.path = staging or path
        self.directory = directory or "."
        self.failed: ResultsWriteError | None = None
        self.hdf5_failed = False
        self.worker_stats: Callable[[], dict[str, np.ndarray]] = dict  # the server's counters, stored at each flush
        self.reserve_path = self.final_path + RESERVE_SUFFIX
        self._thread: threading.Thread | None = None
        self._made: dict[str, Any] = {}  # a new file's groups and datasets, as _lay_out made them
        # A new file's snapshots as written (row, point), while they are few: the run's evaluation reads them
        # here instead of from the closed file; None once they outgrow KEPT_SNAPSHOT_BYTES, and for a resume.
        self._kept: list[tuple[tuple, np.ndarray]] | None = [] if resume is None else None
        self._kept_bytes = 0
        self.compression = compression
        options = {"libver": "latest", "rdcc_nbytes": 0}  # no chunk cache: RSS flat in rows
        if resume is not None:
            self.file = h5py.File(self.path, "r+", **_access(**options))
        elif staging is not None:
            self.file = create_file(self.path, **options)
        else:
            self.file = h5py.File(self.path, "w", **_access(**options))
        opened = os.fstat(self.file.id.get_vfd_handle())
        self._identity = (opened.st_dev, opened.st_ino)  # publish moves this file and no other
        try:
            if resume is None:
                keep = self._lay_out(attrs, dim, n_workers, problem_attrs, state_shapes, graph)
            else:
                keep = self._cut_back(resume)
            self._open_tables(dict(TRACE_COLUMNS, **{name: "f8" for name in trace_extra}), keep)
        except BaseException:
            self._discard_set_up()
            raise
        if background:
            self._wake = threading.Event()
            self._closing = False
            self._thread = threading.Thread(target=self._flush_loop, name="results-writer", daemon=True)
            self._thread.start()

    def _lay_out(self, attrs: dict[str, Any], dim: int, n_workers: int, problem_attrs: dict[str, Any] | None,
                 state_shapes: dict[str, int] | None, graph: dict[str, Any] | None) -> dict[str, int | None]:
        """The groups, datasets and attributes of a new file; returns the rows to keep (none)."""
        storage.set_attrs(self.file, {**attrs, "format_version": FORMAT_VERSION, "segments": 1,
                                      "started_at": _utc_now()})
        problem = self.file.create_group("problem")
        storage.set_attrs(problem, problem_attrs or {})
        # What is made here is kept for _open_tables (looking an object up by name costs as much as making it).
        made = self._made = {group: self.file.create_group(group) for group in ("trace", "events", "snapshots",
                                                                                  "workers", "metrics")}
        snapshots = made["snapshots"]
        rows_per_chunk = max(1, min(64, (1 << 20) // (8 * max(dim, 1))))
        made["x"] = snapshots.create_dataset("x", shape=(0, dim), maxshape=(None, dim), chunks=(rows_per_chunk, dim),
                                             dtype="f8")
        state = snapshots.create_group("state")
        made["state"] = {name: state.create_dataset(name, shape=(0, size), maxshape=(None, size),
                                                    chunks=(rows_per_chunk, size), dtype="f8")
                         for name, size in (state_shapes or {}).items()}
        made["worker_datasets"] = {name: made["workers"].create_dataset(name, shape=(n_workers,), dtype=kind)
                                   for name, kind in WORKER_COLUMNS.items()}
        for name, dataset in made["worker_datasets"].items():
            storage.label(dataset, name)
        if graph is not None:
            group = self.file.create_group("graph")
            for key, value in graph.items():
                group.attrs[key] = value
            made["hops"] = self.file.create_group("hops")
        return {"trace": None, "events": None, "snapshots": None}

    def _cut_back(self, resume: ResumePoint) -> dict[str, int]:
        """A resumed file's next segment; returns the rows to keep."""
        self.file.attrs["segments"] = resume.segment + 1
        if "metrics" in self.file:  # recomputed from all snapshots at the end
            del self.file["metrics"]
        self.file.create_group("metrics")
        return resume.rows

    def _open_tables(self, trace_columns: dict[str, str], keep: dict[str, int | None]) -> None:
        """Mark the file running, open its tables in SWMR mode and set the disk reserve aside."""
        storage.set_attrs(self.file, {"status": "running", "stop_reason": "", "finished_at": ""})
        made = self._made
        if not made:  # a resumed file: its objects by name
            snapshots = self.file["snapshots"]
            made = {group: self.file[group] for group in ("trace", "events", "snapshots", "workers")}
            made.update(x=snapshots["x"], state=dict(snapshots["state"].items()) if "state" in snapshots else {},
                        worker_datasets=dict(made["workers"].items()))
            if "hops" in self.file:
                made["hops"] = self.file["hops"]
        self.trace_table = _Table(made["trace"], trace_columns, keep["trace"])
        self.event_table = _Table(made["events"], EVENT_COLUMNS, keep["events"])
        self.snapshot_table = _Table(made["snapshots"], SNAPSHOT_COLUMNS, keep["snapshots"])
        self.hop_table = _Table(made["hops"], HOP_COLUMNS, keep.get("hops")) if "hops" in made else None
        self.snapshot_x = made["x"]
        self.snapshot_state = made["state"]
        if keep["snapshots"]:  # a new file's are empty already
            for dataset in (self.snapshot_x, *self.snapshot_state.values()):
                dataset.resize((self.snapshot_table.length, *dataset.shape[1:]))
        self.worker_datasets = made["worker_datasets"]
        self._made = {}  # the writer keeps what it uses, by its own names
        # One more chunk of every dataset may be allocated by a flush: keep that and a reserve free.
        tables = (self.trace_table, self.event_table, self.snapshot_table, self.hop_table)
        self._slack = RESERVE_BYTES + 4096 * sum(t.dtype.itemsize for t in tables if t is not None) + sum(
            int(np.prod(d.chunks or d.shape)) * 8 for d in (self.snapshot_x, *self.snapshot_state.values())
        )
        self.file.swmr_mode = True
        _make_reserve(self.reserve_path)
        self.trace = self.trace_table.rows.append
        self.event = self.event_table.rows.append
        self.trace_block = self.trace_table.block  # many rows at once: one array per column
        self.event_block = self.event_table.block
        self.hop = self.hop_table.rows.append if self.hop_table is not None else None
        self.snapshots: deque[tuple[np.ndarray, dict[str, np.ndarray]]] = deque()
        self._last_flush = time.monotonic()
        self._thread_error: BaseException | None = None

    def _discard_set_up(self) -> None:
        """A set-up that failed: close the file; a staged new file goes (nothing is left behind)."""
        try:
            self.file.close()
        except Exception:
            UNCLOSED.append(self.path)
        if self.path != self.final_path:
            side_files.remove(self.path)
        side_files.remove(self.reserve_path)

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

    def publish(self, replace: bool) -> None:
        """The run started cleanly: move the staged file to its name (over the old one if `replace`)."""
        from .output import publish

        if self.path != self.final_path:
            try:
                named = os.lstat(self.path)
            except OSError:
                named = None
            if named is None or (named.st_dev, named.st_ino) != self._identity:
                raise side_files.refuse(self.path, "was replaced while the run was starting")
            publish(self.path, self.final_path, replace)
            self.path = self.final_path

    def snapshot(
        self, time_s: float, iteration: int, grads: int, n_bytes: int, x: np.ndarray,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        """A snapshot row with the point (and the method's state, for resuming); copies are queued."""
        copies = {name: np.array(value, dtype=float) for name, value in (state or {}).items()}
        row, point = (time_s, iteration, grads, n_bytes), np.array(x, dtype=float)
        # The row goes in with its point, so a reader never sees a row without its x.
        self.snapshots.append((row, point, copies))
        if self._kept is not None:
            self._kept_bytes += point.nbytes
            if self._kept_bytes <= KEPT_SNAPSHOT_BYTES:
                self._kept.append((row, point))
            else:
                self._kept = None
        self.flush()

    def last_trace_row(self) -> dict[str, np.ndarray]:
        """Each /trace column's last row written (one-row arrays; empty ones when none was)."""
        table = self.trace_table
        return {name: table.last.get(name, np.zeros(0, kind)) for name, kind in zip(table.names, table.kinds)}

    def written_snapshots(self) -> dict[str, np.ndarray] | None:
        """What read_snapshots would read from the closed file, from memory: None when they were not kept
        (too many, a resumed file's earlier ones) or not all written (a write error)."""
        if self._kept is None or self.failed is not None:
            return None
        rows = np.array([row for row, _ in self._kept], dtype=[(name, kind) for name, kind in SNAPSHOT_COLUMNS.items()])
        points = np.array([point for _, point in self._kept], dtype=float).reshape(len(self._kept), -1)
        return {**{name: rows[name].copy() for name in SNAPSHOT_COLUMNS}, "x": points}

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

    def _pending_bytes(self) -> int:
        tables = (self.trace_table, self.event_table, self.hop_table)
        rows = sum((len(t.rows) + t.block_rows) * t.dtype.itemsize for t in tables if t is not None)
        return rows + sum(x.nbytes + sum(v.nbytes for v in state.values()) for _, x, state in self.snapshots)

    def _write(self) -> None:
        """Flush queued rows; a full disk or an I/O error ends the run (ResultsWriteError)."""
        if self.failed is not None:
            raise self.failed
        free = free_bytes(self.directory)
        if free is not None and free < self._pending_bytes() + self._slack:
            # Stop before HDF5 meets the full disk: the reserve lets the file be closed cleanly.
            self.failed = ResultsWriteError(f"results file: {os.strerror(28)} ({self.final_path})")
            raise self.failed
        try:
            self._write_rows()
        except (OSError, RuntimeError, ValueError) as exc:
            self.failed = ResultsWriteError(f"results file: {_io_reason(exc)} ({self.final_path})")
            self.hdf5_failed = True  # HDF5's own state is now unsure: write nothing more, only close
            self._free_reserve()  # room for HDF5 to write its metadata when the file is closed
            raise self.failed from None

    def _free_reserve(self) -> None:
        side_files.remove(self.reserve_path)

    def _write_rows(self) -> None:
        self.trace_table.flush()
        self.event_table.flush()
        if self.hop_table is not None:
            self.hop_table.flush()
        while self.snapshots:
            row, x, state = self.snapshots.popleft()
            rows = self.snapshot_table.length + len(self.snapshot_table.rows)  # the points written so far
            for dataset, value in ((self.snapshot_x, x), *((self.snapshot_state[k], v) for k, v in state.items())):
                _append(dataset, rows, np.reshape(value, (1, -1)))
            self.snapshot_table.rows.append(row)
        self.snapshot_table.flush()
        for dataset in (self.snapshot_x, *self.snapshot_state.values()):
            dataset.id.flush()
        for name, values in self.worker_stats().items():
            identifier = self.worker_datasets[name].id
            identifier.write(h5py.h5s.ALL, h5py.h5s.ALL,
                             np.ascontiguousarray(np.broadcast_to(values, identifier.shape), dtype=identifier.dtype))
            identifier.flush()
        self.file.flush()
        self._last_flush = time.monotonic()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def finish(self, status: str, stop_reason: str, workers: dict[str, np.ndarray], extra_attrs: dict[str, Any] | None = None) -> None:
        """Write the last rows, per-worker totals and final status, and close the file.

        After a write error the rows still queued are dropped, and the status is recorded if
        the file can still take it; the file is then left for `asyncopt evaluate` to repair.
        """
        self._stop_thread()
        if isinstance(self._thread_error, ResultsWriteError):
            self.failed = self._thread_error
        self.worker_stats = lambda: workers
        if self.failed is None:
            try:
                self._write()
            except ResultsWriteError:
                status, stop_reason = "failed", f"error: {self.failed}"
        try:
            if not self.hdf5_failed:
                storage.set_attrs(self.file, {"status": status, "stop_reason": stop_reason, "finished_at": _utc_now(),
                                              **(extra_attrs or {})})
            self.file.close()
        except (OSError, RuntimeError, ValueError) as exc:
            if self.failed is None:
                self.failed = ResultsWriteError(f"results file: {_io_reason(exc)} ({self.final_path})")
            UNCLOSED.append(self.path)
        self._free_reserve()
        if self.failed is None and self.compression != "none":
            compress_tables(self.path, self.compression)

    def abandon(self) -> None:
        """Close after a failed set-up: a staged file is removed (the old file at the path stays as
        it was); a file written in place keeps its rows and is marked failed."""
        self._free_reserve()
        if self.path != self.final_path:
            try:
                self._stop_thread()
                self.file.close()
            except Exception:
                UNCLOSED.append(self.path)
            side_files.remove(self.path)
            return
        try:
            self._stop_thread()
            self._write()
            self.file.attrs["status"] = "failed"
            self.file.attrs["stop_reason"] = "error: the run failed while it was being set up"
            self.file.attrs["finished_at"] = _utc_now()
            self.file.close()
        except Exception:
            pass


def _check_hdf5(path: str) -> None:
    """A regular, readable file with the HDF5 signature (at 0, 512, 1024, ... as HDF5 allows)."""
    if not os.path.exists(path):
        raise UserError(f"{shown(path)}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{shown(path)}: is a directory, not a results file")
    if not os.path.isfile(path):
        raise UserError(f"{shown(path)}: not a regular file (a device or pipe), not a results file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            offset = 0
            while offset + len(HDF5_SIGNATURE) <= size:
                handle.seek(offset)
                if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return
                offset = 512 if offset == 0 else 2 * offset
    except OSError as exc:
        raise UserError(f"{shown(path)}: cannot read: {exc.strerror}") from None
    raise UserError(f"{shown(path)}: not an HDF5 file ({'empty' if size == 0 else 'no HDF5 signature'}), not a results file")


# Loads swmr.py by its path (not the package, which takes a second to import) and reads every dataset's last row.
_SWMR_PROBE = """
import importlib.util, sys, h5py
spec = importlib.util.spec_from_file_location("swmr", sys.argv[2])
swmr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(swmr)
with swmr.open_swmr(sys.argv[1], {"auto": None, "on": True, "off": False}[sys.argv[3]]) as handle:
    def touch(name, item):
        if isinstance(item, h5py.Dataset) and item.shape and item.shape[0]:
            item[-1:]
    handle.visititems(touch)
"""


def _open_for_write(exc: OSError) -> bool:
    return "already open for write" in str(exc)


# Verdicts of _probe_swmr by file identity and version (device, inode, size, mtime): a file no writer
# changes is probed once per process, however many readers open it.
_PROBED: dict[tuple[int, int, int, int], str | None] = {}


def _probe_swmr(path: str) -> None:
    """Read a file still marked open for writing in a child process, so a damaged one cannot hang us."""
    status = os.stat(path)
    identity = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
    if identity not in _PROBED:
        _PROBED[identity] = _probe_verdict(path)
    if _PROBED[identity] is not None:
        raise UserError(f"{shown(path)}: still marked open for writing and {_PROBED[identity]}")


def _probe_verdict(path: str) -> str | None:
    """None if the probe read `path`, else why not."""
    try:
        locking = {None: "auto", True: "on", False: "off"}[_locking]  # the probe reads the file as we would
        done = subprocess.run([sys.executable, "-c", _SWMR_PROBE, path, swmr.__file__, locking], capture_output=True,
                              text=True, timeout=SWMR_WAIT_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"not readable within {SWMR_WAIT_SECONDS:g} s (truncated or damaged)"
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return f"cannot be read ({shown(lines[-1]) if lines else 'unknown error'})"
    return None


def _open_raw(path: str) -> h5py.File:
    _check_hdf5(path)
    try:
        return h5py.File(path, "r", **_access())
    except DAMAGE as exc:
        if not (isinstance(exc, OSError) and _open_for_write(exc)):
            raise damaged(path, exc) from None
    _probe_swmr(path)
    try:
        return swmr.open_swmr(path, _locking)
    except DAMAGE as exc:
        raise damaged(path, exc) from None


def open_results(path: str) -> h5py.File:
    """Open a results file read-only: normally, and in SWMR mode only when it is still marked open
    for writing (a live or killed run), after a bounded probe. A file that is not a results file,
    truncated or damaged raises UserError (one line) instead of hanging."""
    handle = _open_raw(path)
    try:
        marked = "format_version" in handle.attrs or "config" in handle.attrs
    except DAMAGE as exc:
        _close_quietly(handle)
        raise damaged(path, exc) from None
    if not marked:
        _close_quietly(handle)
        raise UserError(f"{shown(path)}: an HDF5 file, but not an asyncopt results file (no format_version or config "
                        "attribute)")
    return handle


def _close_quietly(handle: h5py.File) -> None:
    """Close a file being refused; HDF5's complaints about its damage were reported already."""
    try:
        handle.close()
    except DAMAGE:
        pass


def check_intact(handle: h5py.Group) -> None:
    """Read every attribute and dataset below `handle`: HDF5 checks its metadata as it loads it, so a
    damaged part raises now (one of DAMAGE, or UserError for a damaged shape)."""
    pending = [handle]
    while pending:
        group = pending.pop()
        for key in group.attrs:
            group.attrs[key]
        for name in group:
            item = group[name]
            for key in item.attrs:
                item.attrs[key]
            if isinstance(item, h5py.Group):
                pending.append(item)
            else:
                values(item)


@_one_line
def read_backend(path: str) -> str:
    """The backend (mpi or sim) a results file was written with."""
    with open_results(path) as handle:
        return _text(handle.attrs.get("backend", "mpi"))


@_one_line
def read_snapshots(path: str) -> dict[str, np.ndarray]:
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
        group = handle["snapshots"]
        rows = min(group["time"].shape[0], group["x"].shape[0])
        return {name: values(group[name], slice(rows)) for name in (*SNAPSHOT_COLUMNS, "x")}


def write_metrics(path: str, metrics: dict[str, np.ndarray], f_star: float) -> None:
    """Store metrics at snapshots (replacing earlier ones) in a normally closed file.

    A disk without room for them refuses before the file is touched (ResultsWriteError, exit 1).
    """
    room_for(path, len(METRIC_COLUMNS) * (8 * len(metrics["time"]) + METADATA_BYTES), "store its metrics")
    try:
        with _writing(h5py.File(path, "r+", **_access(libver="latest"))) as handle:
            if "metrics" in handle:
                del handle["metrics"]
            group = handle.create_group("metrics")
            for name in METRIC_COLUMNS:
                if name in OPTIONAL_METRICS and name not in metrics:  # no held-out rows: nan
                    group.create_dataset(name, data=np.full(len(metrics["time"]), np.nan))
                    continue
                storage.label(group.create_dataset(name, data=np.asarray(metrics[name])), name)
            handle["problem"].attrs["f_star"] = f_star
    except DAMAGE as exc:
        raise ResultsWriteError(f"results file: {shown(_io_reason(exc))} ({shown(path)}); metrics not stored") from None


METADATA_BYTES = 4096  # HDF5's own bytes for a new dataset or group (headers, links), rounded up


def room_for(path: str, needed: int, doing: str) -> None:
    """ResultsWriteError (exit 1) unless the disk of `path` has `needed` bytes and a reserve free:
    HDF5 meeting a full disk leaves the file half written and its handle unclosable."""
    free = free_bytes(os.path.dirname(path) or ".")
    if free is not None and free < needed + RESERVE_BYTES:
        raise ResultsWriteError(f"results file: {os.strerror(errno.ENOSPC)} ({shown(path)}): to {doing} it needs about "
                                f"{needed + RESERVE_BYTES} bytes free on its disk, {free} are")


@contextlib.contextmanager
def _writing(handle: h5py.File) -> Iterator[h5py.File]:
    """Writes to `handle`, then closes it: a file whose disk may fill meanwhile (another program).

    HDF5 reports a failed write of its metadata only as h5py drops an object, printed (through
    sys.excepthook and sys.unraisablehook), never raised: those reports are held back and the first
    one is raised after the block, so one line says it. HDF5 crashes (SIGSEGV) closing a file whose
    writes failed, so such a handle is left open: the file goes to UNCLOSED and the process must end
    with os._exit.
    """
    hooks = sys.excepthook, sys.unraisablehook
    reports: list[BaseException] = []

    def held_exception(kind, value, traceback) -> None:
        if traceback is not None and "h5py" in traceback.tb_frame.f_code.co_filename:
            reports.append(value)
        else:
            hooks[0](kind, value, traceback)

    def held_unraisable(unraisable) -> None:
        if "h5py" in str(unraisable.object):
            reports.append(unraisable.exc_value)
        else:
            hooks[1](unraisable)

    name = handle.filename
    sys.excepthook, sys.unraisablehook = held_exception, held_unraisable
    try:
        yield handle
        if reports:
            raise reports[0]
        handle.flush()
    except BaseException as exc:
        if isinstance(exc, DAMAGE) and (reports or not _flushes(handle)):
            UNCLOSED.append(name)  # h5py keeps reporting as its objects of this file go: held back
            raise
        sys.excepthook, sys.unraisablehook = hooks
        _close_quietly(handle)
        raise
    sys.excepthook, sys.unraisablehook = hooks
    handle.close()


def _flushes(handle: h5py.File) -> bool:
    """Whether HDF5 can still write `handle` out (after an error that may have been a read's)."""
    try:
        handle.flush()
    except DAMAGE:
        return False
    return True


@_one_line
def check_readable(path: str) -> None:
    """UserError (one line) unless `path` is a results file whose snapshots can be read."""
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
        handle["snapshots/time"].shape


@_one_line
def read_run(path: str) -> dict[str, Any]:
    """Attributes and all column groups of a results file as numpy arrays."""
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
        run: dict[str, Any] = {"path": path, "attrs": decode_attrs(handle.attrs)}
        run["problem"] = decode_attrs(handle["problem"].attrs) if "problem" in handle else {}
        for group in ("trace", "events", "metrics", "workers"):
            run[group] = {name: values(dataset) for name, dataset in handle[group].items()} if group in handle else {}
        snapshots = handle["snapshots"]
        run["snapshots"] = {name: values(snapshots[name]) for name in SNAPSHOT_COLUMNS}
    return run


def decode_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    """HDF5 attributes as Python values: bytes as str, numpy scalars as numbers, string arrays decoded."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray) and value.dtype == object:
            value = np.array([item.decode() if isinstance(item, bytes) else item for item in value], dtype=object)
        out[key] = value
    return out


def is_cleanly_closed(path: str) -> bool:
    """False when a writer died without closing the file (normal readers refuse it).

    A file that is not HDF5, truncated or damaged raises UserError (one line).
    """
    _check_hdf5(path)
    try:
        with h5py.File(path, "r", **_access()):
            return True
    except DAMAGE as exc:
        if isinstance(exc, OSError) and _open_for_write(exc):
            return False
        raise damaged(path, exc) from None


def _readable_rows(dataset: h5py.Dataset) -> np.ndarray:
    """The dataset's rows up to the first block that cannot be read (a write that failed)."""
    if not dataset.shape:
        return dataset[()]
    values(dataset, slice(0))  # a damaged shape is refused, not read block by block
    step = dataset.chunks[0] if dataset.chunks else max(dataset.shape[0], 1)
    parts = []
    for start in range(0, dataset.shape[0], step):
        try:
            parts.append(dataset[start : start + step])
        except DAMAGE:
            break
    return np.concatenate(parts) if parts else np.zeros((0, *dataset.shape[1:]), dtype=dataset.dtype)


def _salvage(source: h5py.Group, target: h5py.Group) -> None:
    """Copy attributes, groups and the readable rows of every dataset, keeping chunking, maxshape,
    compression and the datasets' own attributes (units).

    What cannot be read (an attribute written as a write failed, an object whose header is damaged)
    is left out; recover then checks that what a reader needs is there.
    """
    for key in source.attrs.keys():
        try:
            target.attrs[key] = source.attrs[key]
        except DAMAGE:
            pass  # written as a write failed (e.g. status on a full disk): set again by recover
    for name, item in source.items():
        if item is None:  # h5py's answer for a member whose object cannot be opened
            continue
        if isinstance(item, h5py.Group):
            _salvage(item, target.create_group(name))
        elif not item.shape:
            target.create_dataset(name, data=item[()])
        else:
            copy = target.create_dataset(name, data=_readable_rows(item), maxshape=item.maxshape, chunks=item.chunks,
                                         compression=item.compression, compression_opts=item.compression_opts,
                                         shuffle=item.shuffle)
            for key in item.attrs.keys():
                try:
                    copy.attrs[key] = item.attrs[key]
                except DAMAGE:
                    pass


COPY_ROWS = 1 << 20  # rows of a column compress_tables copies at a time


def compress_tables(path: str, compression: str) -> None:
    """Rewrite the closed results file `path` with every growing column (1-D, resizable: /trace,
    /events, /hops, the snapshots' scalars) compressed as output.compression says (storage.filters).

    SWMR never reuses file space: a compressed chunk rewritten at every flush as it fills leaves each
    earlier copy behind (measured: a file larger than the uncompressed one), so a run writes its
    tables plain and they are compressed here, once, into side file PATH.recovering, which then
    replaces the file. A file that cannot be rewritten (a full disk) stays as it is, complete and
    uncompressed, with a warning.
    """
    temporary = path + RECOVERING_SUFFIX
    try:
        room_for(path, os.path.getsize(path), "compress its tables")
        with h5py.File(path, "r", **_access()) as source:
            target = create_file(temporary, libver="latest")
            with _writing(target):
                _copy_compressed(source, target, storage.filters(compression))
        os.replace(temporary, path)
    except (UserError, RunError, *DAMAGE) as exc:
        side_files.remove(temporary)
        logging.getLogger("asyncopt").warning(f"{shown(path)}: tables left uncompressed: {shown(_io_reason(exc))}")


def _copy_compressed(source: h5py.Group, target: h5py.Group, filters: dict[str, Any]) -> None:
    """Copy group `source` into `target`: growing columns re-created with `filters` and copied in
    blocks of rows, other datasets as HDF5 copies them, attributes as they are."""
    for key in source.attrs.keys():
        target.attrs[key] = source.attrs[key]
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_compressed(item, target.create_group(name), filters)
        elif item.ndim == 1 and item.maxshape == (None,):
            copy = target.create_dataset(name, shape=item.shape, maxshape=(None,), chunks=item.chunks,
                                         dtype=item.dtype, **filters)
            for start in range(0, item.shape[0], COPY_ROWS):
                copy[start:start + COPY_ROWS] = item[start:start + COPY_ROWS]
            for key in item.attrs.keys():
                copy.attrs[key] = item.attrs[key]
        else:
            source.copy(item, target, name=name)


def _check_repaired(target: h5py.File, path: str) -> None:
    """UserError unless the repaired copy of `path` has what evaluate and summary need (else the
    damaged original is worth more than the copy, and stays)."""
    missing = [name for name in ("config",) if name not in target.attrs]
    missing += [f"/{name}" for name in ("snapshots", "snapshots/time", "snapshots/x") if name not in target]
    if missing:
        raise UserError(f"{shown(path)}: damaged beyond repair: {', '.join(missing)} cannot be read; the file is left "
                        "as it was")


def _cut_to_common_length(group: h5py.Group) -> None:
    """Column datasets of a table (and a snapshot group's x and state) cut to the rows all of them have."""
    datasets = [item for item in group.values() if isinstance(item, h5py.Dataset) and item.shape]
    if "state" in group:
        datasets += [item for item in group["state"].values() if item.shape]
    if not datasets:
        return
    rows = min(dataset.shape[0] for dataset in datasets)
    for dataset in datasets:
        if dataset.shape[0] > rows:
            dataset.resize((rows, *dataset.shape[1:]))


@_one_line
def recover(path: str, reason: str = "killed: the run ended without closing its file (recovered)",
            target_path: str | None = None) -> None:
    """Rewrite a file whose writer died into a normally readable, closed file (status failed).

    With `target_path` the repaired copy is written there and `path` is left as it was.
    """
    temporary = target_path or path + RECOVERING_SUFFIX
    with open_results(path) as handle:
        require_groups(handle, path, ("snapshots",))
    room_for(target_path or path, os.path.getsize(path), "repair")  # the copy holds at most what the file does
    with open_results(path) as source:
        target = create_file(temporary, libver="latest")
        try:
            with _writing(target):
                _salvage(source, target)
                for group in ("trace", "events", "hops", "snapshots"):
                    if group in target:
                        _cut_to_common_length(target[group])
                if target.attrs.get("status") in ("running", None):
                    target.attrs["status"] = "failed"
                    target.attrs["stop_reason"] = reason
                    target.attrs["finished_at"] = f"unknown (recovered {_utc_now()})"
                _check_repaired(target, path)
        except BaseException as exc:
            side_files.remove(temporary)  # a half-written copy is of no use
            if isinstance(exc, DAMAGE) and os.strerror(errno.ENOSPC) in str(exc):
                raise ResultsWriteError(f"results file: {os.strerror(errno.ENOSPC)} ({shown(path)}); not repaired, "
                                        "the file is left as it was") from None
            raise
    if target_path is None:
        os.replace(temporary, path)
    side_files.remove(path + RESERVE_SUFFIX)  # the dead writer's reserve of disk space
