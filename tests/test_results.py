"""Tests for the HDF5 results file (asyncopt_mpi.results): layout, streaming writer, readers, crash recovery."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from asyncopt_mpi.results import (
    ResultsWriter,
    is_cleanly_closed,
    open_results,
    read_run,
    read_snapshots,
    recover,
    write_metrics,
)

TRACE = ("time", "iteration", "grads_used", "max_delay", "bytes_up", "bytes_down")
EVENTS = ("time", "worker", "kind", "point_version", "delay", "accepted")
SNAPSHOTS = ("time", "iteration", "grads", "bytes")
METRICS = ("time", "iteration", "grads", "loss", "suboptimality", "grad_norm_sq", "accuracy")
WORKERS = ("jobs", "grads", "busy_time", "sleep_time", "overrun_time", "bytes_up", "bytes_down")
ROOT_ATTRS = ("format_version", "status", "stop_reason", "started_at", "finished_at")
DIM, N_WORKERS = 4, 3

RUN_ATTRS = {"method": "async_sgd", "problem": "quadratic", "backend": "sim", "n_workers": N_WORKERS,
             "config": "[method]\nname = \"async_sgd\"\n"}
PROBLEM_ATTRS = {"dim": DIM, "n_samples": 0, "f_star": 0.0}


def trace_rows(start: int, count: int) -> list[tuple]:
    return [(0.125 * i, i, 2 * i + 1, i % 3, 64 * i, 32 * i, 0.5 / (i + 1)) for i in range(start, start + count)]


def event_rows(start: int, count: int) -> list[tuple]:
    return [(0.25 * i, i % N_WORKERS, i % 2, i // 2, i % 4, (i + 1) % 2) for i in range(start, start + count)]


def columns(rows: list[tuple], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: np.array([row[k] for row in rows]) for k, name in enumerate(names)}


def new_writer(path) -> ResultsWriter:
    return ResultsWriter(
        str(path), attrs=dict(RUN_ATTRS), dim=DIM, n_workers=N_WORKERS,
        trace_extra=("lr",), problem_attrs=dict(PROBLEM_ATTRS),
    )


def worker_totals() -> dict[str, np.ndarray]:
    return {
        "jobs": np.array([5, 3, 1]), "grads": np.array([10, 6, 2]),
        "busy_time": np.array([0.5, 0.25, 0.125]), "sleep_time": np.array([0.25, 0.5, 1.0]),
        "overrun_time": np.array([0.0, 0.0625, 0.0]), "bytes_up": np.array([320, 192, 64]),
        "bytes_down": np.array([96, 64, 32]),
    }


def write_complete_run(path) -> dict:
    """A small finished run; returns what was written."""
    writer = new_writer(path)
    trace, events = trace_rows(0, 7), event_rows(0, 9)
    xs = [np.linspace(0, 1, DIM) * k for k in range(3)]
    for row in trace[:4]:
        writer.trace(row)
    for row in events[:5]:
        writer.event(row)
    writer.snapshot(0.0, 0, 0, 0, xs[0])
    writer.flush()
    for row in trace[4:]:
        writer.trace(row)
    for row in events[5:]:
        writer.event(row)
    writer.snapshot(0.5, 4, 9, 1024, xs[1])
    writer.snapshot(0.875, 7, 13, 2048, xs[2])
    writer.finish("completed", "stop.iterations = 7 reached", worker_totals())
    return {"trace": trace, "events": events, "xs": xs,
            "snapshots": [(0.0, 0, 0, 0), (0.5, 4, 9, 1024), (0.875, 7, 13, 2048)]}


def assert_columns_equal(read: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    for name, values in expected.items():
        np.testing.assert_array_equal(read[name], values, err_msg=name)


# ----- layout ------------------------------------------------------------------------------


def test_layout_matches_design(tmp_path):
    path = tmp_path / "run.h5"
    write_complete_run(path)
    with h5py.File(path, "r") as handle:
        for group in ("trace", "events", "snapshots", "metrics", "workers", "problem"):
            assert isinstance(handle[group], h5py.Group), group
        assert set(TRACE) | {"lr"} == set(handle["trace"])
        assert set(EVENTS) == set(handle["events"])
        assert set(SNAPSHOTS) | {"x"} <= set(handle["snapshots"])  # plus state/ for resuming
        assert set(WORKERS) <= set(handle["workers"])  # DESIGN.md names; shard_size/shard_labels extend them
        assert handle["snapshots/x"].shape == (3, DIM)
        for name in WORKERS:
            assert handle["workers"][name].shape == (N_WORKERS,)
        for name in ROOT_ATTRS:
            assert name in handle.attrs, name
        for key, value in PROBLEM_ATTRS.items():
            assert handle["problem"].attrs[key] == value


def test_root_attributes_of_a_completed_run(tmp_path):
    path = tmp_path / "run.h5"
    write_complete_run(path)
    attrs = read_run(str(path))["attrs"]
    assert attrs["status"] == "completed"
    assert attrs["stop_reason"] == "stop.iterations = 7 reached"
    assert isinstance(attrs["format_version"], int) and attrs["format_version"] >= 1
    started = datetime.datetime.fromisoformat(attrs["started_at"])
    finished = datetime.datetime.fromisoformat(attrs["finished_at"])
    assert started.tzinfo is not None
    assert started <= finished
    for key, value in RUN_ATTRS.items():
        assert attrs[key] == value, key


def test_rows_are_read_back_exactly(tmp_path):
    path = tmp_path / "run.h5"
    written = write_complete_run(path)
    run = read_run(str(path))
    assert run["path"] == str(path)
    assert_columns_equal(run["trace"], columns(written["trace"], TRACE + ("lr",)))
    assert_columns_equal(run["events"], columns(written["events"], EVENTS))
    assert_columns_equal(run["snapshots"], columns(written["snapshots"], SNAPSHOTS))
    assert_columns_equal(run["workers"], worker_totals())
    assert run["problem"] == PROBLEM_ATTRS
    assert run["metrics"] == {}


def test_integer_columns_stay_integers(tmp_path):
    path = tmp_path / "run.h5"
    write_complete_run(path)
    run = read_run(str(path))
    for name in ("iteration", "grads_used", "max_delay", "bytes_up", "bytes_down"):
        assert np.issubdtype(run["trace"][name].dtype, np.integer), name
    for name in ("worker", "kind", "point_version", "delay", "accepted"):
        assert np.issubdtype(run["events"][name].dtype, np.integer), name
    assert np.issubdtype(run["trace"]["time"].dtype, np.floating)


def test_read_snapshots_gives_points(tmp_path):
    path = tmp_path / "run.h5"
    written = write_complete_run(path)
    snaps = read_snapshots(str(path))
    np.testing.assert_array_equal(snaps["x"], np.stack(written["xs"]))
    assert_columns_equal(snaps, columns(written["snapshots"], SNAPSHOTS))


def test_many_rows_across_flushes(tmp_path):
    path = tmp_path / "run.h5"
    writer = new_writer(path)
    rows = trace_rows(0, 10000)
    for k, row in enumerate(rows):
        writer.trace(row)
        if k % 3001 == 0:
            writer.flush()
    writer.finish("stopped", "stop.time = 1 reached", {})
    run = read_run(str(path))
    assert run["attrs"]["status"] == "stopped"
    assert_columns_equal(run["trace"], columns(rows, TRACE + ("lr",)))


def test_write_metrics_stores_and_replaces(tmp_path):
    path = tmp_path / "run.h5"
    write_complete_run(path)
    rng = np.random.default_rng(0)
    snaps = read_snapshots(str(path))
    metrics = {
        "time": snaps["time"], "iteration": snaps["iteration"], "grads": snaps["grads"], "bytes": snaps["bytes"],
        "loss": rng.random(3), "suboptimality": rng.random(3), "grad_norm_sq": rng.random(3),
        "accuracy": np.full(3, np.nan),
    }
    write_metrics(str(path), metrics, f_star=-1.5)
    run = read_run(str(path))
    assert set(METRICS) <= set(run["metrics"])
    assert_columns_equal(run["metrics"], metrics)
    assert run["problem"]["f_star"] == -1.5
    # a second evaluation replaces the first
    metrics["loss"] = metrics["loss"] + 1.0
    write_metrics(str(path), metrics, f_star=-2.0)
    run = read_run(str(path))
    np.testing.assert_array_equal(run["metrics"]["loss"], metrics["loss"])
    assert run["problem"]["f_star"] == -2.0
    assert run["trace"]["time"].size == 7  # the rest of the file is untouched


def test_writer_creates_missing_directories(tmp_path):
    path = tmp_path / "a" / "b" / "run.h5"
    writer = new_writer(path)
    writer.finish("completed", "", {})
    assert read_run(str(path))["attrs"]["status"] == "completed"


# ----- live reading ------------------------------------------------------------------------


def test_reader_sees_flushed_rows_while_writer_is_open(tmp_path):
    path = str(tmp_path / "live.h5")
    writer = new_writer(path)
    rows = trace_rows(0, 5)
    for row in rows[:3]:
        writer.trace(row)
    writer.event(event_rows(0, 1)[0])
    writer.snapshot(0.25, 2, 5, 128, np.ones(DIM))
    writer.flush()
    run = read_run(path)
    assert run["attrs"]["status"] == "running"
    assert run["attrs"]["finished_at"] == ""
    assert_columns_equal(run["trace"], columns(rows[:3], TRACE + ("lr",)))
    assert run["events"]["time"].size == 1
    np.testing.assert_array_equal(read_snapshots(path)["x"], np.ones((1, DIM)))
    for row in rows[3:]:
        writer.trace(row)
    writer.flush()
    with open_results(path) as handle:
        np.testing.assert_array_equal(handle["trace/time"][:], columns(rows, TRACE)["time"])
        assert handle.attrs["status"] == "running"
    writer.finish("completed", "done", {})
    assert read_run(path)["attrs"]["status"] == "completed"


def test_abandon_marks_the_file_failed_and_keeps_rows(tmp_path):
    path = str(tmp_path / "abandoned.h5")
    writer = new_writer(path)
    for row in trace_rows(0, 4):
        writer.trace(row)
    writer.abandon()
    assert is_cleanly_closed(path)
    run = read_run(path)
    assert run["attrs"]["status"] == "failed"
    assert run["trace"]["time"].size == 4


# ----- a writer killed without closing -----------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_results import new_writer, trace_rows, event_rows, DIM
    writer = new_writer({path!r})
    for row in trace_rows(0, 6):
        writer.trace(row)
    for row in event_rows(0, 4):
        writer.event(row)
    writer.snapshot(0.5, 6, 11, 512, np.arange(DIM, dtype=float))
    writer.flush()
    print("flushed", flush=True)
    sys.stdin.readline()   # the test reads the live file meanwhile
    os._exit(9)
    """
)


