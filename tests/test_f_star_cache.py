"""f* of logistic regression is solved once per problem, settings and data, then read back (problems.f_star_cache).

A second run records the same f* without calling the solver; another setting or other data is a
new solve; a cache file that is damaged, hostile (a link, a pipe, a value above f(x0)) or in a
folder that is a link is never trusted nor written through: the solver runs and the run records
the right f*. ASYNCOPT_F_STAR_CACHE=off turns the cache off.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from asyncopt_mpi.problems import f_star_cache
from asyncopt_mpi.problems.logistic import LogisticProblem
from asyncopt_mpi.problems.nonconvex_logistic import NonconvexLogisticProblem
from same_files import simulate

RUN = ["problem.name=logistic", "problem.dim=5", "problem.samples=200", "problem.classes=3", "workers.n=4",
       "stop.gradients=200", "method.lr=0.1"]


@pytest.fixture
def solves(monkeypatch, tmp_path):
    """The cache in tmp_path/fstar; the list of solver calls made."""
    monkeypatch.setenv(f_star_cache.ENV, str(tmp_path / "fstar"))
    calls = []
    original = LogisticProblem.minimizer

    def counting(self):
        if self._solution is None:  # a solve, not the solution kept by the problem object
            calls.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(LogisticProblem, "minimizer", counting)
    return calls


def recorded_f_star(path) -> float:
    with h5py.File(path, "r") as handle:
        return float(handle["problem"].attrs["f_star"])


def small_problem(l2: float = 0.0, seed: int = 0) -> LogisticProblem:
    rng = np.random.default_rng(seed)
    return LogisticProblem(rng.standard_normal((60, 4)), rng.integers(3, size=60), classes=3, l2=l2)


def test_the_second_run_reads_f_star_back_without_the_solver(tmp_path, solves):
    assert simulate(tmp_path / "first.h5", "async_sgd", RUN) == 0
    assert solves == ["LogisticProblem"]
    assert simulate(tmp_path / "second.h5", "async_sgd", RUN + ["method.lr=0.05", "workers.n=3"]) == 0
    assert solves == ["LogisticProblem"]  # settings that do not change f share the entry
    first = recorded_f_star(tmp_path / "first.h5")
    assert np.isfinite(first) and recorded_f_star(tmp_path / "second.h5") == first
    assert simulate(tmp_path / "other.h5", "async_sgd", RUN + ["problem.l2=0.01"]) == 0
    assert simulate(tmp_path / "more.h5", "async_sgd", RUN + ["problem.samples=150"]) == 0
    assert len(solves) == 3  # another l2, other rows: new solves
    assert len(list((tmp_path / "fstar").glob("*.json"))) == 3  # (and a .lock file each, kept for the next solve)


def test_the_cache_is_off_with_the_environment_variable(tmp_path, solves, monkeypatch):
    monkeypatch.setenv(f_star_cache.ENV, "off")
    values = [small_problem().compute_f_star() for _ in range(2)]
    assert len(solves) == 2 and values[0] == values[1]
    assert not (tmp_path / "fstar").exists()


def test_nonconvex_logistic_keys_its_lam(tmp_path, solves):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 3)), rng.integers(2, size=50)
    values = [NonconvexLogisticProblem(X, y, lam=lam).compute_f_star() for lam in (0.1, 0.2, 0.1)]
    assert solves == ["NonconvexLogisticProblem"] * 2 and values[0] == values[2] != values[1]


def test_the_worker_mean_objective_keys_its_shards(tmp_path, solves, monkeypatch):
    from asyncopt_mpi.objective import WorkerMeanObjective

    problem = small_problem()
    shards, other = [np.arange(0, 20), np.arange(20, 60)], [np.arange(0, 30), np.arange(30, 60)]
    calls = []
    solve = WorkerMeanObjective._solve
    monkeypatch.setattr(WorkerMeanObjective, "_solve", lambda self: calls.append(1) or solve(self))
    values = [WorkerMeanObjective(problem, split).compute_f_star() for split in (shards, other, shards)]
    assert len(calls) == 2 and values[0] == values[2] != values[1]  # a new objective object reads it back
    assert values[0] == solve(WorkerMeanObjective(problem, shards))  # bit for bit what the solver gives
    assert len(list((tmp_path / "fstar").glob("*.json"))) == 2


def planted(tmp_path, problem: LogisticProblem):
    """The cache file's place for `problem` (its folder made)."""
    (tmp_path / "fstar").mkdir(exist_ok=True)
    return tmp_path / "fstar" / f"{problem.f_star_identity()}.json"


