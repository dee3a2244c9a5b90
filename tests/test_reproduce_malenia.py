"""`asyncopt reproduce malenia --scale small`: Malenia SGD, Minibatch SGD and Rennala SGD on label-sorted shards
with tau_i = sqrt(i), and what is robust at that size: Rennala SGD, whose batch is mostly the fast workers' class,
reaches the target well after Malenia SGD, which weighs every shard the same (seed 001 lines 909-912)."""

from __future__ import annotations

import pytest

from reproduction_files import reproduce_small

PNG = b"\x89PNG\r\n\x1a\n"
METHODS = ("malenia_sgd", "minibatch_sgd", "rennala_sgd")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_malenia_small_scale_is_ahead_of_rennala_sgd_on_heterogeneous_shards(tmp_path):
    folder, rows = reproduce_small("malenia", tmp_path)
    assert (folder / "figure-n-10000.png").read_bytes().startswith(PNG)
    rows = [row for row in rows if "/tuning/" not in row["file"]]
    assert all(len([row for row in rows if f"/runs/n-10000/{method}/" in row["file"]]) == 2 for method in METHODS)
    report = (folder / "REPORT.md").read_text()
    assert "| workers.compute | sqrt | sqrt | seed 001 line 855 (tau_i = sqrt(i)) |" in report
    assert "| workers.data_split | by_label | by_label |" in report
    verdicts = [line.rsplit("**", 2)[-2] for line in report.splitlines() if line.startswith("| ") and "**" in line]
    assert len(verdicts) == 2 and set(verdicts) <= {"reproduced", "partly", "not reproduced"}
    rennala = [line for line in report.splitlines()
               if line.startswith("| 2. malenia_sgd reaches f - f* <= 0.05 before rennala_sgd")]
    assert len(rennala) == 1 and rennala[0].endswith("| 2 of 2 seeds | **reproduced** |"), rennala
