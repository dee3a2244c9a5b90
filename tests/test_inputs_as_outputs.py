"""A file the run reads is never its output (issue 24, item 2).

Each kind of input (a --plugin file, a plugin module imported by name, workers.compute_trace,
problem.test_data; the config, problem.data and graph.edges in a side file's place or through a
link) given as --output with --overwrite is refused with one line, exit 2, before anything is
written, and keeps its bytes: in the simulator, under mpiexec and through the Python API.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import asyncopt_mpi as ao
from asyncopt_mpi import plugins
from asyncopt_mpi.cli import cli
from asyncopt_mpi.errors import UserError
from conftest import run_mpi
from test_file_safety import DEMO, SIM, digest, one_error_line

PLUGIN = "# a plugin that registers nothing\n"
PACKAGE = "inputs_as_outputs_package"


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """Input files of every kind in tmp_path (the plugins this process imports are forgotten after the test)."""
    shutil.copy(DEMO, tmp_path / "in.toml")
    (tmp_path / "plug.py").write_text(PLUGIN)
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "__init__.py").write_text("")
    (tmp_path / PACKAGE / "plugin_module.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_requested", list(plugins._requested))
    monkeypatch.setattr(plugins, "_loaded", dict(plugins._loaded))
    (tmp_path / "trace.csv").write_text("".join(f"{worker},0.01\n" for worker in range(4)))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    labels = (features[:, 0] > 0).astype(int)
    np.savez(tmp_path / "train.npz", X=features, y=labels)
    np.savez(tmp_path / "test.npz", X=features[:8], y=labels[:8])
    (tmp_path / "edges.txt").write_text("0 1\n1 2\n2 3\n")
    yield tmp_path
    for name in (f"{PACKAGE}.plugin_module", PACKAGE):
        sys.modules.pop(name, None)


def arguments(folder, kind: str) -> tuple[list[str], str]:
    """(run arguments reading an input of `kind`, that input's path)."""
    trace = ["--set", 'workers.compute="trace"', "--set", f'workers.compute_trace="{folder / "trace.csv"}"']
    logistic = ["--set", "problem.name=logistic", "--set", f'problem.data="{folder / "train.npz"}"',
                "--set", f'problem.test_data="{folder / "test.npz"}"']
    edges = ["--method", "fragile_sgd", "--set", "graph.topology=edges",
             "--set", f'graph.edges="{folder / "edges.txt"}"']
    return {
        "plugin file": (["--plugin", str(folder / "plug.py")], folder / "plug.py"),
        "plugin module": (["--plugin", f"{PACKAGE}.plugin_module"], folder / PACKAGE / "plugin_module.py"),
        "compute trace": (trace, folder / "trace.csv"),
        "test data": (logistic, folder / "test.npz"),
        "config": ([], folder / "in.toml"),
        "data": (logistic, folder / "train.npz"),
        "edges": (edges, folder / "edges.txt"),
    }[kind]


def refused_untouched(done_code: int, stderr: str, source, before: str, folder, listing: list[str]) -> None:
    assert done_code == 2, stderr
    assert "is an input of this run" in one_error_line(stderr)
    assert digest(source) == before
    assert sorted(os.listdir(folder)) == listing  # nothing written: no lock, no staged file


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["plugin file", "plugin module", "compute trace", "test data"])
def test_an_input_given_as_the_output_with_overwrite_is_refused_in_the_simulator(inputs, kind):
    extra, source = arguments(inputs, kind)
    before, listing = digest(source), sorted(os.listdir(inputs))
    done = CliRunner().invoke(cli, ["run", str(inputs / "in.toml"), *SIM, *extra, "--output", str(source),
                                    "--overwrite"])
    refused_untouched(done.exit_code, done.stderr, source, before, inputs, listing)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind, place", [
    ("config", ".partial"), ("data", ".partial"), ("edges", ".reserve"), ("plugin file", "link"),
])
def test_an_input_in_a_side_files_place_or_behind_a_link_is_refused(inputs, kind, place):
    """An input that stands where the output's staged file or reserve goes (o.h5.partial), or the
    output as a symlink to an input: the run would write it, so it is refused."""
    extra, source = arguments(inputs, kind)
    if place == "link":
        output = str(inputs / "out.h5")
        os.symlink(source, output)
    else:  # the input renamed so that it stands where the output's side file goes
        os.rename(source, str(source) + place)
        source, output = type(source)(str(source) + place), str(source)
        extra = [item.replace(output, str(source)) for item in extra]
    before, listing = digest(source), sorted(os.listdir(inputs))
    config = str(source) if kind == "config" else str(inputs / "in.toml")
    done = CliRunner().invoke(cli, ["run", config, *SIM, *extra, "--output", output, "--overwrite"])
    refused_untouched(done.exit_code, done.stderr, source, before, inputs, listing)


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_under_mpiexec_a_plugin_or_trace_given_as_the_output_is_refused(inputs):
    for kind in ("plugin file", "compute trace"):
        extra, source = arguments(inputs, kind)
        before, listing = digest(source), sorted(os.listdir(inputs))
        done = run_mpi(3, ["run", str(inputs / "in.toml"), "--quiet", "--set", "stop.time=1", *extra,
                           "--output", str(source), "--overwrite"], timeout=200)
        refused_untouched(done.returncode, done.stderr, source, before, inputs, listing)


@pytest.mark.timeout(120)
def test_the_python_api_refuses_its_config_and_plugin_as_the_output(inputs):
    for source in (inputs / "in.toml", inputs / "plug.py"):
        before = digest(source)
        with pytest.raises(UserError, match="is an input of this run"):
            ao.run(str(inputs / "in.toml"), overrides={"workers.n": 4, "stop.time": 1}, output=str(source),
                   plugins=[str(inputs / "plug.py")], overwrite=True)
        assert digest(source) == before
