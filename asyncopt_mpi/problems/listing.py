"""`asyncopt problems`: the problems a config can name, with their own keys, defaults and a description."""

from __future__ import annotations

import dataclasses

from ..config import ProblemConfig
from . import ORIGINS, PROBLEMS

_is_built_in = PROBLEMS.is_built_in


def _own_keys(name: str) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in PROBLEMS[name].params.items()) or "-"


def common_keys() -> str:
    """The [problem] keys every problem takes, with their defaults (ProblemConfig's fields)."""
    return ", ".join(f"{field.name}={field.default!r}" for field in dataclasses.fields(ProblemConfig)
                     if field.name not in ("name", "params"))


def problem_lines() -> list[str]:
    """Every problem (built-ins first; plugin problems marked with where they came from) and its own keys."""
    lines = []
    for name in sorted(PROBLEMS, key=lambda name: (not _is_built_in(name), name)):
        mark = "" if _is_built_in(name) else f"[{ORIGINS[name]}] "
        lines.append(f"{name:<20} {mark}{PROBLEMS[name].description}")
        lines.append(f"{'':<20} own keys: {_own_keys(name)}")
    return lines + ["", f"keys of every problem: {common_keys()}"]


def problem_table_markdown() -> str:
    """The built-in problems as a Markdown table."""
    rows = ["| problem | what it is | own keys (defaults) |", "|---|---|---|"]
    for name in sorted(name for name in PROBLEMS if _is_built_in(name)):
        rows.append(f"| `{name}` | {PROBLEMS[name].description} | {_own_keys(name)} |")
    return "\n".join(rows + ["", f"Keys of every problem (defaults): {common_keys()}."])
