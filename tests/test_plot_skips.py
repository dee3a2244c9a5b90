"""`asyncopt plot DIR` leaves out a killed run's file without metrics with a warning and draws the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.results import is_cleanly_closed

from conftest import asyncopt_command, attrs, simulate, wait_for_snapshots


def killed_run(path) -> None:
    """A simulator run killed with SIGKILL after its first snapshots; its watchdog repairs the file (no metrics)."""
    process = subprocess.Popen(asyncopt_command() + [
        "run", "--backend", "sim", "--method", "async_sgd", "--quiet", "--output", str(path),
        "--set", 'problem.name="quadratic"', "--set", "problem.dim=20", "--set", "workers.n=4",
        "--set", "stop.time=1e6", "--set", "output.snapshot_every=0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_snapshots(path, pause=0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not is_cleanly_closed(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert attrs(path)["status"] == "failed"


@pytest.mark.timeout(120)
def test_a_killed_file_in_a_folder_is_skipped_with_a_warning(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    simulate(folder, "async_sgd", ["workers.n=4", "stop.time=4"], name="good")
    killed_run(folder / "killed.h5")
    figure = tmp_path / "figure.png"

    done = CliRunner().invoke(cli, ["plot", str(folder), "-o", str(figure)])
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines() == [
        f"asyncopt: warning: skipped: '{folder / 'killed.h5'}': no metrics to plot; compute them with "
        f"`asyncopt evaluate '{folder / 'killed.h5'}'`"]
    assert "(1 runs, 1 lines)" in done.stdout and os.path.getsize(figure) > 0

    # Named on the command line, the same file is an error; a folder of nothing plottable too.
    named = CliRunner().invoke(cli, ["plot", str(folder / "killed.h5"), "-o", str(tmp_path / "named.png")])
    assert named.exit_code == 2 and named.stderr.startswith("asyncopt: error: ") and len(named.stderr.splitlines()) == 1
    os.unlink(folder / "good.h5")
    empty = CliRunner().invoke(cli, ["plot", str(folder), "-o", str(tmp_path / "empty.png")])
    assert empty.exit_code == 2
    assert empty.stderr.splitlines()[-1] == "asyncopt: error: none of the 1 files could be plotted (see the warnings above)"
