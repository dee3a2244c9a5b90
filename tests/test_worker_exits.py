"""A problem's code that calls sys.exit on a worker rank is a worker failure: one line, exit 1, file failed."""

from __future__ import annotations

import h5py
import pytest

from conftest import run_mpi

PLUGIN = '''
import asyncopt_mpi as ao
from asyncopt_mpi.problems import QuadraticProblem


class ExitingQuadratic(QuadraticProblem):
    """The quadratic, whose fourth stochastic gradient on a worker calls sys.exit(3)."""

    name = "exiting_quadratic"
    calls = 0

    def additive_noise(self, batch):
        return None  # every gradient through stochastic_grad

    def stochastic_grad(self, x, rng, batch=1, shard=None):
        type(self).calls += 1
        if type(self).calls > 3:
            raise SystemExit(3)
        return super().stochastic_grad(x, rng, batch, shard)


ao.register_problem(ExitingQuadratic.name, ExitingQuadratic)
'''


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_sys_exit_in_a_problem_on_a_worker_fails_the_run_in_one_line(tmp_path):
    plugin = tmp_path / "exiting.py"
    plugin.write_text(PLUGIN)
    path = tmp_path / "x.h5"
    done = run_mpi(3, ["run", "--plugin", str(plugin), "--set", "problem.name=exiting_quadratic",
                       "--set", "problem.dim=10", "--set", "stop.time=20", "--output", str(path)], timeout=100)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "SystemExit: 3" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "BAD TERMINATION" not in done.stdout + done.stderr
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "failed" and "SystemExit: 3" in handle.attrs["stop_reason"]
