"""Log levels of the `asyncopt` command: one logger, lines on stderr, rank 0 speaks for a run.

`--log-level debug|info|warning|error` (default info), `--verbose` (debug) and `--quiet`
(warning, and no progress line). Under MPI, ranks other than 0 show warnings and errors only,
so a line about the data or the run appears once (rank from the launcher's environment, read
without initialising MPI).
"""

from __future__ import annotations

import logging
import os
import sys

LEVELS = ("debug", "info", "warning", "error")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
log = logging.getLogger("asyncopt")


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        kind = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"asyncopt: {kind}{record.getMessage()}"


def launcher_rank() -> int:
    """This process's MPI rank as the launcher's environment gives it (0 outside mpiexec)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def level_of(log_level: str | None = None, verbose: bool = False, quiet: bool = False) -> int:
    """The level the options ask for; --log-level wins over --verbose / --quiet."""
    if log_level is not None:
        name = log_level.lower()
        if name not in LEVELS:
            from .errors import UserError

            raise UserError(f"--log-level {log_level!r} is not accepted; accepted: {', '.join(LEVELS)}")
        return getattr(logging, name.upper())
    if verbose:
        return logging.DEBUG
    return logging.WARNING if quiet else logging.INFO


def configure(level: int = logging.INFO, stream=None) -> None:
    """Send the asyncopt logger's lines to stderr at `level` (at least warning on ranks other than 0)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Format())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(level if launcher_rank() == 0 else max(level, logging.WARNING))
