"""`asyncopt problems` lists every problem a config can name, with a description and its own keys
and defaults; --markdown gives the built-ins as a table; plugin problems are marked with their origin."""

from __future__ import annotations

import os

from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.problems import PROBLEMS

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
BUILT_IN = ("quadratic", "logistic", "nonconvex_logistic", "matrix_sensing", "pnn")


def test_problems_lists_each_built_in_with_its_keys_and_defaults():
    done = CliRunner().invoke(cli, ["problems"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    for name in BUILT_IN:
        at = next(index for index, line in enumerate(lines) if line.split()[:1] == [name])
        assert PROBLEMS[name].description in lines[at]
        own = ", ".join(f"{key}={value!r}" for key, value in PROBLEMS[name].params.items())
        assert lines[at + 1].strip() == f"own keys: {own}"
    assert "keys of every problem: dim=100, samples=0, noise=0.0" in done.output


def test_problems_markdown_is_a_table_of_the_built_ins():
    done = CliRunner().invoke(cli, ["problems", "--markdown"])
    assert done.exit_code == 0, done.output
    rows = [line for line in done.output.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == sorted(BUILT_IN)
    assert "| `quadratic` | Tyurin's worst-case tridiagonal quadratic" in done.output and "L=1.0, lam=0.5" in done.output


def test_a_plugin_problem_is_listed_with_where_it_came_from():
    plugin = os.path.join(EXAMPLES, "least_squares.py")
    done = CliRunner().invoke(cli, ["problems", "--plugin", plugin])
    assert done.exit_code == 0, done.output
    line = next(line for line in done.output.splitlines() if line.startswith("least_squares"))
    assert "[plugin " in line and "least squares on a .npz" in line
    assert "own keys: l2=0.0" in done.output
