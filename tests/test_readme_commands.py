"""README's quick start and "Running" commands, run verbatim in a fresh folder: exit 0 and a finite, falling f - f*.

The commands are read from README.md when the test runs, so edits to README are tested as they are.
Differences from a user's shell, each for a stated reason: `make ...` is not run (`make test` is
this suite; `make demo` sets up .venv and runs the `mpiexec -n 5` demo that the Running section's
commands also cover); `. .venv/bin/activate` is replaced by putting this interpreter's bin folder
first on PATH; `mpiexec -n N` starts at most MAX_RANKS ranks (the machine has 2 cores and the
suite keeps MPI tests small).
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.path.dirname(sys.executable)
SECTIONS = ("Quick start", "Running")
MAX_RANKS = 3  # rank 0 and two workers: every rank is a Python start-up and a polling loop
NOT_RUN = {"make": "make targets set up a venv and run the suite or the demo", ".": "the venv is already first on PATH"}

pytestmark = pytest.mark.mpi


def readme_commands() -> list[str]:
    """Every command of the ```sh blocks in README's quick start and Running sections (continuations joined).

    A section ends at the next heading, `##` or `###`: the subsections under Running (experiments
    that need data files, multi-host launchers, Slurm) are not the commands a new user starts with.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for title in SECTIONS:
        start = text.index(f"\n## {title}\n")
        end = min((at for at in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if at >= 0),
                  default=len(text))
        section = text[start:end]
        for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words:
                    commands.append(shlex.join(words))
    return commands


def as_run_here(command: str) -> str | None:
    """The command as this test runs it, or None when it is not run (NOT_RUN)."""
    words = shlex.split(command)
    if words[0] in NOT_RUN:
        return None
    if words[0] == "mpiexec" and words[1] == "-n":
        words[2] = str(min(int(words[2]), MAX_RANKS))
    return " ".join(word if any(c in word for c in "*?") else shlex.quote(word) for word in words)


def check_run(path: pathlib.Path) -> None:
    with h5py.File(path, "r") as handle:
        status = handle.attrs["status"]
        values = handle["metrics/suboptimality"][()]
    assert status in ("completed", "stopped"), (path, status)
    assert len(values) >= 2 and np.all(np.isfinite(values)), (path, values)
    assert values[-1] < values[0], f"{path}: f - f* did not fall ({values[0]:.3g} -> {values[-1]:.3g})"


@pytest.mark.timeout(1200)
def test_readme_commands_run_verbatim(tmp_path):
    commands = readme_commands()
    assert any(command.startswith("mpiexec") for command in commands) and len(commands) >= 8
    (tmp_path / "jobs").symlink_to(ROOT / "jobs")  # a fresh folder with the project's configs
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    seen: set[pathlib.Path] = set()
    ran = 0
    for command in commands:
        shell = as_run_here(command)
        if shell is None:
            continue
        started = time.monotonic()
        done = subprocess.run(shell, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        print(f"{time.monotonic() - started:6.1f} s  {shell}")
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, f"`{command}`:\n{done.stderr[-2000:]}"
        ran += 1
        files = {path for path in tmp_path.rglob("*.h5")}
        for path in sorted(files - seen):  # every results file a command made converged
            check_run(path)
        if " run " in f" {command} " or " sweep " in f" {command} ":
            assert files - seen, f"`{command}` wrote no new results file (did it overwrite one?)"
        seen = files
    assert ran >= 8
