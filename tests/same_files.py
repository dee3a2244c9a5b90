"""In-process simulator runs and a bit-for-bit comparison of the files they write (for on/off switches of the core)."""

from __future__ import annotations

import contextlib
import io

import h5py
import numpy as np

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import ORIGINS, PROBLEMS, QuadraticProblem, register_problem
from asyncopt_mpi.problems.base import Problem
from asyncopt_mpi.runtime.session import prepare_resume, run_sim


class EveryGradientQuadratic(QuadraticProblem):
    """The quadratic without a noise model nor grad_rows: the simulator calls stochastic_grad for every gradient
    (and grad for every job's own indices), the path before the bulk path took the quadratic."""

    name = "quadratic_every_gradient"
    grad_rows = Problem.grad_rows

    def noise_model(self, batch):
        return None


@contextlib.contextmanager
def registered(problem_class):
    """`problem_class` registered under its name while the block runs (yields the name)."""
    register_problem(problem_class.name, problem_class)
    try:
        yield problem_class.name
    finally:
        PROBLEMS.pop(problem_class.name, None)  # other tests list the registered problems
        ORIGINS.pop(problem_class.name, None)


def simulate(path, method: str, overrides: list[str], resume: bool = False) -> int:
    """Run `method` in the simulator into `path` (or resume the run in `path` with `overrides`); its exit code."""
    if resume:
        config, point = prepare_resume(str(path), overrides, "sim")
    else:
        config, point = load_config(None, overrides + [f"output.path={path}"], method=method, backend="sim"), None
    with contextlib.redirect_stdout(io.StringIO()):
        return run_sim(config, point)


def datasets(path) -> dict[str, np.ndarray]:
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def assert_same_files(first, second) -> int:
    """Every dataset of the two files equal, bit for bit (nan where nan); returns the events recorded."""
    a, b = datasets(first), datasets(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), f"{name} differs"
    return len(a["events/time"])


def assert_bulk_path_is_the_event_path(folder, monkeypatch, method: str, overrides: list[str],
                                       reference_problem: str) -> None:
    """A run on the simulator's bulk path (every result through its runs) writes the file of the same run event by
    event and of `reference_problem`, a copy of the problem without a noise model (every gradient its own call)."""
    from asyncopt_mpi.runtime.sim import batch_runs as sim_batch_runs, runs as sim_runs

    taken = []
    runs = sim_runs.StepAndRestartRuns if method == "async_sgd" else sim_batch_runs.BatchRuns
    original = runs._apply

    def counting(self, times, *rest):
        taken.append(len(times))
        return original(self, times, *rest)

    monkeypatch.setattr(runs, "_apply", counting)
    assert simulate(folder / "runs.h5", method, overrides) == 0
    recorded = len(datasets(folder / "runs.h5")["events/time"])
    assert sum(taken) == recorded > 1000  # every result came through the runs, the bulk path
    monkeypatch.setattr(sim_runs, "RUNS_ENABLED", False)
    assert simulate(folder / "events.h5", method, overrides) == 0
    assert simulate(folder / "reference.h5", method, overrides + [f"problem.name={reference_problem}"]) == 0
    assert sum(taken) == recorded  # the other two went event by event
    assert assert_same_files(folder / "runs.h5", folder / "events.h5") == recorded
    assert_same_files(folder / "runs.h5", folder / "reference.h5")
