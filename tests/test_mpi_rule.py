"""Over mpiexec a method's StepAndRestart rule is applied by the server's direct path (runtime/mpi/rule.py):
the same file as on_result would give, and on_result is never called."""

from __future__ import annotations

import textwrap

import h5py
import numpy as np
import pytest

from conftest import project_lines, run_mpi

PLUGIN = '''
"""Two variants of async_sgd for the tests: one without its rule, one that fails if on_result is called."""
import asyncopt_mpi as ao
from asyncopt_mpi.methods.async_sgd import AsyncSGD


@ao.register_method
class GeneralAsyncSGD(AsyncSGD):
    name = "general_async_sgd"

    def every_result(self, server):
        return None  # every result through on_result


@ao.register_method
class RuleOnlyAsyncSGD(AsyncSGD):
    name = "rule_only_async_sgd"

    def on_result(self, server, worker, result):
        raise RuntimeError("on_result was called although the method stated its rule")
'''

SETTINGS = ["--set", "problem.dim=50", "--set", "problem.noise=0.1", "--set", "method.lr=0.02",
            "--set", "workers.compute=fixed", "--set", "workers.compute_scale=0.0005",
            "--set", "output.snapshot_every=1e9"]
SAME = ("trace/iteration", "trace/grads_used", "trace/max_delay", "trace/bytes_up", "trace/bytes_down", "trace/lr",
        "events/worker", "events/kind", "events/point_version", "events/delay", "events/accepted",
        "snapshots/iteration", "snapshots/grads", "snapshots/bytes",
        "workers/jobs", "workers/grads", "workers/bytes_up", "workers/bytes_down")


@pytest.fixture
def plugin(tmp_path) -> str:
    path = tmp_path / "variants.py"
    path.write_text(textwrap.dedent(PLUGIN))
    return str(path)


def _run(tmp_path, plugin: str, method: str, ranks: int, gradients: int):
    out = tmp_path / f"{method}-{ranks}.h5"
    done = run_mpi(ranks, ["run", "--quiet", "--plugin", plugin, "--method", method, "--output", str(out),
                           "--set", f"stop.gradients={gradients}", *SETTINGS], timeout=120)
    assert done.returncode == 0, project_lines(done.stderr)
    return out


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_rule_path_writes_the_file_on_result_writes(tmp_path, plugin):
    # One worker: the order of results is fixed, so the two runs must agree on every number but the times
    # (and the points' last bits).
    direct = _run(tmp_path, plugin, "async_sgd", 2, 300)
    general = _run(tmp_path, plugin, "general_async_sgd", 2, 300)
    with h5py.File(direct, "r") as a, h5py.File(general, "r") as b:
        assert len(a["trace/iteration"]) == 300
        for name in SAME:
            assert np.array_equal(a[name][()], b[name][()]), name
        # The direct path steps with a BLAS axpy, which may fuse x - lr * g into one rounding.
        np.testing.assert_allclose(a["snapshots/x"][()], b["snapshots/x"][()], rtol=1e-12, atol=1e-15)
        assert a["workers/busy_time"][()] == pytest.approx(b["workers/busy_time"][()])


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_on_result_of_a_method_with_a_rule_is_not_called(tmp_path, plugin):
    out = _run(tmp_path, plugin, "rule_only_async_sgd", 3, 600)
    with h5py.File(out, "r") as handle:
        assert handle.attrs["status"] == "completed"
        trace = {name: handle[f"trace/{name}"][()] for name in ("iteration", "max_delay", "bytes_up", "bytes_down")}
        delays, accepted = handle["events/delay"][()], handle["events/accepted"][()]
        jobs, bytes_down = handle["workers/jobs"][()], handle["workers/bytes_down"][()]
    assert np.array_equal(trace["iteration"], np.arange(1, 601))
    assert accepted.all() and np.array_equal(trace["max_delay"], delays)
    assert delays.max() >= 1  # two workers: results arrive at points already moved on
    assert np.array_equal(trace["bytes_up"], 8 * 50 * np.arange(1, 601))
    # Each of the 2 workers got its first job and then one restart per result (the run stops after the last).
    assert jobs.sum() == 600 and bytes_down.sum() == 8 * 50 * (600 + 2)
