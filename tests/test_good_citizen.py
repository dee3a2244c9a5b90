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


def test_the_libsvm_reader_budgets_the_memory_parsing_text_really_takes(tmp_path):
    """Parsing LIBSVM text peaks at about 16 bytes per byte of text (measured 15.7): a budget of 12
    bytes per byte is refused before the file is read, in one line naming the need."""
    import importlib.util

    import pytest

    from asyncopt_mpi.errors import DataError
    from asyncopt_mpi.problems.data import load_dataset

    path = tmp_path / "rows.svm"
    path.write_text("".join(f"{k % 2} 1:{k}.5 3:0.25 7:{k}\n" for k in range(2000)))
    size = path.stat().st_size
    # Where scikit-learn is installed (the sklearn extra), its reader takes text the built-in one cannot
    # hold: it needs 4 bytes per byte.
    refused_at = 3 if importlib.util.find_spec("sklearn") else 12
    with pytest.raises(DataError, match=r"rows\.svm: .* of LIBSVM text needs about .* of memory, more than"):
        load_dataset(str(path), max_memory=refused_at * size)
    features, labels = load_dataset(str(path), max_memory=17 * size)
    assert features.shape == (2000, 7) and labels.shape == (2000,)


def test_a_truncated_gzip_is_called_truncated_not_gigabytes(tmp_path):
    """The last 4 bytes of a truncated gzip are no size trailer: one line saying the file is broken,
    never an inflated size deflate cannot reach from so few bytes."""
    import gzip

    import pytest

    from asyncopt_mpi.errors import DataError
    from asyncopt_mpi.problems.data import load_dataset

    path = tmp_path / "broken.txt.gz"
    path.write_bytes(gzip.compress(b"1 1:1\n" * 50)[:-8] + b"\xff\xff\xff\x7f")  # cut, 4 bytes of garbage
    with pytest.raises(DataError, match="broken.txt.gz: not a valid gzip file"):
        load_dataset(str(path), max_memory=2**30)


def test_a_sweep_of_a_plugin_method_runs_in_forkserver_children(tmp_path):
    """Python 3.14 starts pool children with forkserver on Linux: the --plugin list reaches them."""
    script = f"""
import multiprocessing, sys
multiprocessing.set_start_method("forkserver")
from asyncopt_mpi.cli import main
sys.argv = ["asyncopt", "sweep", "{PACKAGE.parent / 'jobs' / 'demo.toml'}", "--plugin", "{PACKAGE.parent / 'examples' / 'fedbuff.py'}",
            "--set", "method.name=fedbuff", "--set", "workers.n=4", "--set", "stop.time=4",
            "--grid", "method.lr=0.01,0.02", "--processes", "2", "--out", "{tmp_path / 'out'}"]
main()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").glob("*.h5"))) == 2
