"""A plugin that ends the process while it is imported (os._exit, sys.exit) is a broken input: one line, exit 2."""

from __future__ import annotations

import pytest

from conftest import project_lines, run_cli, run_mpi

EXITS = {"os._exit(0)": "import os\nos._exit(0)\n", "sys.exit()": "import sys\nsys.exit()\n"}


def plugin_file(tmp_path, call: str) -> str:
    path = tmp_path / "exiting_plugin.py"
    path.write_text(EXITS[call])
    return str(path)


def assert_one_line(stderr: str, plugin: str, call: str) -> None:
    assert project_lines(stderr) == [
        f"asyncopt: error: plugin {plugin!r} exits the process at import ({call}); a plugin only defines and "
        "registers methods and problems"], stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", EXITS)
def test_the_simulator_names_a_plugin_that_exits_at_import(tmp_path, call):
    plugin = plugin_file(tmp_path, call)
    output = tmp_path / "run.h5"
    done = run_cli(["run", "--backend", "sim", "--plugin", plugin, "--set", "workers.n=2", "--set", "stop.time=1",
                    "--output", str(output)], timeout=90)
    assert done.returncode == 2
    assert_one_line(done.stderr, plugin, call)
    assert not output.exists()


@pytest.mark.mpi
@pytest.mark.timeout(180)
@pytest.mark.parametrize("call", EXITS)
def test_every_rank_ends_with_one_line_when_a_plugin_exits_at_import(tmp_path, call):
    plugin = plugin_file(tmp_path, call)
    output = tmp_path / "run.h5"
    done = run_mpi(2, ["run", "--backend", "mpi", "--plugin", plugin, "--set", "stop.time=1", "--output", str(output)],
                   timeout=150)
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, plugin, call)
    assert not output.exists()