@pytest.fixture
def killed_run(tmp_path):
    """A results file whose writer (a child process) flushed rows and died without closing it."""
    path = str(tmp_path / "killed.h5")
    script = CHILD.format(tests=os.path.dirname(__file__), path=path)
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "flushed"
        live = read_run(path)  # read from another process while the writer is alive
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return path, live


def test_live_file_of_another_process_is_readable(killed_run):
    _, live = killed_run
    assert live["attrs"]["status"] == "running"
    assert_columns_equal(live["trace"], columns(trace_rows(0, 6), TRACE + ("lr",)))


def test_killed_run_is_readable_and_not_cleanly_closed(killed_run):
    path, _ = killed_run
    run = read_run(path)
    assert run["attrs"]["status"] == "running"
    assert_columns_equal(run["trace"], columns(trace_rows(0, 6), TRACE + ("lr",)))
    assert_columns_equal(run["events"], columns(event_rows(0, 4), EVENTS))
    np.testing.assert_array_equal(read_snapshots(path)["x"], np.arange(DIM, dtype=float)[None, :])
    assert is_cleanly_closed(path) is False


def test_recover_gives_a_normally_closed_failed_file(killed_run, tmp_path):
    path, _ = killed_run
    recover(path)
    assert is_cleanly_closed(path) is True
    assert sorted(os.listdir(tmp_path)) == ["killed.h5"]  # no temporary left behind
    with h5py.File(path, "r") as handle:
        status = handle.attrs["status"]
        reason = handle.attrs["stop_reason"]
        np.testing.assert_array_equal(handle["trace/time"][:], columns(trace_rows(0, 6), TRACE)["time"])
        np.testing.assert_array_equal(handle["snapshots/x"][:], np.arange(DIM, dtype=float)[None, :])
        assert handle["problem"].attrs["dim"] == DIM
        assert handle.attrs["method"] == RUN_ATTRS["method"]
    assert status == "failed"
    assert "killed" in reason
    run = read_run(path)
    assert_columns_equal(run["trace"], columns(trace_rows(0, 6), TRACE + ("lr",)))
    assert_columns_equal(run["events"], columns(event_rows(0, 4), EVENTS))
    assert set(WORKERS) <= set(run["workers"])
    # metrics can be written into the recovered file
    snaps = read_snapshots(path)
    metrics = {name: np.zeros(1) for name in METRICS + ("bytes",)}
    metrics["time"] = snaps["time"]
    write_metrics(path, metrics, f_star=0.0)
    np.testing.assert_array_equal(read_run(path)["metrics"]["time"], snaps["time"])


