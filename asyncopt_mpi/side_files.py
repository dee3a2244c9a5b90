"""Files a run creates beside its results file (PATH.lock, .partial, .reserve, .recovering): their
names, and creating, checking and removing them without ever following a link.

A side file is only ever created with O_CREAT|O_EXCL|O_NOFOLLOW, so the run writes a new file of
its own or nothing. What already stands in a side file's place must be a plain file of this
user: a symbolic link, a file with other hard links, a pipe, device or folder, or another user's
file is refused (one line, exit 2) and left as it is; a plain file of ours is a stale left-over of
an earlier run and is removed first (the lock is taken over in locks.py instead).
It imports only the standard library and inputs.py, so the watchdog (runtime/guardian.py) starts fast.
"""

from __future__ import annotations

import os
import shutil
import stat

from .errors import UserError
from .inputs import shown

LOCK_SUFFIX = ".lock"
STAGING_SUFFIX = ".partial"
RESERVE_SUFFIX = ".reserve"
RECOVERING_SUFFIX = ".recovering"
SUFFIXES = (LOCK_SUFFIX, STAGING_SUFFIX, RESERVE_SUFFIX, RECOVERING_SUFFIX)


def places(path: str) -> tuple[str, ...]:
    """Every side file results file `path` may have."""
    return tuple(path + suffix for suffix in SUFFIXES)


def refusal(status: os.stat_result) -> str | None:
    """Why a file with this (l)stat may not serve as a side file, or None for a plain file of ours."""
    if stat.S_ISLNK(status.st_mode):
        return "is a symbolic link"
    if not stat.S_ISREG(status.st_mode):
        return "is not a regular file (a folder, pipe or device)"
    if status.st_nlink > 1:
        return f"has {status.st_nlink - 1} other hard link(s)"
    if status.st_uid != os.geteuid():
        return f"belongs to another user (uid {status.st_uid})"
    return None


def refuse(name: str, why: str) -> UserError:
    return UserError(f"side file {shown(name)} of the results file: {why}; refused, a run never writes "
                     f"through it: remove it, or choose another results file")


def check(name: str) -> None:
    """Refuse (UserError) what stands in side file `name`'s place unless it is a plain file of ours."""
    try:
        status = os.lstat(name)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise refuse(name, f"cannot be examined ({getattr(exc, 'strerror', None) or exc})") from None
    why = refusal(status)
    if why is not None:
        raise refuse(name, why)


def check_all(path: str) -> None:
    """Check every side file place of results file `path` (before anything is written)."""
    for name in places(path):
        check(name)


def clear(name: str) -> None:
    """Make way for a new side file `name`: refuse what is not a plain file of ours, remove a stale one."""
    check(name)
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise refuse(name, f"a stale copy cannot be removed ({exc.strerror})") from None


def create(name: str) -> int:
    """A new, empty side file `name` opened for writing (a stale one of ours is replaced first).

    Raises UserError for what may not be replaced, OSError when the file system refuses (full disk)."""
    clear(name)
    try:
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise refuse(name, "appeared while the run was creating it") from None


def write_text(name: str, text: str) -> None:
    """Write `text` to a new file `name` (a stale one of ours replaced), never through a link in its place.

    Raises UserError for what may not be replaced, OSError when the file system refuses."""
    with os.fdopen(create(name), "w") as handle:
        handle.write(text)


def copy_into(source: str, name: str) -> None:
    """Copy file `source` into a new side file `name` (never through a link in its place)."""
    try:
        with os.fdopen(create(name), "wb") as target, open(source, "rb") as origin:
            shutil.copyfileobj(origin, target, 1 << 20)
    except OSError as exc:
        raise UserError(f"cannot copy {shown(source)} to {shown(name)}: {exc.strerror or exc}") from None


def remove(name: str) -> None:
    """Remove side file `name` if it is a plain file of ours; a link or anything else in its place stays."""
    try:
        if refusal(os.lstat(name)) is None:
            os.unlink(name)
    except (OSError, ValueError):
        pass
