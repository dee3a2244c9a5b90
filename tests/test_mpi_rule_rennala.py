"""Over mpiexec rennala_sgd's batch rule (StepAndRestart with collect = S, fresh_only) is applied by the server's
direct path (runtime/mpi/rule.py BatchRulePath): the file on_result would write, and on_result is never called."""

from __future__ import annotations

import textwrap

import h5py
import numpy as np
import pytest

from conftest import project_lines, run_mpi
from same_files import datasets

PLUGIN = '''
"""Two variants of rennala_sgd for the tests: one without its rule, one that fails if on_result is called."""
import asyncopt_mpi as ao
from asyncopt_mpi.methods.rennala_sgd import RennalaSGD


@ao.register_method
class GeneralRennalaSGD(RennalaSGD):
    name = "general_rennala_sgd"

    def every_result(self, server):
        return None  # every result through on_result


@ao.register_method
class RuleOnlyRennalaSGD(RennalaSGD):
    name = "rule_only_rennala_sgd"

    def on_result(self, server, worker, result):
        raise RuntimeError("on_result was called although the method stated its rule")
'''

DIM, S = 40, 3
SETTINGS = ["--set", f"problem.dim={DIM}", "--set", "method.lr=0.05", "--set", f"method.batch={S}",
            "--set", "workers.compute=fixed", "--set", "workers.seed=7", "--set", "output.snapshot_every=1e9"]
TIMES = ("time", "busy_time", "sleep_time", "overrun_time")  # real seconds: differ between any two MPI runs


@pytest.fixture
def plugin(tmp_path) -> str:
    path = tmp_path / "variants.py"
    path.write_text(textwrap.dedent(PLUGIN))
    return str(path)


def _run(tmp_path, plugin: str, method: str, ranks: int, settings: list[str]):
    out = tmp_path / f"{method}-{ranks}.h5"
    done = run_mpi(ranks, ["run", "--quiet", "--plugin", plugin, "--method", method, "--output", str(out),
                           *SETTINGS, *settings], timeout=120)
    assert done.returncode == 0, project_lines(done.stderr)
    return out


def _replay(path, cache_points: bool, last_restarted: bool) -> None:
    """Rennala's rule applied to the file's own arrivals, in order, must give its rows: which results joined
    (fresh ones), the delays, one step per S of them, the bytes of every row and worker (a point goes with a
    restart only to a worker that lacks it, or to every one with cache_points = false). The last result's
    worker is restarted unless its step reached stop.iterations (`last_restarted`: stop.gradients)."""
    found = datasets(path)
    workers, versions = found["events/worker"], found["events/point_version"]
    n_workers = len(found["workers/jobs"])
    point_bytes = 8 * DIM
    current, joined, received = 0, 0, 0
    held = [[0] for _ in range(n_workers)]  # every worker starts with version 0
    bytes_down = [point_bytes] * n_workers
    accepted, delays, steps = [], [], []
    for worker, version in zip(workers.tolist(), versions.tolist()):
        received += 1
        delays.append(current - version)
        accepted.append(version == current)
        joined += version == current
        if joined == S:
            joined, current = 0, current + 1
            steps.append((current, S, 0, received * point_bytes, sum(bytes_down)))
        if received == len(workers) and not last_restarted:
            break  # the step reached stop.iterations: no restart
        if current in held[worker]:
            bytes_down[worker] += 0 if cache_points else point_bytes
        else:
            held[worker] = held[worker][-1:] + [current]
            bytes_down[worker] += point_bytes
    assert found["events/accepted"].tolist() == accepted
    assert found["events/delay"].tolist() == delays
    rows = list(zip(*(found[f"trace/{name}"].tolist()
                      for name in ("iteration", "grads_used", "max_delay", "bytes_up", "bytes_down"))))
    assert rows == steps
    assert found["workers/bytes_down"].tolist() == bytes_down
    assert found["workers/jobs"].tolist() == np.bincount(workers, minlength=n_workers).tolist()
    assert found["workers/grads"].tolist() == found["workers/jobs"].tolist()


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_rennala_rule_path_writes_the_file_on_result_writes(tmp_path, plugin):
    # One worker: the order of results is fixed, so with fixed times and a fixed seed the two runs must
    # agree on every number but the real times, the points bit for bit (the batch's step is on_result's).
    # With cache_points = false every restart carries the point (the test below has restarts without).
    settings = ["--set", "problem.noise=0.1", "--set", "workers.compute_scale=0.0005", "--set", "stop.gradients=300",
                "--set", "workers.cache_points=false"]
    direct = _run(tmp_path, plugin, "rule_only_rennala_sgd", 2, settings)
    general = _run(tmp_path, plugin, "general_rennala_sgd", 2, settings)
    a, b = datasets(direct), datasets(general)
    assert sorted(a) == sorted(b)
    compared = [name for name in a if name.split("/")[-1] not in TIMES]
    assert {"events/accepted", "trace/bytes_down", "snapshots/x", "metrics/loss", "workers/bytes_down"} <= set(compared)
    for name in compared:
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name
    assert len(a["trace/iteration"]) == 100  # one step per S = 3 gradients
    assert a["workers/bytes_down"].tolist() == [8 * DIM * 301]  # the first job and 300 restarts
    _replay(direct, cache_points=False, last_restarted=True)


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_rennala_rule_path_drops_stale_results_as_on_result_does(tmp_path, plugin):
    # Two workers of different speeds: results computed at a point already stepped past are dropped. The
    # order of arrivals is the machine's, so each file is checked against the rule replayed over its own
    # arrivals; without noise the points do not depend on that order, so both runs end at the same point.
    # A restart at the point the worker holds goes without it (the general run sends it: cache_points = false).
    settings = ["--set", "problem.noise=0.0", "--set", "workers.compute_times=[0.0005, 0.0023]",
                "--set", "stop.iterations=150"]
    direct = _run(tmp_path, plugin, "rule_only_rennala_sgd", 3, settings)
    general = _run(tmp_path, plugin, "general_rennala_sgd", 3, settings + ["--set", "workers.cache_points=false"])
    for path, cache_points in ((direct, True), (general, False)):
        _replay(path, cache_points, last_restarted=False)
    a, b = datasets(direct), datasets(general)
    assert not a["events/accepted"].all()  # some results were stale
    assert a["workers/bytes_down"].sum() < 8 * DIM * (len(a["events/worker"]) + 2)  # some restarts went without x
    assert a["trace/iteration"].tolist() == list(range(1, 151))
    assert np.array_equal(a["snapshots/x"][-1], b["snapshots/x"][-1])
    with h5py.File(direct, "r") as handle:
        assert handle.attrs["status"] == "completed"
