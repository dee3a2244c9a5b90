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
    freya_sgd,
    hero_sgd,
    malenia_sgd,
    minibatch_sgd,
    page,
    rennala_sgd,
    ringmaster_asgd,
)

__all__ = ["METHODS", "Job", "JobKind", "Method", "Result", "Server", "register"]
