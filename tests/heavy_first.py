"""Under pytest-xdist, the test files most likely to be long are handed out first, so no worker ends alone on one.

`make test` runs the suite with `--dist loadfile`: each file goes whole to one worker, in collection
order. A long file handed out last keeps one worker busy while the others wait. A file's likely cost
is read from its tests' markers (slow > mpi > process > in-process); the order inside a file stays.
Without xdist (a worker sets PYTEST_XDIST_WORKER) the order is left as collected.
"""

from __future__ import annotations

import os

import pytest

# Rough CPU-seconds of a test by its markers, measured on this suite: only the order they give matters.
WEIGHTS = (("slow", 10.0), ("mpi", 3.0), ("process", 1.0))
IN_PROCESS = 0.05


def _weight(item: pytest.Item) -> float:
    return next((weight for marker, weight in WEIGHTS if item.get_closest_marker(marker)), IN_PROCESS)


def heavy_files_first(items: list[pytest.Item]) -> None:
    """Reorder `items` in place: files by their summed weights, heaviest first (xdist workers only)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    cost: dict[str, float] = {}
    for item in items:
        cost[item.nodeid.split("::")[0]] = cost.get(item.nodeid.split("::")[0], 0.0) + _weight(item)
    items.sort(key=lambda item: -cost[item.nodeid.split("::")[0]])  # a stable sort: a file's own order stays
