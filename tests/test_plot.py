"""`asyncopt plot`: every axis kind renders a PNG of the requested size; lines are configurations (all but seeds),
named by what differs; seeds become a median and an interquartile band; diverged runs are left out with a note."""

from __future__ import annotations

import os
import struct

import h5py
import numpy as np
import pytest

from asyncopt_mpi.plot import best_per_method, load_curves, run_label

from conftest import run_cli, simulate

BASE = ["problem.name=logistic", "problem.samples=200", "problem.dim=5", "workers.n=3", "workers.compute=sqrt",
        "stop.time=2", "output.snapshot_every=0.2"]


def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for seed in (0, 1, 2):
        paths.append(simulate(folder, "async_sgd", BASE + ["method.lr=1.0", f"workers.seed={seed}"], f"async-{seed}"))
    for lr in (0.5, 2.0):
        paths.append(simulate(folder, "rennala_sgd", BASE + [f"method.lr={lr}", "method.batch=3"], f"rennala-{lr}"))
    return folder, [str(path) for path in paths]


# Each x kind and each y kind once: the x axis picks the metrics' column, the y axis the metric, independently.
@pytest.mark.parametrize("x_axis, y_axis", [("time", "suboptimality"), ("grads", "loss"), ("bytes", "grad_norm_sq"),
                                            ("iteration", "accuracy")])
def test_every_axis_kind_renders_a_png(runs, tmp_path, x_axis, y_axis):
    _, paths = runs
    output = tmp_path / f"{x_axis}-{y_axis}.png"
    done = run_cli(["plot", *paths, "-o", str(output), "--x", x_axis, "--y", y_axis, "--title", "t"])
    assert done.returncode == 0, done.stderr
    width, height = png_size(output)
    assert (width, height) == (768, 504)  # 6.4 x 4.2 inches at 120 dpi
    assert output.stat().st_size > 10_000


def test_a_folder_and_pdf_output(runs, tmp_path):
    folder, _ = runs
    output = tmp_path / "all.pdf"
    done = run_cli(["plot", str(folder), "-o", str(output), "--logx"])
    assert done.returncode == 0, done.stderr
    assert output.read_bytes()[:5] == b"%PDF-"


def test_labels_name_the_method_and_its_parameters(runs):
    _, paths = runs
    curves = load_curves(paths, "time", "loss")
    labels = {curve.label for curve in curves}
    assert labels == {"async_sgd (lr=1)", "rennala_sgd (lr=0.5, batch=3)", "rennala_sgd (lr=2, batch=3)"}
    assert run_label({"method": {"name": "async_sgd", "lr": 0.1, "assign": "random"}}) == "async_sgd (lr=0.1, assign=random)"


def test_best_per_method_keeps_one_configuration_per_method(runs):
    _, paths = runs
    chosen = best_per_method(paths, "loss")
    rennala = [path for path in chosen if "rennala" in path]
    assert len(rennala) == 1 and len([path for path in chosen if "async" in path]) == 3  # seeds stay together


def test_unknown_axis_is_a_clear_error(runs, tmp_path):
    _, paths = runs
    done = run_cli(["plot", paths[0], "-o", str(tmp_path / "x.png"), "--y", "speed"])
    assert done.returncode == 2 and "--y 'speed'" in done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_plot_that_cannot_be_written_is_an_error_not_wrote(runs):
    # /dev/full fails every write as a full disk does; savefig into that path dropped the error
    _, paths = runs
    done = run_cli(["plot", paths[0], "-o", "/dev/full"])
    assert done.returncode == 2 and "wrote" not in done.stdout
    assert done.stderr.strip() == "asyncopt: error: -o /dev/full: cannot write it (No space left on device)"


