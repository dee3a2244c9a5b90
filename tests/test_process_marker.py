"""The `process` marker `make test-fast` deselects: set on the tests that start a process, and only on them."""

from __future__ import annotations

import subprocess
import sys

from conftest import COMMANDS, run_cli, simulate
from process_marker import starts_processes


def _in_process(tmp_path):
    return simulate(tmp_path, "async_sgd", ["stop.gradients=5"]), sys.executable


def _launching():
    return run_cli(["--version"])


def _through_a_helper():
    return _launching()


def _inside_a_comprehension():
    return [subprocess.run([sys.executable, "-c", "pass"], check=True) for _ in range(1)]


def _forked_from_a_command_server():
    return COMMANDS.run(["--version"])


def _with_a_pool(tmp_path):
    return SAMPLES, ["sweep", "--processes", "2", "--out", str(tmp_path)]


def _with_a_pool_keyword(sweep):
    return sweep(processes=2)


# The samples are reached through this table so that the tests below name none of them: a test that
# names a launching helper is itself marked (and left out of make test-fast).
SAMPLES = {"in process": _in_process, "launching": _launching, "through a helper": _through_a_helper,
           "inside a comprehension": _inside_a_comprehension, "forked from a command server": _forked_from_a_command_server,
           "with a pool": _with_a_pool, "with a pool keyword": _with_a_pool_keyword}


def test_launchers_are_found_directly_through_helpers_and_inside_comprehensions():
    for name in ("launching", "through a helper", "inside a comprehension", "forked from a command server",
                 "with a pool", "with a pool keyword"):
        assert starts_processes(SAMPLES[name], set()), name


def test_code_that_runs_in_this_process_is_not_marked():
    assert not starts_processes(SAMPLES["in process"], set())
    assert not starts_processes(simulate, set())


def test_the_marker_is_set_at_collection(request):
    """These tests start nothing and are not marked; test_startup's each start Python and are."""
    import test_startup

    assert request.node.get_closest_marker("process") is None
    assert starts_processes(test_startup.test_import_loads_neither_numpy_nor_scipy, set())
