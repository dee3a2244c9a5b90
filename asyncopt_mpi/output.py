"""Checks on a results file's path before anything is created, and the staging name a run writes to.

A run never truncates an existing file: it writes PATH.partial and moves it to PATH once it
has started cleanly (os.link for a new path, so a file that appeared meanwhile is not
replaced; os.replace with --overwrite or --resume). A run that fails while it is set up
leaves PATH as it was. Before anything is written, the places of its side files are checked
(side_files.py) and neither PATH nor a side file may be one of the files the run reads.
"""

from __future__ import annotations

import errno
import os

from . import side_files
from .errors import UserError
from .inputs import shown
from .side_files import STAGING_SUFFIX

FIRST_FLUSH_BYTES = 512 * 1024  # metadata and the first chunk of every column table
MAX_PATH = 4096


def staging_path(path: str) -> str:
    return path + STAGING_SUFFIX


def first_flush_bytes(dim: int) -> int:
    """About what the first flush of a run with points of size `dim` allocates."""
    rows_per_chunk = max(1, min(64, (1 << 20) // (8 * max(dim, 1))))
    return FIRST_FLUSH_BYTES + 2 * rows_per_chunk * max(dim, 1) * 8


def _existing_parent(path: str) -> str:
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return parent


def check_output_path(path: str, *, overwrite: bool = False, inputs: tuple[str, ...] = (), dim: int = 1,
                      resume: bool = False) -> None:
    """Refuse a results path that is a directory, a special file, an input, existing (without
    --overwrite), too long, not UTF-8, under a non-directory or unwritable parent, or on a too full
    disk; and refuse a side file place (side_files.py) holding a link or anything not plainly ours."""
    where = f"output path {shown(path)}" if not resume else f"--resume {shown(path)}"
    if not path:
        raise UserError("output path: empty; give --output FILE.h5")
    if len(os.path.abspath(path)) >= MAX_PATH or any(len(part) > 255 for part in path.split(os.sep)):
        raise UserError(f"{where[:80]}...: too long (at most {MAX_PATH} characters, 255 a name)")
    if not resume:
        try:  # the results file records its own name as text
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"{where}: not a UTF-8 name; choose a name of UTF-8 characters") from None
    try:
        exists = os.path.lexists(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None
    side_files.check_all(path)
    refuse_inputs(path, inputs, where)
    if exists:
        if os.path.isdir(path):
            raise UserError(f"{where}: is a directory; give a file name, e.g. {shown(os.path.join(path, 'run.h5'))}")
        if not os.path.isfile(path):
            raise UserError(f"{where}: is not a regular file (a device or pipe); give a file name")
        if not overwrite and not resume:
            raise UserError(f"{where}: exists; pass --overwrite to replace it, or choose another --output")
    elif resume:
        raise UserError(f"--resume: results file not found: {shown(path)}")
    parent = _existing_parent(path)
    if not os.path.isdir(parent):
        raise UserError(f"{where}: {shown(parent)} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{where}: cannot write in {shown(parent)} (permission denied)")
    needed = first_flush_bytes(dim) * (2 if resume else 1)
    free = free_bytes(parent)
    if free is not None and free < needed:
        raise UserError(
            f"{where}: not enough free space in {shown(parent)}: {free / 1e6:.2f} MB free, "
            f"the run needs at least {needed / 1e6:.2f} MB"
        )


def refuse_inputs(path: str, inputs: tuple[str, ...], where: str = "") -> None:
    """Refuse results file `path` when it, or one of its side files, is one of the files the run reads
    (the same file by device and inode: also through a link), whether or not it may be replaced."""
    where = where or f"output path {shown(path)}"
    for place in (path, *side_files.places(path)):
        if not _is_file(place):
            continue
        for source in inputs:
            if source and _is_file(source) and os.path.samefile(source, place):
                whose = "" if place == path else f"its side file {shown(place)} "
                raise UserError(f"{where}: {whose}is an input of this run ({shown(source)}); "
                                f"choose another results file")


def _is_file(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


def lock_output(path: str, *, overwrite: bool, inputs: tuple[str, ...] = (), dim: int = 1):
    """Check `path` (check_output_path), take its lock, then refuse it if it exists without `overwrite`
    (after the lock, so a file a live run writes is refused naming that run). Returns the lock."""
    from .locks import ResultsLock

    check_output_path(path, overwrite=True, inputs=inputs, dim=dim)
    lock = ResultsLock.acquire(path)
    if not overwrite and os.path.lexists(path):
        lock.release()
        raise UserError(f"output path {shown(path)}: exists; pass --overwrite to replace it, "
                        f"or choose another --output")
    return lock


def free_bytes(directory: str) -> int | None:
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def make_parent(path: str) -> None:
    directory = os.path.dirname(path)
    if not directory:
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except (OSError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UserError(f"output path {shown(path)}: cannot create its folder: {reason}") from None


def publish(staged: str, path: str, replace: bool) -> None:
    """Move the staged file to its name: never over an existing file unless `replace`."""
    if replace:
        os.replace(staged, path)
        return
    try:
        os.link(staged, path)
    except FileExistsError:
        raise UserError(f"output path {shown(path)}: was created by someone else while this run started; "
                        f"the run is in {shown(staged)}") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.exists(path):
            raise UserError(f"output path {shown(path)}: exists; the run is in {shown(staged)}") from None
        os.replace(staged, path)
        return
    os.unlink(staged)
