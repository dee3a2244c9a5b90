"""ASYNCOPT_TEST_FULL=1 (`make test-full`): the long tests at their full counts instead of `make test`'s smaller ones.

`make test` runs every fault, mutation and argument kind of the long tests, a few times each; the
full counts (many random repetitions, a fresh process per command) find rarer problems and stay
one variable away.
"""

from __future__ import annotations

import os

FULL = os.environ.get("ASYNCOPT_TEST_FULL", "") not in ("", "0")


def count(variable: str, quick: int, full: int) -> int:
    """`variable` if set, else the full count under ASYNCOPT_TEST_FULL and the quick one otherwise."""
    return int(os.environ.get(variable, full if FULL else quick))
