"""The command line: summary (table, CSV, JSON, per worker, sort), sweep, progress, methods, job configs."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.methods import method_table_markdown
from asyncopt_mpi.problems.data import save_idx

from conftest import read, run_cli, simulate

ROOT = Path(__file__).resolve().parents[1]
BASE = ["problem.name=quadratic", "problem.dim=10", "problem.noise=0.01", "workers.n=3", "workers.compute=sqrt",
        "stop.time=2", "stop.target=0.05"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("summary")
    return [str(simulate(folder, method, BASE + [f"method.lr={lr}"], method))
            for method, lr in (("async_sgd", 0.3), ("rennala_sgd", 0.5), ("minibatch_sgd", 0.5))]


def test_csv_and_json_round_trip_the_table(files):
    shown = run_cli(["summary", *files, "--csv"])
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    as_json = json.loads(run_cli(["summary", *files, "--json"]).stdout)
    assert [row["method"] for row in rows] == [row["method"] for row in as_json] == [
        "async_sgd", "rennala_sgd", "minibatch_sgd"]
    for row, item in zip(rows, as_json):
        assert int(row["updates"]) == item["updates"] and int(row["gradients"]) == item["gradients"]
        assert math.isclose(float(row["loss"]), item["loss"], rel_tol=1e-12)
        # What the file says, not a copy of the table: updates equal the trace's last iteration.
        assert item["updates"] == int(read(item["file"], "trace/iteration")["trace/iteration"][-1])


def test_sort_by_time_to_target_puts_runs_that_never_reached_it_last(files):
    rows = json.loads(run_cli(["summary", *files, "--json", "--sort", "time_to_target"]).stdout)
    times = [row["time_to_target"] for row in rows]
    reached = [time for time in times if time is not None]
    assert reached == sorted(reached) and times[: len(reached)] == reached
    bad = run_cli(["summary", *files, "--sort", "speed"])
    assert bad.returncode == 2 and "speed" in bad.stderr and "time_to_target" in bad.stderr


def test_per_worker_breakdown(files):
    rows = json.loads(run_cli(["summary", files[1], "--workers", "--json"]).stdout)
    assert [row["worker"] for row in rows] == [0, 1, 2]
    jobs = read(files[1], "workers/jobs")["workers/jobs"]
    assert [row["jobs"] for row in rows] == jobs.tolist()
    assert all(0 <= row["accepted_share"] <= 1 for row in rows)
    assert rows[0]["accepted_share"] > rows[2]["accepted_share"]  # Rennala drops the slow worker's stale gradients
    assert all(row["idle_time"] >= 0 for row in rows)
    table = run_cli(["summary", files[1], "--workers"]).stdout
    assert "busy_time" in table and "accepted_share" in table


def test_sweep_runs_the_product_and_plot_picks_the_best_per_method(tmp_path):
    out = tmp_path / "sweep"
    done = run_cli(["sweep", "--out", str(out), "--grid", "method.name=async_sgd,rennala_sgd",
                    "--grid", "method.lr=0.1,0.4", "--seeds", "2", *[item for o in BASE for item in ("--set", o)]])
    assert done.returncode == 0, done.stderr
    names = sorted(path.name for path in out.glob("*.h5"))
    assert len(names) == 8 and "rennala_sgd-lr=0.4-seed1.h5" in names
    info = read(out / "async_sgd-lr=0.1-seed1.h5", "workers/jobs")
    assert info["workers/jobs"].sum() > 0
    figure = tmp_path / "best.png"
    plotted = run_cli(["plot", str(out), "-o", str(figure)])
    assert plotted.returncode == 0 and "(4 runs," in plotted.stdout  # one lr per method, two seeds each


def test_progress_lines_off_a_terminal_and_quiet(tmp_path, monkeypatch):
    args = ["run", "--backend", "sim", "--output", str(tmp_path / "p.h5"), "--set", "problem.dim=200",
            "--set", "workers.n=200", "--set", "workers.compute=sqrt", "--set", "stop.time=40", "--set", "method.lr=0.001"]
    monkeypatch.setenv("ASYNCOPT_PROGRESS_SECONDS", "0.2")  # read when the run starts: the forked command sees it
    done = run_cli(args, timeout=300)  # stderr is a file, not a terminal
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "updates" in line and "gradients" in line]
    shape = r"[\d.]+ of 40 virtual s, \d+% of stop\.time done.*, \d+ updates, \d+ gradients \([\d.e+]+/virtual s\)"
    assert lines and all(re.search(shape, line) for line in lines)
    quiet = run_cli([*args, "--quiet", "--overwrite"], timeout=300)
    assert quiet.returncode == 0 and "updates" not in quiet.stderr


def test_readme_method_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("<!-- methods:begin"):readme.index("<!-- methods:end")]
    assert table.split("\n", 1)[1].strip() == method_table_markdown()
    listed = run_cli(["methods"]).stdout
    for name in ("freya_page", "shadowheart_sgd", "rennala_sgd", "malenia_sgd", "qsgd"):
        assert name in listed


@pytest.mark.parametrize("config", sorted((ROOT / "jobs").glob("*.toml")), ids=lambda path: path.name)
def test_every_job_config_is_valid(config, tmp_path):
    overrides = []
    if "mnist" in config.name:  # it names data the user supplies: give it a tiny MNIST-format file
        images = tmp_path / "train-images-idx3-ubyte"
        import numpy as np

        save_idx(str(images), np.zeros((20, 4, 4), dtype=np.uint8))
        save_idx(str(tmp_path / "train-labels-idx1-ubyte"), (np.arange(20) % 10).astype(np.uint8))
        overrides = [f"problem.data={images}"]
    loaded = load_config(str(config), overrides, backend="sim")
    assert loaded.stop.time and loaded.output.path


@pytest.mark.mpi
def test_sweep_over_mpi_launches_each_run(tmp_path):
    out = tmp_path / "mpi-sweep"
    done = run_cli(["sweep", "--backend", "mpi", "--ranks", "2", "--out", str(out), "--grid", "method.lr=0.1,0.3",
                    *[item for o in BASE if not o.startswith("workers.n") for item in ("--set", o)],
                    "--set", "stop.iterations=20"], timeout=180)  # 20 updates, not 2 wall seconds, per run
    assert done.returncode == 0, done.stderr
    for lr in ("0.1", "0.3"):
        path = out / f"async_sgd-lr={lr}.h5"
        assert read(path, "workers/jobs")["workers/jobs"].size == 1  # 2 ranks: 1 worker
