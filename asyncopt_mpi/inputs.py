"""Bounded, safe reading of input files, and values cut short for error lines.

Every file a run reads (config, data, compute-time trace, edge list) is opened here first: with
O_NONBLOCK, so that a FIFO never makes the open wait for a writer, then checked with fstat, so
that a FIFO, a device (/dev/zero) or a folder is refused with one line before anything is read.
Files read whole (config, trace, edge list) are read up to a cap. A value from an input that an
error line echoes goes through clip() or shown(), so one line stays one short line.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, BinaryIO

from .errors import ConfigError, UserError
from .memory import human

if TYPE_CHECKING:
    import numpy as np

CONFIG_MAX_BYTES = 10**6  # a config file (TOML); real ones are a few kB
TABLE_MAX_BYTES = 16 * 10**6  # a compute-time trace (CSV or .npy) or a graph's edge file
ECHO_LIMIT = 200  # characters of a value an error line shows


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """text cut to `limit` characters, with "..." when it was longer."""
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """repr(value) for an error line, at most `limit` characters (and "...")."""
    if isinstance(value, (str, bytes)):
        value = value[: limit + 1]  # never the repr of a whole long token
    return clip(repr(value), limit)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "a special file"


def open_input(path: str, what: str, error: type[UserError] = ConfigError) -> BinaryIO:
    """`path` opened for binary reading if it is a regular file; else `error` with one line.

    `what` names the input in the line, e.g. "config file" or "workers.compute_trace: trace file".
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{what} not found: {clip(path)}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise error(f"{what} {clip(path)}: cannot read: {reason}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} {clip(path)}: is {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_input(path: str, what: str, error: type[UserError] = ConfigError) -> None:
    """Refuse (`error`, one line) a path that is missing, unreadable or not a regular file, reading nothing."""
    open_input(path, what, error).close()


def read_input(path: str, what: str, limit: int, error: type[UserError] = ConfigError) -> bytes:
    """The whole of a regular file of at most `limit` bytes; `error` with one line otherwise."""
    with open_input(path, what, error) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > limit else handle.read(limit + 1)  # + 1: a file that grew is seen
        except OSError as exc:
            raise error(f"{what} {clip(path)}: cannot read: {exc.strerror}") from None
    if size > limit or len(data) > limit:
        found = human(size) if size > limit else f"more than {human(limit)}"
        raise error(f"{what} {clip(path)}: {found}, larger than the {human(limit)} accepted; is it the right file?")
    return data


def npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype an .npy stream's header declares, read without its data (ValueError if it is not .npy)."""
    from numpy.lib import format as npy

    version = npy.read_magic(stream)
    # Format 3.0 differs from 2.0 only by a UTF-8 header, which numpy has no public reader for.
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _, dtype = read(stream)
    return tuple(shape), dtype
