"""`asyncopt reproduce`: the experiments are listed, each small scale writes REPORT.md, figures and runs.csv,
and what is robust at that size holds (orders of magnitude between variance-reduced and SGD methods,
Rennala SGD ahead of Minibatch SGD); the verdict rule is the documented one."""

from __future__ import annotations

import math
import statistics

import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.reproduce import EXPERIMENTS
from asyncopt_mpi.reproduce.experiment import Claim, check
from reproduction_files import reported_finals, reproduce_small

PNG = b"\x89PNG\r\n\x1a\n"


def test_list_names_every_experiment_with_its_paper_and_figure():
    done = CliRunner().invoke(cli, ["reproduce", "--list"])
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(EXPERIMENTS)
    assert {"freya-fig1", "rennala"} <= set(EXPERIMENTS)
    by_name = dict(zip(EXPERIMENTS, lines))
    assert "seed 001" in by_name["freya-fig1"] and "Figure 1" in by_name["freya-fig1"]
    assert "Figure 3" in by_name["rennala"]


def test_an_unknown_experiment_or_a_used_folder_is_one_line_and_status_2(tmp_path):
    done = CliRunner().invoke(cli, ["reproduce", "freya-fig9", "--output", str(tmp_path)])
    assert done.exit_code == 2 and done.stderr.strip().splitlines() == [
        f"asyncopt: error: reproduce: no experiment 'freya-fig9'; known: {', '.join(EXPERIMENTS)} "
        "(asyncopt reproduce --list)"]
    (tmp_path / "rennala").mkdir()
    (tmp_path / "rennala" / "notes.txt").write_text("an earlier reproduction")
    done = CliRunner().invoke(cli, ["reproduce", "rennala", "--output", str(tmp_path)])
    assert done.exit_code == 2 and "already exists; --overwrite replaces" in done.stderr
    assert sorted(p.name for p in (tmp_path / "rennala").iterdir()) == ["notes.txt"]  # nothing ran


def test_the_verdict_rule_counts_seeds_and_medians():
    before = Claim("quote", "source", "before", "a", "b")
    assert check(before, [1, 2, 3, 4, 5], [2, 3, 4, 5, 6]).verdict == "reproduced"
    assert check(before, [1, 2, 3, 9, 9], [2, 3, 4, 5, 6]).verdict == "partly"  # medians yes, 3 of 5 seeds
    assert check(before, [math.inf] * 5, [2, 3, 4, 5, 6]).verdict == "not reproduced"  # never is later
    below = Claim("quote", "source", "below", "a", "b", factor=100.0)
    assert check(below, [1e-8, 1e-8, 1e-8], [1e-5, 1e-5, 1e-5]).verdict == "reproduced"
    assert check(below, [math.inf, 1e-8, 1e-8], [1e-5, 1e-9, 1e-5]).verdict == "partly"  # a diverged seed fails
    assert check(below, [1e-6, 1e-6, 1e-6], [1e-5, 1e-5, 1e-5]).verdict == "not reproduced"
    above = Claim("92.66 vs 92.60", "source", "above", "a", "b", metric="test_accuracy", window=0.2)
    assert check(above, [0.93, 0.93, 0.93], [0.92, 0.93, 0.91]).verdict == "reproduced"
    assert check(above, [-math.inf, 0.93, 0.93], [0.92, 0.92, 0.92]).verdict == "partly"  # diverged is never above
    assert check(above, [0.90, 0.90, 0.93], [0.92, 0.92, 0.92]).verdict == "not reproduced"
    steadier = Claim("1.01e-7 vs 5.85e-7", "source", "steadier", "a", "b", metric="test_accuracy", window=0.2)
    assert check(steadier, [1e-7, 2e-7, 1e-7], [5e-7, 6e-7, 5e-7]).verdict == "reproduced"
    assert check(steadier, [1e-7, 2e-7, math.inf], [5e-7, 6e-7, 5e-7]).verdict == "partly"  # medians, 2 of 3 seeds
    with pytest.raises(ValueError, match="claim kind 'faster'"):
        Claim("quote", "source", "faster", "a", "b")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_freya_fig1_small_scale_report_figures_csv_and_variance_reduction_orders_of_magnitude(tmp_path):
    folder, rows = reproduce_small("freya-fig1", tmp_path)
    for panel in ("n-1000", "n-10000"):
        assert (folder / f"figure-{panel}.png").read_bytes().startswith(PNG)
        finals = {method: reported_finals(rows, panel, method)
                  for method in ("freya_page", "soviet_page", "rennala_sgd", "async_sgd")}
        assert all(len(values) == 2 for values in finals.values()), finals
        for reduced in ("freya_page", "soviet_page"):  # no noise floor against the SGD methods' floors
            for sgd in ("rennala_sgd", "async_sgd"):
                assert statistics.median(finals[reduced]) * 100 <= statistics.median(finals[sgd]), (panel, finals)
    seeds = {row["seed"] for row in rows if "/tuning/" not in row["file"]}
    tuning = {row["seed"] for row in rows if "/tuning/" in row["file"]}
    assert seeds == {"0", "1"} and tuning and all(int(seed) >= 1000 for seed in tuning)
    report = (folder / "REPORT.md").read_text()
    assert "| problem.samples | 16 | 10000 |" in report and "config_async.py" in report  # setting with sources
    assert "Verdict rule: reproduced:" in report
    for claim in ("freya_page reaches f - f* <= 1e-06 before soviet_page",
                  "freya_page ends at least 100 times below async_sgd",
                  "freya_page ends at least 100 times below rennala_sgd"):
        assert report.count(claim) >= 2  # one row per panel with its verdict
    verdicts = [line.rsplit("**", 2)[-2] for line in report.splitlines() if line.startswith("| ") and "**" in line]
    assert len(verdicts) == 8 and set(verdicts) <= {"reproduced", "partly", "not reproduced"}
    assert report.count("freya_page reaches f - f* <= 1e-06 before synthesis") >= 2  # the SYNTHESIS baseline


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rennala_small_scale_is_ahead_of_minibatch_sgd(tmp_path):
    folder, rows = reproduce_small("rennala", tmp_path)
    assert (folder / "figure-n-10000.png").read_bytes().startswith(PNG)
    assert all(len(reported_finals(rows, "n-10000", method)) == 2
               for method in ("rennala_sgd", "async_sgd", "minibatch_sgd", "hero_sgd"))
    assert statistics.median(reported_finals(rows, "n-10000", "rennala_sgd")) < statistics.median(
        reported_finals(rows, "n-10000", "minibatch_sgd"))
    report = (folder / "REPORT.md").read_text()
    minibatch = [line for line in report.splitlines() if line.startswith("| 1. rennala_sgd reaches f - f* <= 0.01 "
                                                                          "before minibatch_sgd")]
    assert len(minibatch) == 1 and minibatch[0].endswith("| **reproduced** |"), minibatch


