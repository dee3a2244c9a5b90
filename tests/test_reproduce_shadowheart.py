"""The Shadowheart experiments of `asyncopt reproduce` (seed 001): Table 1's factors computed from the theory with a
verdict per cell, and each run experiment at small scale, where what the gaps make robust holds (Shadowheart SGD
ahead of the methods that send d floats under slow communication, more workers ending lower)."""

from __future__ import annotations

import statistics

import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.reproduce.shadowheart_table1 import rounds_to
from reproduction_files import reported_finals, reproduce_small
from test_reproduce import PNG


def _verdicts(report: str) -> dict[str, str]:
    """Claim row (its first cells) -> verdict, for every row of REPORT.md's tables that carries one."""
    rows = [line for line in report.splitlines() if line.startswith("| ") and line.endswith("** |")]
    return {" | ".join(line.split(" | ")[:2]): line.rsplit("**", 2)[-2] for line in rows}


def test_table1_rows_and_verdicts_follow_the_tables_rounding(tmp_path):
    done = CliRunner().invoke(cli, ["reproduce", "shadowheart-table1", "--output", str(tmp_path)])
    assert done.exit_code == 0, done.stderr
    report = (tmp_path / "shadowheart-table1" / "REPORT.md").read_text()
    assert "| d | 1000000 | 1000000 | seed 001 line 1169" in report
    verdicts = _verdicts(report)
    factors = {key: verdict for key, verdict in verdicts.items() if "slower than Shadowheart" in key}
    assert len(factors) == 9  # 3 methods x sigma^2/eps in {1, 10^3, 10^6}
    assert factors["| Minibatch SGD is x10^4 slower than Shadowheart SGD (seed 001 line 1157) | 1e+06"] == "reproduced"
    assert factors["| QSGD is x3 slower than Shadowheart SGD (seed 001 line 1158) | 1"] == "reproduced"
    # the one cell the theory does not give: the Rennala/Async bound is ~4x Shadowheart's t*, not 1.5x
    missed = [key for key, verdict in factors.items() if verdict != "reproduced"]
    assert missed == ["| Rennala SGD, Asynchronous SGD (lower bound) is x1.5 slower than Shadowheart SGD "
                      "(seed 001 line 1159) | 1e+06"], missed
    robust = {key: verdict for key, verdict in verdicts.items() if key not in factors}
    assert len(robust) == 4 and set(robust.values()) == {"reproduced"}, robust
    assert "| Minibatch SGD (seed 001 line 1157) | inf (non-robust) | inf |" in report
    # the table's rounding: x10^k is an order of magnitude, x3 and x1.5 their digits
    assert rounds_to(763, "10^2") and not rounds_to(1000, "10^2") and rounds_to(77.6, "10")
    assert rounds_to(2.64, "3") and not rounds_to(3.6, "3") and not rounds_to(4.0, "1.5")


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~75 runs (3 regimes x 5 methods): about 20 s of CPU, several minutes under load
def test_regimes_small_shadowheart_ahead_of_the_full_vector_methods_under_slow_communication(tmp_path):
    folder, rows = reproduce_small("shadowheart-regimes", tmp_path)
    for panel in ("fast", "medium", "slow"):
        assert (folder / f"figure-{panel}.png").read_bytes().startswith(PNG)
    finals = {method: reported_finals(rows, "slow", method)
              for method in ("shadowheart_sgd", "rennala_sgd", "async_sgd", "minibatch_sgd", "qsgd")}
    assert all(len(values) == 2 for values in finals.values()), finals
    # theta_i = sqrt(i)/sqrt(d): a full vector costs sqrt(d) = 10 gradients, a RandK one a tenth of a gradient
    for sent_in_full in ("rennala_sgd", "async_sgd", "minibatch_sgd"):
        assert statistics.median(finals["shadowheart_sgd"]) < statistics.median(finals[sent_in_full]), finals
    verdicts = _verdicts((folder / "REPORT.md").read_text())
    assert len(verdicts) == 12  # 4 claims x 3 regimes
    assert verdicts["| 1. shadowheart_sgd reaches f - f* <= 0.03 before minibatch_sgd | slow"] == "reproduced"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_more_workers_small_more_workers_end_lower(tmp_path):
    folder, rows = reproduce_small("shadowheart-more-workers", tmp_path)
    assert (folder / "figure-uniformtimes.png").read_bytes().startswith(PNG)
    finals = [statistics.median(reported_finals(rows, "uniformtimes", f"shadowheart_sgdn-{paper}-small-{small}"))
              for paper, small in ((10, 2), (100, 8), (1000, 32))]
    assert finals[2] < finals[1] < finals[0], finals
    verdicts = _verdicts((folder / "REPORT.md").read_text())
    assert len(verdicts) == 4 and set(verdicts.values()) == {"reproduced"}, verdicts  # sooner and lower


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_logistic_small_runs_every_method_on_synthetic_data(tmp_path):
    folder, rows = reproduce_small("shadowheart-logistic", tmp_path)
    assert (folder / "figure-slow.png").read_bytes().startswith(PNG)
    finals = {method: reported_finals(rows, "slow", method)
              for method in ("shadowheart_sgd", "rennala_sgd", "async_sgd", "minibatch_sgd", "qsgd")}
    assert all(len(values) == 2 for values in finals.values()), finals
    for slowest in ("rennala_sgd", "qsgd"):  # about twice Shadowheart's final loss gap at this size
        assert statistics.median(finals["shadowheart_sgd"]) < statistics.median(finals[slowest]), finals
    report = (folder / "REPORT.md").read_text()
    assert "| problem.data |  | {data}/mnist/train-images-idx3-ubyte |" in report  # small: no download
    assert len(_verdicts(report)) == 4
