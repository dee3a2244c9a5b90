"""Strings from MPI are cleaned before they are stored; a file a run left without its groups is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import h5py
import pytest

from asyncopt_mpi.runtime.mpi.text import library_version, printable
from conftest import run_cli


class OpenMpiLike:
    """What Open MPI's Get_library_version returns: one line ending in a NUL byte."""

    @staticmethod
    def Get_library_version() -> str:
        return "Open MPI v5.0.11, package: Open MPI user@localhost Distribution, ident: 5.0.11\x00"


def test_printable_drops_nul_and_control_characters():
    assert printable("Open MPI v5\x00") == "Open MPI v5"
    assert printable(b"node\x07-1\t(x)\x00\x00") == "node-1 (x)"
    assert printable("  MPICH Version:  5.0.2\n") == "MPICH Version:  5.0.2"


def test_library_version_is_storable_in_hdf5(tmp_path):
    text = library_version(OpenMpiLike)
    assert "\x00" not in text and text.startswith("Open MPI v5.0.11")
    with h5py.File(tmp_path / "attrs.h5", "w") as handle:
        handle.attrs["mpi_library"] = text  # raised "VLEN strings do not support embedded NULLs" before
    with pytest.raises(ValueError):
        with h5py.File(tmp_path / "raw.h5", "w") as handle:
            handle.attrs["mpi_library"] = OpenMpiLike.Get_library_version()


# The file Open MPI runs left before the fix: the writer died on the NUL while it stored the
# run's attributes, so the file has some attributes and none of its groups.
HALF_WRITTEN = """
import sys
from asyncopt_mpi.results import ResultsWriter
attrs = {"method": "async_sgd", "problem": "quadratic", "backend": "mpi", "n_workers": 2,
         "config": "[method]\\nname = 'async_sgd'\\n", "mpi_library": "Open MPI v5.0.11\\x00"}
try:
    ResultsWriter(sys.argv[1], attrs=attrs, dim=4, n_workers=2)
except ValueError as exc:
    assert "NUL" in str(exc), exc
else:
    raise SystemExit("the writer accepted a NUL byte")
"""


@pytest.fixture
def half_written(tmp_path):
    path = tmp_path / "half.h5"
    subprocess.run([sys.executable, "-c", HALF_WRITTEN, str(path)], check=True, timeout=60)
    with h5py.File(path, "r") as handle:
        assert "snapshots" not in handle and "method" in handle.attrs
    return path


@pytest.mark.parametrize("command", [
    ["summary"], ["summary", "--workers"], ["evaluate"], ["plot", "-o", "{dir}/out.png"],
    ["run", "--backend", "sim", "--resume"],
])
def test_commands_name_what_is_missing_in_one_line(half_written, command):
    args = [item.replace("{dir}", str(half_written.parent)) for item in command] + [str(half_written)]
    done = run_cli(args, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]  # no launcher here
    assert len(lines) == 1, done.stderr
    assert "/snapshots" in lines[0] and str(half_written) in lines[0] and "Traceback" not in done.stderr
