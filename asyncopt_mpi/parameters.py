"""A run's parameters as flat `section.key` columns, and which of them differ among runs (tidy tables).

`asyncopt summary --csv/--json` and `asyncopt_mpi.load_many` put one column per config key
that differs among the runs they show (every key with `all_keys`), so a sweep's step size,
worker count or seed is a column, not a part of a file name.
"""

from __future__ import annotations

import json
from typing import Any

SKIPPED = ("output.path", "plugins.plugins")  # where the file went and what was imported: not a parameter


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """`{"method": {"lr": 0.1}}` as `{"method.lr": 0.1}` (sections of a stored config, in order)."""
    flat = {}
    for section, values in config.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in SKIPPED:
                flat[name] = value
    return flat


def _comparable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def parameter_columns(runs: list[dict[str, Any]], all_keys: bool = False) -> list[str]:
    """The keys (in first-seen order) whose values differ among `runs` (flat configs), or every key."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run))
    if all_keys:
        return list(names)
    missing = object()
    return [name for name in names
            if len({_comparable(run.get(name, missing)) if name in run else "<absent>" for run in runs}) > 1]


def cell(value: Any) -> Any:
    """A parameter as a table cell: numbers and strings as they are, lists and tables as JSON text."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else json.dumps(value)