@pytest.mark.parametrize("content", [
    b"", b"not json", b"[1, 2]", b'{"format": 1, "key": "other", "f_star": 0.1}',
    b'{"format": 1, "key": "KEY", "f_star": NaN}', b'{"format": 1, "key": "KEY", "f_star": Infinity}',
    b'{"format": 1, "key": "KEY", "f_star": "0.1"}', b'{"format": 1, "key": "KEY", "f_star": 1e300}',
    b'{"format": 1, "key": "KEY", "f_star": -1e300}' + b" " * 5000,  # too large to be ours
    b"[" * 100_000,
], ids=["empty", "text", "list", "other key", "nan", "inf", "string", "above f(x0)", "large", "deep"])
def test_a_damaged_cache_file_is_ignored_and_replaced(tmp_path, solves, content):
    problem = small_problem()
    expected = small_problem().compute_f_star()  # solved once, into the cache
    place = planted(tmp_path, problem)
    place.write_bytes(content.replace(b"KEY", problem.f_star_identity().encode()))
    assert problem.compute_f_star() == expected
    assert len(solves) == 2  # not trusted: solved again
    assert json.loads(place.read_text())["f_star"] == expected  # and the entry repaired


def test_a_link_in_the_cache_files_place_is_neither_read_nor_written_through(tmp_path, solves):
    problem = small_problem()
    scratch = tmp_path / "scratch.json"
    scratch.write_text(json.dumps({"format": 1, "key": problem.f_star_identity(), "f_star": -5.0}))
    place = planted(tmp_path, problem)
    place.symlink_to(scratch)
    value = problem.compute_f_star()
    assert solves == ["LogisticProblem"] and value > -5.0
    assert json.loads(scratch.read_text())["f_star"] == -5.0  # the link's target is untouched
    assert not place.is_symlink() and json.loads(place.read_text())["f_star"] == value


@pytest.mark.timeout(60)
def test_a_pipe_in_the_cache_files_place_does_not_hang(tmp_path, solves):
    problem = small_problem()
    place = planted(tmp_path, problem)
    os.mkfifo(place)
    value = problem.compute_f_star()
    assert solves == ["LogisticProblem"] and np.isfinite(value)


def test_a_cache_folder_that_is_a_link_is_not_used(tmp_path, solves):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "fstar").symlink_to(elsewhere)
    assert small_problem().compute_f_star() == small_problem().compute_f_star()
    assert len(solves) == 2  # nothing read back from (or written to) a folder that is a link
    assert os.listdir(elsewhere) == []


def test_a_second_process_waits_for_the_first_ones_solve_and_reads_its_value(tmp_path, monkeypatch):
    # Two solvers of one key at once (as the first runs of a two-process sweep): the second waits for the first's
    # lock, then reads the value it stored, and its own solver is never called. flock locks belong to an open file,
    # so two threads of one process stand for two processes.
    import threading

    monkeypatch.setenv(f_star_cache.ENV, str(tmp_path / "fstar"))
    started, release, second_called = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def first_solve():
        started.set()
        release.wait(30)
        return 0.25

    def second_solve():
        second_called.set()
        return 0.5

    first = threading.Thread(target=lambda: results.setdefault("first", f_star_cache.cached("k" * 64, first_solve)))
    second = threading.Thread(target=lambda: results.setdefault("second", f_star_cache.cached("k" * 64, second_solve)))
    first.start()
    assert started.wait(30)
    second.start()
    second_called.wait(1.0)  # unlocked, the second would solve at once
    release.set()
    first.join(30)
    second.join(30)
    assert not second_called.is_set()
    assert results == {"first": 0.25, "second": 0.25}


def test_a_link_in_the_lock_files_place_is_not_followed(tmp_path, monkeypatch):
    monkeypatch.setenv(f_star_cache.ENV, str(tmp_path / "fstar"))
    (tmp_path / "fstar").mkdir(mode=0o700)
    scratch = tmp_path / "scratch"
    scratch.write_text("mine")
    os.symlink(scratch, tmp_path / "fstar" / ("k" * 64 + ".lock"))
    assert f_star_cache.cached("k" * 64, lambda: 0.75) == 0.75  # solved unlocked, stored
    assert scratch.read_text() == "mine" and f_star_cache.read(str(tmp_path / "fstar"), "k" * 64) == 0.75
