"""A plugin problem that does not read a common [problem] key the config sets refuses it, as built-ins refuse
keys they do not have; problem.dim names the dimension the problem really has."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import asyncopt_mpi as ao

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _least_squares(tmp_path, **problem) -> dict:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from least_squares import make_data
    finally:
        sys.path.pop(0)
    data = make_data(str(tmp_path / "ls.npz"), samples=50, dim=4)
    return {"problem": {"name": "least_squares", "data": data, **problem}, "method": {"name": "async_sgd", "lr": 0.1},
            "workers": {"n": 2}, "stop": {"time": 0.5}, "output": {"path": str(tmp_path / "r.h5")}}


@pytest.mark.parametrize("key, value", [("noise", 0.5), ("noise_type", "zero_last"), ("samples", 10)])
def test_a_common_key_the_plugin_problem_never_reads_is_refused(tmp_path, key, value):
    with pytest.raises(ao.ConfigError) as raised:
        ao.run(_least_squares(tmp_path, **{key: value}), plugins=[str(EXAMPLES / "least_squares.py")])
    assert f"problem.{key}: problem 'least_squares' does not use this key" in str(raised.value)
    assert not (tmp_path / "r.h5").exists()


def test_a_dim_other_than_the_problems_own_is_refused_and_its_own_accepted(tmp_path):
    plugin = [str(EXAMPLES / "least_squares.py")]
    with pytest.raises(ao.ConfigError) as raised:
        ao.run(_least_squares(tmp_path, dim=7), plugins=plugin)
    assert "problem.dim = 7: problem 'least_squares' has dimension 4" in str(raised.value)
    assert ao.run(_least_squares(tmp_path, dim=4), plugins=plugin).status == "completed"
