"""`asyncopt plot`: every axis kind renders a real PNG of the requested size; seeds become a median and a band."""

from __future__ import annotations

import struct

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


@pytest.mark.parametrize("x_axis", ["time", "grads", "bytes", "iteration"])
@pytest.mark.parametrize("y_axis", ["suboptimality", "loss", "grad_norm_sq", "accuracy"])
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
