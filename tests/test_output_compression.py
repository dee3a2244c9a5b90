"""output.compression: the tables that grow per result stored deflated after a shuffle once the run's
file is closed, read back by every reader (evaluate, recover, resume, SWMR on a live or killed run's
plain tables) as the uncompressed run; and the `units` attributes of time and byte columns."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import asyncopt_mpi as ao
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.results import read_run, recover
from conftest import run_cli, run_mpi

DEMO = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")
SMALL = {"workers.n": 4, "stop.time": 4}
GROWING = {"trace": ("time", "iteration", "grads_used", "max_delay", "bytes_up", "bytes_down"),
           "events": ("time", "worker", "kind", "point_version", "delay", "accepted"),
           "snapshots": ("time", "iteration", "grads", "bytes")}
SECONDS = ("trace/time", "events/time", "snapshots/time", "metrics/time",
           "workers/busy_time", "workers/sleep_time", "workers/overrun_time")
BYTES = ("trace/bytes_up", "trace/bytes_down", "snapshots/bytes", "metrics/bytes",
         "workers/bytes_up", "workers/bytes_down")


def filters_of(path) -> dict[str, tuple]:
    """(compression, level, shuffle) of every column of the growing tables."""
    with h5py.File(path, "r") as handle:
        return {f"{group}/{name}": (handle[group][name].compression, handle[group][name].compression_opts,
                                    handle[group][name].shuffle)
                for group, names in GROWING.items() for name in names}


def units_of(path) -> dict[str, str]:
    found = {}
    with h5py.File(path, "r") as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and "units" in item.attrs:
                found[name] = item.attrs["units"]
        handle.visititems(visit)
    return found


def test_a_compressed_run_reads_back_as_the_uncompressed_one_and_evaluate_agrees(tmp_path):
    plain = ao.run(DEMO, overrides=SMALL, output=tmp_path / "plain.h5")
    packed = ao.run(DEMO, overrides={**SMALL, "output.compression": "gzip-1"}, output=tmp_path / "packed.h5")
    assert set(filters_of(packed.path).values()) == {("gzip", 1, True)}
    assert set(filters_of(plain.path).values()) == {(None, None, False)}
    assert os.path.getsize(packed.path) < os.path.getsize(plain.path) / 2
    first, second = read_run(plain.path), read_run(packed.path)
    for group in ("trace", "events", "snapshots", "metrics", "workers"):
        assert first[group].keys() == second[group].keys()
        for name in first[group]:
            np.testing.assert_array_equal(first[group][name], second[group][name], err_msg=f"{group}/{name}")
    assert first["trace"]["time"].size > 1000  # the simulator is bit for bit: same rows, fewer bytes
    with h5py.File(packed.path, "r+") as handle:
        del handle["metrics"]
    evaluated = run_cli(["evaluate", packed.path])  # the metrics again, from the compressed snapshots
    assert evaluated.returncode == 0, evaluated.stderr
    np.testing.assert_array_equal(read_run(packed.path)["metrics"]["loss"], second["metrics"]["loss"])


def test_time_and_byte_columns_carry_units(tmp_path):
    result = ao.run(DEMO, overrides=SMALL, output=tmp_path / "run.h5")
    assert units_of(result.path) == {**{name: "s" for name in SECONDS}, **{name: "bytes" for name in BYTES}}


@pytest.mark.parametrize("value", ["gzip", "gzip-0", "lzf", 1])
def test_output_compression_accepts_none_and_gzip_levels_only(value):
    with pytest.raises(ConfigError, match="output.compression: .*(is not accepted; accepted: none, gzip-1, "
                                          "gzip-2, .*gzip-9|expected a string)"):
        ao.load_config(DEMO, overrides={**SMALL, "output.compression": value}, backend="sim")


CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from asyncopt_mpi.results import ResultsWriter
    writer = ResultsWriter({path!r}, attrs={{"method": "async_sgd", "problem": "quadratic", "backend": "sim",
                           "n_workers": 2, "config": "[method]\\nname = 'async_sgd'\\n"}}, dim=3, n_workers=2,
                           problem_attrs={{"dim": 3, "n_samples": 0, "f_star": 0.0}}, compression="gzip-1")
    for i in range(5000):
        writer.trace((0.5 * i, i, i, 0, 64 * i, 32 * i))
        writer.event((0.5 * i, i % 2, 1, i, 0, 1))
    writer.snapshot(2499.5, 4999, 5000, 96 * 4999, np.arange(3, dtype=float))
    writer.flush()
    print("flushed", flush=True)
    sys.stdin.readline()  # the test reads the live file meanwhile
    os._exit(9)
    """
)


