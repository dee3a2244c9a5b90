"""Start-up cost: what `import asyncopt_mpi` and the light commands load (a fresh process each: the test is
about start-up). `python -X importtime` lists every module a process imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

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

