"""Running `asyncopt reproduce` at its small scale and reading what it wrote: the reported runs' final values from
runs.csv, the verdicts of REPORT.md."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from asyncopt_mpi.cli import cli


def reported_finals(rows: list[dict[str, str]], panel: str, method: str, metric: str = "suboptimality") -> list[float]:
    """Final value of the reported runs (not the tuning ones) of one method in one panel."""
    return [float(row[metric]) for row in rows
            if f"/runs/{panel}/{method}/" in row["file"] and "/tuning/" not in row["file"]]


def verdicts_by_panel(report: str, claim: str) -> dict[str, str]:
    """panel -> verdict of the rows of one claim in REPORT.md's table."""
    rows = [line.split(" | ") for line in report.splitlines() if line.startswith(f"| {claim}")]
    return {cells[1]: cells[-1].strip("*| ") for cells in rows}


def reproduce_small(name: str, out: Path, seeds: int = 2) -> tuple[Path, list[dict[str, str]]]:
    """`asyncopt reproduce NAME --scale small --seeds SEEDS` into `out`, in this process; its folder and runs.csv's rows.

    One process (the default --processes 1): a pool starts children for every sweep of the tuning, each importing
    the package again, which doubled the CPU of a small reproduction. Two reported seeds: a claim "reproduced"
    holds in every one of them, as with three (80% of the seeds)."""
    done = CliRunner().invoke(cli, ["reproduce", name, "--scale", "small", "--seeds", str(seeds), "--output", str(out)])
    assert done.exit_code == 0, done.stderr
    folder = out / name
    return folder, list(csv.DictReader((folder / "runs.csv").open()))