def test_a_killed_run_of_a_compressed_config_is_read_live_and_repaired(tmp_path):
    """While it runs, a file's tables are plain (SWMR never reuses file space: chunks rewritten
    compressed at each flush would leave their old copies behind); a killed run's stay so."""
    path = str(tmp_path / "killed.h5")
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(path=path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "flushed"
        live = read_run(path)  # SWMR: the writer is alive
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert live["attrs"]["status"] == "running"
    np.testing.assert_array_equal(live["trace"]["time"], 0.5 * np.arange(5000))
    np.testing.assert_array_equal(live["events"]["worker"], np.arange(5000) % 2)
    recover(path)
    assert set(filters_of(path).values()) == {(None, None, False)}
    assert units_of(path)["events/time"] == "s" and units_of(path)["trace/bytes_up"] == "bytes"
    repaired = read_run(path)
    assert repaired["attrs"]["status"] == "failed"
    np.testing.assert_array_equal(repaired["trace"]["bytes_up"], 64 * np.arange(5000))


def test_a_compressed_file_is_repaired_with_its_filters_and_units(tmp_path):
    """A resumed run appends to compressed tables: a repair (recover) of its file keeps them compressed."""
    path = str(tmp_path / "run.h5")
    ao.run(DEMO, overrides={**SMALL, "output.compression": "gzip-1"}, output=path)
    before = read_run(path)
    recover(path)
    assert set(filters_of(path).values()) == {("gzip", 1, True)}
    assert units_of(path) == {**{name: "s" for name in SECONDS}, **{name: "bytes" for name in BYTES}}
    np.testing.assert_array_equal(read_run(path)["events"]["time"], before["events"]["time"])


def test_a_compressed_run_resumes_with_its_filters_and_refuses_another_compression(tmp_path):
    path = str(tmp_path / "run.h5")
    ao.run(DEMO, overrides={**SMALL, "output.compression": "gzip-1"}, output=path)
    rows = read_run(path)["events"]["time"].size
    changed = run_cli(["run", "--resume", path, "--set", "stop.time=8", "--set", "output.compression=none"])
    assert changed.returncode == 2 and changed.stderr.splitlines() == [
        "asyncopt: error: --set output.compression: a resumed run keeps the compression it was started with (gzip-1); "
        "start a new run to change it"]
    done = run_cli(["run", "--resume", path, "--set", "stop.time=8"])
    assert done.returncode == 0, done.stderr
    resumed = read_run(path)
    assert resumed["attrs"]["segments"] == 2 and resumed["events"]["time"].size > rows
    assert resumed["events"]["time"].max() > 4
    assert set(filters_of(path).values()) == {("gzip", 1, True)}
    assert not [name for name in os.listdir(tmp_path) if name != "run.h5"]  # no side file left


def test_a_long_highly_compressed_column_is_not_taken_for_a_damaged_one(tmp_path):
    """Readers refuse a dataset declaring more bytes than its file holds (a damaged shape); a compressed
    one may hold far more: 80 MB of a constant column in well under 1 MB of file."""
    path = str(tmp_path / "long.h5")
    rows, step = 9_000_000, 1_000_000
    with h5py.File(path, "w") as handle:
        handle.attrs["format_version"] = 1
        for name in GROWING["snapshots"]:
            handle.create_dataset(f"snapshots/{name}", data=np.zeros(1))
        handle.create_dataset("snapshots/x", data=np.zeros((1, 1)))
        column = handle.create_dataset("trace/time", shape=(rows,), chunks=(1 << 16,), dtype="f8",
                                       compression="gzip", compression_opts=1, shuffle=True)
        for start in range(0, rows, step):
            column[start:start + step] = 0.0
    assert os.path.getsize(path) < (1 << 20)
    assert read_run(path)["trace"]["time"].size == rows


@pytest.mark.mpi
@pytest.mark.timeout(240)
def test_a_compressed_mpi_run_reads_back_with_metrics_and_units(tmp_path):
    path = str(tmp_path / "mpi.h5")
    done = run_mpi(2, ["run", DEMO, "--set", "stop.iterations=20", "--set", "output.compression=gzip-1", "--output", path],
                   timeout=180)
    assert done.returncode == 0, done.stderr
    assert set(filters_of(path).values()) == {("gzip", 1, True)}
    run = read_run(path)
    assert run["attrs"]["status"] == "completed" and run["events"]["time"].size > 0
    assert np.isfinite(run["metrics"]["loss"]).all() and run["metrics"]["loss"].size == run["snapshots"]["time"].size
    assert units_of(path) == {**{name: "s" for name in SECONDS}, **{name: "bytes" for name in BYTES}}
