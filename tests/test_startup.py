"""Start-up cost: what `import asyncopt_mpi` and the light commands load (a fresh process each: the test is
about start-up). `python -X importtime` lists every module a process imports."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

from asyncopt_mpi import methods, problems
from asyncopt_mpi.methods import BUILT_IN_MODULES
from asyncopt_mpi.problems import tridiagonal

from conftest import asyncopt_command

HEAVY = ("numpy", "h5py", "scipy")


def imported_modules(args: list[str]) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules `python -X importtime ARGS` imported, and the finished process."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120)
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return modules, done


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


@pytest.mark.timeout(150)
def test_import_loads_neither_numpy_nor_scipy():
    modules, done = imported_modules(["-c", "import asyncopt_mpi"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "asyncopt_mpi" in modules
    assert heavy_among(modules) == []


@pytest.mark.timeout(300)
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_version_and_help_load_neither_numpy_nor_h5py_nor_scipy(args):
    modules, done = imported_modules(asyncopt_command()[1:] + args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("asyncopt, version ") if args == ["--version"] else "Usage: asyncopt" in done.stdout
    assert heavy_among(modules) == []


@pytest.mark.timeout(150)
def test_public_api_loads_without_scipy_optimize():
    """Every exported name still resolves (loaded on first use); the optimizer that solves f* is not loaded
    until a solve needs it."""
    script = ("import sys, asyncopt_mpi as ao\n"
              "names = [getattr(ao, name) for name in ao.__all__]\n"
              "from asyncopt_mpi import *\n"
              "import asyncopt_mpi.cli, asyncopt_mpi.runtime.session, asyncopt_mpi.theory\n"
              "print(ao.Method.__name__, ao.run.__module__, sorted(m for m in sys.modules if m.startswith('scipy.optimize')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Method", "asyncopt_mpi.api", "[]"]



ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A run's modules, listed when its process ends (after click's SystemExit).
RUN_AND_LIST = ("import atexit, json, sys\n"
                "listed, sys.argv = sys.argv[1], ['asyncopt'] + sys.argv[2:]\n"
                "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=open(listed, 'w')))\n"
                "from asyncopt_mpi.cli import main\n"
                "main()\n")


def method_modules(modules: list[str]) -> set[str]:
    """The imported modules that register built-in methods."""
    return {name.rsplit(".", 1)[1] for name in modules
            if name.rsplit(".", 1)[0] == "asyncopt_mpi.methods" and name.rsplit(".", 1)[1] in BUILT_IN_MODULES.values()}


@pytest.mark.timeout(150)
def test_a_ten_gradient_run_imports_no_scipy_and_no_other_method(tmp_path):
    """The quadratic needs no scipy (its f* is a tridiagonal solve done as LAPACK does it); of the method
    modules, only the named method's is imported, and decentralized (the runtime's graph support, which
    session.py and build.py import for every run)."""
    listed = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST, str(listed), "run", os.path.join(ROOT, "jobs", "demo.toml"),
                           "--backend", "sim", "--quiet", "--method", "rennala_sgd", "--set", "workers.n=2",
                           "--set", "stop.gradients=10", "--output", str(tmp_path / "run.h5")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = json.loads(listed.read_text())
    assert "asyncopt_mpi.problems.quadratic" in modules
    assert [name for name in modules if name.split(".")[0] == "scipy"] == []
    assert method_modules(modules) == {"rennala_sgd", "decentralized"}
    assert not any(name.startswith("asyncopt_mpi.problems.") and name.rsplit(".", 1)[1] in ("logistic", "pnn", "data")
                   for name in modules)
    assert "importlib.metadata" not in modules  # no entry point of ours installed: versions from dist-info


def test_the_registry_tables_match_the_modules_registrations():
    """Every method module registers exactly the names the table gives it, every built-in problem class is
    in the problem table under its own name: `asyncopt methods`/`problems` and plugins see them all."""
    for info in pkgutil.iter_modules(methods.__path__):
        importlib.import_module(f"asyncopt_mpi.methods.{info.name}")
    registered = {name: cls.__module__ for name, cls in methods.METHODS.loaded().items() if methods.is_built_in(name)}
    assert registered == {name: f"asyncopt_mpi.methods.{module}" for name, module in BUILT_IN_MODULES.items()}
    defined = {}
    for info in pkgutil.iter_modules(problems.__path__):
        module = importlib.import_module(f"asyncopt_mpi.problems.{info.name}")
        for cls in vars(module).values():
            if (isinstance(cls, type) and issubclass(cls, problems.Problem) and cls.__module__ == module.__name__
                    and isinstance(cls.__dict__.get("name"), str) and cls.__dict__["name"]):
                defined[cls.name] = (info.name, cls.__name__)
    assert defined == problems.BUILT_IN_CLASSES
    assert all(problems.PROBLEMS[name].__name__ == cls for name, (_, cls) in problems.BUILT_IN_CLASSES.items())


def test_listing_the_names_imports_no_method_module():
    script = ("import sys\nfrom asyncopt_mpi.methods import METHODS\nfrom asyncopt_mpi.problems import PROBLEMS\n"
              "names = sorted(METHODS), sorted(PROBLEMS), 'qsgd' in METHODS, 'nonexistent' in METHODS\n"
              "before = sorted(m for m in sys.modules if m.startswith(('asyncopt_mpi.methods.', 'asyncopt_mpi.problems.')))\n"
              "METHODS['qsgd']\n"
              "after = sorted(m for m in sys.modules if m.startswith('asyncopt_mpi.methods.'))\n"
              "print(len(names[0]), len(names[1]), names[2], names[3], before, 'asyncopt_mpi.methods.compressed' in after)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split(" ", 4)[:4] == [str(len(BUILT_IN_MODULES)), str(len(problems.BUILT_IN_CLASSES)), "True",
                                             "False"]
    assert "'asyncopt_mpi.methods.async_sgd'" not in done.stdout and "'asyncopt_mpi.problems.logistic'" not in done.stdout
    assert done.stdout.split()[-1] == "True"


def test_the_tridiagonal_solve_gives_lapacks_numbers_bit_for_bit():
    """The quadratic's minimizer (its f*) without scipy equals scipy.linalg.solve_banded's, bits and signs."""
    import scipy.linalg

    rng = np.random.default_rng(0)
    systems = []
    for L in (1.0, 0.5, 3.7, 1e-3):
        for d in [*range(2, 120), 1000, 4999]:
            bands = np.zeros((3, d))
            bands[0, 1:], bands[1], bands[2, :-1] = -L / 4, L / 2, -L / 4
            systems.append((bands, np.eye(1, d).ravel() * (-L / 4)))
    for _ in range(500):  # diagonally dominant by columns: dgtsv interchanges no rows
        d = int(rng.integers(2, 200))
        bands = rng.standard_normal((3, d))
        bands[1] = np.sign(bands[1]) * (abs(bands[0]) + abs(bands[2]) + 0.5 + abs(bands[1]))
        systems.append((bands, rng.standard_normal(d)))
    for bands, rhs in systems:
        solved = tridiagonal.dgtsv(bands[0, 1:].tolist(), bands[1].tolist(), bands[2, :-1].tolist(), rhs.tolist())
        assert solved is not None
        solved = np.array(solved)
        expected = scipy.linalg.solve_banded((1, 1), bands, rhs)
        assert solved.tobytes() == expected.tobytes(), bands.shape
    assert tridiagonal.dgtsv([1.0], [0.5, 1.0], [1.0], [1.0, 1.0]) is None  # a row interchange: scipy solves it
