"""README's Python API block, run verbatim twice in a fresh folder: the second run replaces the first's files."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_python_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Python API\n"):text.index("\n## Writing a method\n")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


@pytest.mark.mpi
@pytest.mark.timeout(600)
def test_the_python_api_block_runs_verbatim_twice_in_a_fresh_folder(tmp_path):
    for name in ("jobs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    script = tmp_path / "block.py"
    script.write_text(readme_python_block())
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for attempt in (1, 2):
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=280)
        assert done.returncode == 0, f"attempt {attempt}:\n{done.stderr[-3000:]}"
        assert done.stdout.startswith("completed "), done.stdout
        assert "fedbuff" in done.stdout and "rennala_sgd" in done.stdout  # the tidy frame's groups
    assert sorted(path.name for path in (tmp_path / "runs").glob("*.h5")) == [
        "fedbuff.h5", "rennala-mpi.h5", "rennala.h5"]


def test_refusals_of_the_api_name_its_parameters_not_command_line_flags(tmp_path):
    import asyncopt_mpi as ao

    config = {"problem": {"name": "quadratic", "dim": 5}, "method": {"name": "async_sgd", "lr": 0.1},
              "workers": {"n": 2}, "stop": {"time": 0.5}, "output": {"path": str(tmp_path / "r.h5")}}
    ao.run(config)
    with pytest.raises(ao.ConfigError) as raised:
        ao.run(config)
    message = str(raised.value)
    assert "overwrite=True" in message and "--overwrite" not in message and "--output" not in message


def test_a_deeply_nested_config_dict_is_one_config_error():
    import asyncopt_mpi as ao

    for depth in (40, 5000):
        value: list = []
        for _ in range(depth):
            value = [value]
        with pytest.raises(ao.ConfigError) as raised:
            ao.load_config({"problem": {"name": "quadratic", "dim": value}})
        assert "deep" in str(raised.value) and len(str(raised.value)) < 200