def test_a_link_in_place_of_the_report_is_refused_before_anything_runs(tmp_path):
    scratch = tmp_path / "scratch.md"
    scratch.write_text("kept")
    (tmp_path / "out" / "rennala").mkdir(parents=True)
    (tmp_path / "out" / "rennala" / "REPORT.md").symlink_to(scratch)
    done = CliRunner().invoke(cli, ["reproduce", "rennala", "--overwrite", "--output", str(tmp_path / "out")])
    assert done.exit_code == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "REPORT.md" in done.stderr and "symbolic link" in done.stderr
    assert scratch.read_text() == "kept" and not (tmp_path / "out" / "rennala" / "runs").exists()


def test_every_experiments_runs_are_valid_configs_at_both_scales(tmp_path, monkeypatch):
    """Each panel x method of every experiment, at the small and the paper scale, is a config `asyncopt run`
    accepts (paper-scale MNIST read from a tiny stand-in under $ASYNCOPT_DATA); nothing runs."""
    import numpy as np

    from asyncopt_mpi.validate import load_config
    from asyncopt_mpi.problems.data import save_idx
    from asyncopt_mpi.reproduce import get

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for prefix in ("train", "t10k"):
        save_idx(str(mnist / f"{prefix}-images-idx3-ubyte"), np.zeros((20, 28, 28), dtype=np.uint8))
        save_idx(str(mnist / f"{prefix}-labels-idx1-ubyte"), (np.arange(20) % 10).astype(np.uint8))
    monkeypatch.setenv("ASYNCOPT_DATA", str(tmp_path))
    checked = 0
    for name in EXPERIMENTS:
        experiment = get(name)
        for scale in ("small", "paper"):
            for panel in experiment.panels:
                for method in experiment.methods:
                    load_config(None, [f"method.name={method.name}", *experiment.overrides(panel, method, scale)],
                                backend="sim", require_stop=True)
                    checked += 1
    assert checked >= 100


def test_a_paper_grid_is_the_first_grid_at_the_paper_scale_only():
    """A method whose paper-scale best lies far from the small scale's grid starts there at the paper scale (so its
    tuning brackets it within the extensions), and the report names the grid that scale started from."""
    from asyncopt_mpi.reproduce import get
    from asyncopt_mpi.reproduce.driver import _grid_note
    from asyncopt_mpi.reproduce.experiment import MethodSpec

    spec = MethodSpec("amelie_sgd", (8.0, 16.0), paper_grid=(256.0, 512.0))
    assert spec.first_grid("small") == (8.0, 16.0) and spec.first_grid("paper") == (256.0, 512.0)
    assert MethodSpec("async_sgd", (1.0, 2.0)).first_grid("paper") == (1.0, 2.0)
    assert _grid_note(spec, "paper") == "first grid of method.lr: 256, 512"
    assert _grid_note(spec, "small") == "first grid of method.lr: 8, 16"
    amelie = next(method for method in get("decentralized").methods if method.name == "amelie_sgd")
    assert amelie.first_grid("paper")[0] < 512 < amelie.first_grid("paper")[-1]  # the first paper run's edge, inside
