"""`make bench` in its quick mode runs every benchmark end to end and writes the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.mpi
@pytest.mark.timeout(660)  # the run's own limit below (600 s) decides; about a minute on a quiet machine
def test_quick_benchmarks_write_every_section(tmp_path):
    report = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(report)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text()
    for section in ("Server efficiency", "Per-message overhead", "Point caching", "Simulator", "Server memory"):
        assert f"## {section}" in text
    assert "| async_sgd |" in text and "events/s" in text and "MPI:" in text
