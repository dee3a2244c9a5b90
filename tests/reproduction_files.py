"""Reading what `asyncopt reproduce` wrote: the reported runs' final values from runs.csv, the verdicts of REPORT.md."""

from __future__ import annotations


def reported_finals(rows: list[dict[str, str]], panel: str, method: str, metric: str = "suboptimality") -> list[float]:
    """Final value of the reported runs (not the tuning ones) of one method in one panel."""
    return [float(row[metric]) for row in rows
            if f"/runs/{panel}/{method}/" in row["file"] and "/tuning/" not in row["file"]]


def verdicts_by_panel(report: str, claim: str) -> dict[str, str]:
    """panel -> verdict of the rows of one claim in REPORT.md's table."""
    rows = [line.split(" | ") for line in report.splitlines() if line.startswith(f"| {claim}")]
    return {cells[1]: cells[-1].strip("*| ") for cells in rows}
