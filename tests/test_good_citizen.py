"""Library manners: plot() leaves a notebook's matplotlib backend alone and opens no pyplot figure; the
package's text points at documents it ships (README), not at files outside the repository."""

from __future__ import annotations

import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "asyncopt_mpi"


def test_plot_keeps_the_callers_matplotlib_backend_and_never_imports_pyplot(tmp_path):
    script = f"""
import sys
import matplotlib
matplotlib.use("svg")  # what a notebook or a GUI session chose
import asyncopt_mpi as ao
from asyncopt_mpi.plot import plot
result = ao.run("{PACKAGE.parent / 'jobs' / 'demo.toml'}", overrides=["workers.n=4", "stop.time=4"],
                output="{tmp_path / 'run.h5'}")
for name in ("figure.png", "figure.pdf"):
    plot([result.path], "{tmp_path}/" + name)
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "False"]
    assert (tmp_path / "figure.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "figure.pdf").read_bytes().startswith(b"%PDF")


def test_the_package_refers_to_no_document_outside_the_repository():
    mentions = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if "DESIGN.md" in path.read_text()]
    assert mentions == []