def read_csv(path) -> list[dict]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.mpi
def test_an_mpi_run_and_a_sim_run_are_two_lines_named_by_backend(tmp_path):
    from conftest import run_mpi

    common = ["--set", "problem.dim=10", "--set", "method.lr=0.5", "--set", "workers.compute_scale=0.002",
              "--set", "stop.iterations=40", "--set", "stop.time=60", "--set", "output.snapshot_every=0.02"]
    mpi_path, sim_path = tmp_path / "mpi.h5", tmp_path / "sim.h5"
    done = run_mpi(3, ["run", "--output", str(mpi_path)] + common, timeout=120)  # a count ends it, not the wall clock
    assert done.returncode == 0, done.stderr
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=2", "--output", str(sim_path)] + common)
    assert done.returncode == 0, done.stderr
    figure, table = tmp_path / "both.png", tmp_path / "both.csv"
    done = run_cli(["plot", str(mpi_path), str(sim_path), "-o", str(figure), "--export", str(table)])
    assert done.returncode == 0, done.stderr
    rows = read_csv(table)
    labels = sorted({row["label"] for row in rows})
    assert labels == ["async_sgd (mpi)", "async_sgd (sim)"]
    assert all(row["runs"] == "1" for row in rows)
    assert "2 lines" in done.stdout


def test_runs_on_two_data_sets_are_two_lines_and_seeds_one_band(runs, tmp_path):
    from asyncopt_mpi.plot import plot

    folder, paths = runs
    other = simulate(folder, "async_sgd", BASE + ["method.lr=1.0", "problem.samples=300"], "async-300")
    async_runs = [path for path in paths if "async" in path]
    drawn = plot(async_runs + [str(other)], str(tmp_path / "data.png"), export=str(tmp_path / "data.csv"))
    assert sorted(zip(drawn.labels, drawn.runs)) == [("async_sgd (samples=200)", 3), ("async_sgd (samples=300)", 1)]
    rows = [row for row in read_csv(tmp_path / "data.csv") if row["runs"] == "3"]
    low, median, high = (np.array([float(row[f"suboptimality_{name}"]) for row in rows]) for name in ("q25", "median", "q75"))
    assert np.all(low <= median) and np.all(median <= high) and np.any(low < high)


def test_a_diverged_run_is_left_out_with_a_note(runs, tmp_path):
    _, paths = runs
    bad = simulate(tmp_path, "async_sgd", BASE + ["method.lr=1.0", "workers.seed=9"], "diverged")
    with h5py.File(bad, "r+") as handle:  # make its suboptimality explode after the start
        values = handle["metrics/suboptimality"][()]
        values[len(values) // 2:] = 1e12 * values[0]
        handle["metrics/suboptimality"][...] = values
    table = tmp_path / "d.csv"
    done = run_cli(["plot", *[path for path in paths if "async" in path], str(bad), "-o", str(tmp_path / "d.png"),
                    "--export", str(table)])
    assert done.returncode == 0, done.stderr
    assert "1 of 4 runs diverged, not drawn" in done.stderr
    rows = read_csv(table)
    assert {row["runs"] for row in rows} == {"3"}
    assert max(float(row["suboptimality_q75"]) for row in rows) < 1e6


def test_figure_options(runs, tmp_path):
    _, paths = runs
    output = tmp_path / "small.png"
    done = run_cli(["plot", paths[0], "-o", str(output), "--figsize", "4,3", "--dpi", "50", "--ylim", "1e-6,",
                    "--style", "ggplot"])
    assert done.returncode == 0, done.stderr
    assert png_size(output) == (200, 150)
    for option, value in (("--figsize", "4x3"), ("--ylim", "a,b"), ("--style", "no-such-style")):
        done = run_cli(["plot", paths[0], "-o", str(tmp_path / "x.png"), option, value])
        assert done.returncode == 2 and option in done.stderr and "Traceback" not in done.stderr


def test_lines_of_different_methods_are_named_by_their_own_settings_only(runs):
    from asyncopt_mpi.plot import group_curves, legend_labels

    _, paths = runs
    labels = sorted(legend_labels(group_curves(load_curves(paths, "time", "loss"))).values())
    assert labels == ["async_sgd (lr=1)", "rennala_sgd (lr=0.5)", "rennala_sgd (lr=2)"]
