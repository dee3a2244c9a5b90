"""Registry of methods by their public name (see `asyncopt methods`)."""

from __future__ import annotations

from .base import Job, JobKind, Method, Result, Server

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available under `cls.name`."""
    METHODS[cls.name] = cls
    return cls


# Importing the modules registers their methods.
from . import (  # noqa: E402,F401
    accelerated_rennala_sgd,
    async_sgd,
    compressed,
    decentralized,
    frank_wolfe,
    freya_sgd,
    hero_sgd,
    malenia_sgd,
    minibatch_sgd,
    page,
    rennala_sgd,
    ringmaster_asgd,
)



def _defaults(cls: type[Method]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in cls.params.items()) or "-"


def method_lines() -> list[str]:
    """`asyncopt methods`: every method, what it does, its own parameters with defaults, its source."""
    lines = []
    for name in sorted(METHODS):
        cls = METHODS[name]
        lines.append(f"{name:<26} {cls.description}")
        lines.append(f"{'':<26} parameters: lr, batch{', ' + _defaults(cls) if cls.params else ''}; source: {cls.paper}")
    return lines


def method_table_markdown() -> str:
    """The same as a Markdown table (README's method table is this text)."""
    rows = ["| method | what it does | own parameters (defaults) | source |", "|---|---|---|---|"]
    for name in sorted(METHODS):
        cls = METHODS[name]
        rows.append(f"| `{name}` | {cls.description} | {_defaults(cls)} | {cls.paper} |")
    return "\n".join(rows)


__all__ = ["METHODS", "Job", "JobKind", "Method", "Result", "Server", "method_lines", "method_table_markdown", "register"]
