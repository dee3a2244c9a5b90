"""`make bench` in its quick mode runs every benchmark end to end and writes the report.

The sections run in PARTS processes side by side, each `benchmarks/run.py --quick` with every
PARTS-th section (most of a section's time is MPI runs of a fixed wall time, not CPU; the quick
figures are not compared, so runs at the same time are fine). Together they write every section.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = 3
# benchmarks/run.py's main() on sections part, part + PARTS, ...; first prints every section's title.
DRIVER = ("import json, sys; part, parts, output = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]; "
          "sys.path.insert(0, 'benchmarks'); import run; "
          "print(json.dumps([title for title, *_ in run.SECTIONS]), flush=True); "
          "run.SECTIONS[:] = run.SECTIONS[part::parts]; "
          "sys.argv = ['run.py', '--quick', '--output', output]; run.main()")


@pytest.mark.mpi
@pytest.mark.timeout(660)  # the runs' own limit below (600 s) decides; under a minute on a quiet machine
def test_quick_benchmarks_write_every_section(tmp_path):
    reports = [tmp_path / f"RESULTS-{part}.md" for part in range(PARTS)]
    runs = [subprocess.Popen([sys.executable, "-c", DRIVER, str(part), str(PARTS), str(report)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for part, report in enumerate(reports)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-3000:]
    titles = json.loads(outputs[0][0].splitlines()[0])
    texts = [report.read_text() for report in reports]
    for title in titles:
        assert sum(f"## {title}\n" in text for text in texts) == 1, title
    text = "\n".join(texts)
    for section in ("Server efficiency", "Per-message overhead", "Point caching", "Simulator", "Server memory"):
        assert f"## {section}" in text
    assert "| async_sgd |" in text and "events/s" in text and "MPI:" in text
