"""Measured compute-time traces (workers.compute = "trace"): exact replay in the simulator, the same over MPI."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.traces import TraceReplay, load_trace

from conftest import events, read, run_cli, run_mpi
from recorded_time import predicted_grads

TIMES = {0: [0.01, 0.03], 1: [0.02], 2: [0.05, 0.01, 0.04]}


def write_csv(path, times=TIMES) -> str:
    lines = ["worker,seconds", "# measured"] + [f"{w},{t}" for w, ts in times.items() for t in ts]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def trace_args(trace: str, seconds: float) -> list[str]:
    return ["--set", "workers.compute=trace", "--set", f"workers.compute_trace={trace}", "--set", "problem.dim=10",
            "--set", "method.lr=0.1", "--set", f"stop.time={seconds}", "--set", "output.snapshot_every=0.5"]


def test_the_simulator_replays_the_exact_times_cyclically(tmp_path):
    trace, path = write_csv(tmp_path / "t.csv"), tmp_path / "sim.h5"
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=3", "--output", str(path)] + trace_args(trace, 1.0))
    assert done.returncode == 0, done.stderr
    found = events(path)
    for worker, times in TIMES.items():
        arrived = found["time"][found["worker"] == worker]
        # async_sgd gives a worker its next job as it answers: answers arrive at the cumulative sums of its trace.
        expected = np.cumsum(np.resize(times, len(arrived)))
        np.testing.assert_allclose(arrived, expected, rtol=0, atol=1e-9)
        assert len(arrived) >= 20


def test_csv_and_npy_traces_agree_and_jobs_sum_their_next_times(tmp_path):
    csv_traces = load_trace(write_csv(tmp_path / "t.csv"), 3)
    padded = np.full((4, 3), np.nan)  # a fourth worker the run does not use is fine
    for worker, times in TIMES.items():
        padded[worker, : len(times)] = times
    padded[3] = [1.0, 2.0, 3.0]
    np.save(tmp_path / "t.npy", padded)
    npy_traces = load_trace(str(tmp_path / "t.npy"), 3)
    for a, b in zip(csv_traces, npy_traces):
        np.testing.assert_array_equal(a, b)
    replay = TraceReplay(npy_traces)
    assert replay.take(2, 1) == 0.05
    assert replay.take(2, 4) == pytest.approx(0.01 + 0.04 + 0.05 + 0.01)  # wraps around
    assert replay.take(2, 7) == pytest.approx(2 * 0.10 + 0.04)  # two whole cycles and one more time
    np.testing.assert_allclose(replay.means(), [0.02, 0.02, 0.1 / 3])


@pytest.mark.parametrize("content, message", [
    ("worker,seconds\n0,0.1\n1,0.2\n", "has no times for worker 2; the run has 3 workers (0..2) and the trace lists workers 0, 1"),
    ("0,0.1\n1,-0.2\n2,0.1\n", "t.csv:2: time -0.2 is negative"),
    ("worker,seconds\n# nothing measured\n", "has no times (empty trace)"),
    ("0,0.1\n1,0.2,3\n", "t.csv:2: expected 'worker,seconds'"),
    ("0,0.1\n1,nan\n2,0.1\n", "time nan is not a finite number"),
])
def test_bad_traces_are_one_line_errors(tmp_path, content, message):
    trace = tmp_path / "t.csv"
    trace.write_text(content)
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=3", "--output", str(tmp_path / "x.h5")]
                   + trace_args(str(trace), 1.0))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "workers.compute_trace" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_missing_trace_file_is_a_config_error(tmp_path):
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=3", "--output", str(tmp_path / "x.h5")]
                   + trace_args(str(tmp_path / "none.csv"), 1.0))
    assert done.returncode == 2 and "workers.compute_trace: trace file not found" in done.stderr


@pytest.mark.mpi
def test_mpi_replays_the_trace_within_ten_percent(tmp_path):
    times = {0: [0.02, 0.04], 1: [0.03, 0.05, 0.04]}
    trace, seconds = write_csv(tmp_path / "t.csv", times), 3.0
    mpi_path, sim_path = tmp_path / "mpi.h5", tmp_path / "sim.h5"
    done = run_mpi(3, ["run", "--output", str(mpi_path)] + trace_args(trace, seconds), timeout=120)
    assert done.returncode == 0, done.stderr
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=2", "--output", str(sim_path)]
                   + trace_args(trace, seconds))
    assert done.returncode == 0, done.stderr
    names = ("workers/jobs", "workers/grads", "workers/busy_time", "workers/overrun_time")
    over_mpi, in_sim = read(mpi_path, *names), read(sim_path, *names)
    for worker, sequence in times.items():
        jobs = int(over_mpi["workers/jobs"][worker])
        # The server drew exactly the trace's times for the jobs it received.
        assert over_mpi["workers/busy_time"][worker] == pytest.approx(float(np.resize(sequence, jobs).sum()), rel=1e-9)
    # Gradients given the time the run recorded (recorded_time.py: one withheld time per job, fitted to
    # both workers; overruns and a loaded machine's delays are in it), within 10%, and never more than
    # the simulator's (no job is faster than its trace).
    grads, predicted, withheld = predicted_grads(mpi_path, [float(np.mean(sequence)) for sequence in times.values()])
    np.testing.assert_allclose(grads, predicted, rtol=0.10, atol=2, err_msg=f"withheld {withheld * 1e3:.2f} ms/job")
    assert np.all(grads <= in_sim["workers/grads"] + 2), (grads, in_sim["workers/grads"])


def test_log_levels_show_and_hide_lines(tmp_path):
    trace = write_csv(tmp_path / "t.csv")
    base = ["run", "--backend", "sim", "--set", "workers.n=3"] + trace_args(trace, 0.5)
    shown = run_cli(base + ["--output", str(tmp_path / "a.h5"), "--verbose"])
    assert shown.returncode == 0, shown.stderr
    assert "replaying 3 workers' measured times" in shown.stderr and "asyncopt: debug: provenance:" in shown.stderr
    quiet = run_cli(base + ["--output", str(tmp_path / "b.h5"), "--quiet"])
    assert quiet.returncode == 0 and "replaying" not in quiet.stderr and "debug" not in quiet.stderr
    default = run_cli(base + ["--output", str(tmp_path / "c.h5")])
    assert "replaying 3 workers' measured times" in default.stderr and "debug" not in default.stderr
    bad = run_cli(base + ["--output", str(tmp_path / "d.h5"), "--log-level", "loud"])
    assert bad.returncode == 2 and "--log-level 'loud'" in bad.stderr and "Traceback" not in bad.stderr