def test_recover_keeps_a_completed_status(tmp_path):
    path = tmp_path / "done.h5"
    write_complete_run(path)
    recover(str(path))
    run = read_run(str(path))
    assert run["attrs"]["status"] == "completed"
    assert run["attrs"]["stop_reason"] == "stop.iterations = 7 reached"
    assert run["trace"]["time"].size == 7


# A writer killed while it stores metrics into a closed file (write_metrics opens it without SWMR).
DIES_STORING_METRICS = """
import os, sys, h5py
handle = h5py.File(sys.argv[1], "r+", libver="latest")
handle.create_group("metrics_being_written")
handle.flush()
os._exit(9)
"""


def test_a_file_killed_while_open_without_swmr_is_read_and_recovered(tmp_path):
    path = tmp_path / "stored.h5"
    write_complete_run(path)
    killed = subprocess.run([sys.executable, "-c", DIES_STORING_METRICS, str(path)], timeout=50)
    assert killed.returncode == 9
    with pytest.raises(OSError, match="not already open for SWMR writing"):
        h5py.File(path, "r", swmr=True, libver="latest")  # what readers met before
    assert is_cleanly_closed(str(path)) is False
    assert read_run(str(path))["trace"]["time"].size == 7
    recover(str(path))
    assert is_cleanly_closed(str(path)) is True
    run = read_run(str(path))
    assert run["attrs"]["status"] == "completed" and run["trace"]["time"].size == 7


