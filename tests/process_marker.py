"""The `process` marker: set at collection on every test that starts a process (`make test-fast` leaves them out).

A test starts one when its code, a tests/ helper it calls (by a global name, at any depth) or a
fixture it uses refers to subprocess, multiprocessing, a process pool, conftest's launchers
(run_cli, run_mpi, asyncopt_command, MPIEXEC, the command servers COMMANDS of
tests/forked_cli.py's CommandPool) or the package's own pool (`--processes` or
`processes=`: sweep, tune, reproduce). Read from the code, so a new test is marked without
anyone remembering to; conftest.py's collection hook calls it.
"""

from __future__ import annotations

import functools
import os
import types
from typing import Any, Iterator

import pytest

LAUNCHERS = ("run_cli", "run_mpi", "asyncopt_command", "MPIEXEC", "COMMANDS", "CommandPool")
LAUNCHER_MODULES = ("subprocess", "multiprocessing", "concurrent.futures.process")
POOL_OPTIONS = ("--processes", "processes")  # as a command-line word or a keyword argument
TESTS = os.path.dirname(os.path.abspath(__file__))


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    """`code` and the code of the functions, lambdas and comprehensions inside it."""
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _is_launcher(name: str, value: Any) -> bool:
    if name in LAUNCHERS:
        return True
    module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None) or ""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in LAUNCHER_MODULES)


def _names_a_pool(code: types.CodeType) -> bool:
    """Whether `code` passes --processes or processes= (the words of a list and a call's keywords are tuple constants)."""
    return any(constant in POOL_OPTIONS or (isinstance(constant, tuple) and any(word in constant for word in POOL_OPTIONS))
               for constant in code.co_consts)


def starts_processes(function: Any, seen: set[types.CodeType]) -> bool:
    """Whether `function`, defined under tests/, or a tests/ function it names starts a process."""
    function = getattr(function, "__func__", function)  # a test method
    code = getattr(function, "__code__", None)
    if code is None or code in seen or not os.path.abspath(code.co_filename).startswith(TESTS + os.sep):
        return False
    seen.add(code)
    namespace = function.__globals__
    for each in _code_objects(code):
        if _names_a_pool(each):
            return True
        for name in each.co_names:
            if name not in namespace:
                continue  # an attribute or a built-in
            value = namespace[name]
            if _is_launcher(name, value) or starts_processes(value, seen):
                return True
    return False


@functools.cache
def _verdict(function: Any) -> bool:
    """starts_processes, once per function (a parametrized test is one function for many items)."""
    return starts_processes(function, set())


def mark_process_tests(items: list[pytest.Item]) -> None:
    """Add the `process` marker to each test that starts a process (conftest.py's collection hook calls this)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        fixtures = [definition.func for name in (info.names_closure if info else ())
                    for definition in info.name2fixturedefs.get(name, ())]
        functions = [getattr(function, "__func__", function) for function in [getattr(item, "obj", None), *fixtures]]
        if any(_verdict(function) for function in functions if function is not None):
            item.add_marker(pytest.mark.process)
