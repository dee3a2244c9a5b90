"""Log levels of the `asyncopt` command: one logger, lines on stderr, rank 0 speaks for a run.

The package writes through the "asyncopt" logger and installs no handler itself: a program using
the Python API silences or redirects its lines with the logging module. The command installs one
(`configure`) that prints `asyncopt: ...` lines: on stderr, but for the closing line of a run that
went well, on stdout. Closing lines ("completed (...)", "stopped before the run started (...)") come
through the "asyncopt.outcome" logger, which the command shows at every level, --quiet too: they
say what the exit status means.

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
# How a run ended, one line: info for a run that went well, warning for one that diverged or was stopped
# before it started (its errors go to `log`).
outcome = logging.getLogger("asyncopt.outcome")


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        plain = record.levelno == logging.INFO or record.name == outcome.name  # a closing line names its status
        kind = "" if plain else f"{record.levelname.lower()}: "
        return f"asyncopt: {kind}{record.getMessage()}"


class _Lines(logging.Handler):
    """Each line on stderr, but a closing line of a run that went well on stdout (the streams of the
    moment: a caller that replaced sys.stdout or sys.stderr gets the lines there)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            good_end = record.name == outcome.name and record.levelno == logging.INFO
            stream = sys.stdout if good_end else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


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


def configure(level: int = logging.INFO) -> None:
    """Print the asyncopt logger's lines at `level` (at least warning on ranks other than 0), and
    every closing line of a run."""
    handler = _Lines()
    handler.setFormatter(_Format())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(level if launcher_rank() == 0 else max(level, logging.WARNING))
    outcome.setLevel(logging.INFO)