def test_blocks_and_single_rows_keep_their_order_and_types(tmp_path):
    import asyncopt_mpi.results as results

    with h5py.File(tmp_path / "t.h5", "w") as handle:
        table = results._Table(handle.create_group("events"), dict(zip(EVENTS, ("f8", "i4", "i1", "i8", "i8", "i1"))))
        table.rows.append((0.5, 7, 0, 3, 1, 1))
        table.block((np.array([1.0, 2.0]), np.array([1, 2]), 0, np.array([4, 5]), np.array([0, 0]), 1))
        table.flush()  # first flush: a row, then a block
        table.block((np.array([3.0]), np.array([9]), 2, np.array([6]), np.array([2]), np.array([0])))
        table.rows.append((4.0, 3, 1, 7, 0, 1))
        table.block((np.array([5.0, 6.0]), np.array([4, 5]), 2, np.array([8, 9]), np.array([1, 1]), 0))
        table.flush()  # a column with scalars in some blocks and an array in another
        columns = {name: handle[f"events/{name}"][()] for name in EVENTS}
    assert columns["time"].tolist() == [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert columns["worker"].tolist() == [7, 1, 2, 9, 3, 4, 5] and columns["worker"].dtype == np.int32
    assert columns["kind"].tolist() == [0, 0, 0, 2, 1, 2, 2] and columns["kind"].dtype == np.int8
    assert columns["point_version"].tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert columns["accepted"].tolist() == [1, 1, 1, 0, 1, 0, 0]
    assert table.block_rows == 0
