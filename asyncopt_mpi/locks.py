"""One writer per results file: an exclusive lock (PATH.lock) held from validation until the file is closed.

The lock file holds the holder's host, pid and start time; the holder also keeps an flock
on it, so on the same host a lock whose holder died (its flock gone with it) is taken over
safely, and a live holder is named in a one-line refusal. The watchdog inherits the open
lock file, so the lock stays held while it repairs the file of a killed run. A lock left by
a run on another host cannot be checked from here: it is refused, and the message says how
to remove it if that run is gone. The lock file is opened with O_NOFOLLOW and checked with
fstat: a symbolic link, a hard-linked or special file, or another user's file in its place is
refused (side_files.py), never written through.
"""

from __future__ import annotations

import atexit
import datetime
import errno
import fcntl
import os
import socket
from dataclasses import dataclass

from . import side_files
from .errors import RunError, UserError
from .inputs import shown

SUFFIX = side_files.LOCK_SUFFIX
# Locks this process holds, by absolute results path: taking one again is reentrant (counted).
_HELD: dict[str, "ResultsLock"] = {}


class LockedError(UserError):
    """Another live process writes (or repairs) the results file."""


@dataclass
class Holder:
    host: str
    pid: int
    started: str

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.started}"


def lock_path(path: str) -> str:
    return path + SUFFIX


def _parse(text: str) -> Holder | None:
    fields = dict(item.split("=", 1) for item in text.split() if "=" in item)
    try:
        return Holder(fields["host"], int(fields["pid"]), fields.get("started", "?"))
    except (KeyError, ValueError):
        return None


class ResultsLock:
    """The exclusive right to write results file `path`; `release` (or process death) ends it."""

    def __init__(self, path: str, descriptor: int):
        self.path = path
        self.lock_path = lock_path(path)
        self.fd = descriptor
        self.pid = os.getpid()
        self.count = 1

    @classmethod
    def acquire(cls, path: str, doing: str = "write") -> "ResultsLock":
        """Take the lock or raise LockedError naming the holder; `doing` words the refusal.

        Reentrant: a process that holds the lock gets it again (release it as often).
        """
        held = _HELD.get(os.path.abspath(path))
        if held is not None and held.pid == os.getpid() and held.fd >= 0:
            held.count += 1
            return held
        lock = cls._take(path, doing)
        if not _HELD:
            atexit.register(release_all)
        _HELD[os.path.abspath(path)] = lock
        return lock

    @classmethod
    def _take(cls, path: str, doing: str) -> "ResultsLock":
        name = lock_path(path)
        shown_path, shown_name = shown(path), shown(name)
        try:  # a fresh clone has no results/ folder yet: the file's folder is made here, as the writer would
            os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the folder of the results file {shown_path}: {exc.strerror}") from None
        for _ in range(20):
            descriptor = _open_lock_file(name)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse(os.pread(descriptor, 4096, 0).decode(errors="replace"))
                os.close(descriptor)
                who = holder.describe() if holder else "a process on this host"
                raise LockedError(f"cannot {doing} {shown_path}: a run is writing it ({who})") from None
            except OSError as exc:  # a file system without locks: fall back to the recorded pid
                if not _stale_without_flock(descriptor):
                    os.close(descriptor)
                    raise UserError(f"cannot lock {shown_name}: {exc.strerror}") from None
            if not _still_named(name, descriptor):  # released (unlinked) by its holder while we opened it: try again
                os.close(descriptor)
                continue
            holder = _parse(os.pread(descriptor, 4096, 0).decode(errors="replace"))
            if holder is not None and holder.host != socket.gethostname():
                os.close(descriptor)
                raise LockedError(
                    f"cannot {doing} {shown_path}: locked by a run on another host ({holder.describe()}); "
                    f"if that run is gone, delete {shown_name}"
                )
            started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            text = f"host={socket.gethostname()} pid={os.getpid()} started={started}\n".encode()
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, text, 0)
            except OSError as exc:  # e.g. a full disk: a lock that cannot say who holds it goes
                os.unlink(name)
                os.close(descriptor)
                raise RunError(f"cannot {doing} {shown_path}: its lock file {shown_name} cannot be written "
                               f"({exc.strerror})") from None
            return cls(path, descriptor)
        raise LockedError(f"cannot {doing} {shown_path}: its lock file {shown_name} keeps changing")

    def inheritable_fd(self) -> int:
        """The lock's descriptor, for a child (the watchdog) that keeps the lock after we die."""
        os.set_inheritable(self.fd, True)
        return self.fd

    def release(self) -> None:
        self.count -= 1
        if self.count > 0 or self.fd < 0 or self.pid != os.getpid():
            return
        release_descriptor(self.lock_path, self.fd)
        self.fd = -1
        _HELD.pop(os.path.abspath(self.path), None)


def held(path: str) -> ResultsLock | None:
    """The lock this process holds on results file `path`, if any."""
    lock = _HELD.get(os.path.abspath(path))
    return lock if lock is not None and lock.pid == os.getpid() and lock.fd >= 0 else None


def release_fully(path: str) -> None:
    lock = held(path)
    if lock is not None:
        lock.count = 1
        lock.release()


def release_all() -> None:
    """Release every lock this process still holds (at exit, and after a run on its error path)."""
    for lock in list(_HELD.values()):
        if lock.pid == os.getpid():
            lock.count = 1
            lock.release()


def release_descriptor(name: str, descriptor: int) -> None:
    """Remove lock file `name` if it is still the one open as `descriptor`, then close it."""
    try:
        if _still_named(name, descriptor):
            os.unlink(name)
    except OSError:
        pass
    try:
        os.close(descriptor)
    except OSError:
        pass


def _open_lock_file(name: str) -> int:
    """The lock file `name`, created or opened as it is, for reading and writing: never through a
    link (O_NOFOLLOW), never a pipe, device, hard-linked or another user's file (fstat)."""
    try:
        descriptor = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise side_files.refuse(name, "is a symbolic link") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):
            raise side_files.refuse(name, "is not a regular file (a folder, pipe or device)") from None
        raise UserError(f"cannot create the lock file {shown(name)}: {exc.strerror}") from None
    why = side_files.refusal(os.fstat(descriptor))
    if why is not None:
        os.close(descriptor)
        raise side_files.refuse(name, why)
    return descriptor


def _still_named(name: str, descriptor: int) -> bool:
    """Whether `name` itself (not a link in its place) is still the file open as `descriptor`."""
    try:
        named, opened = os.lstat(name), os.fstat(descriptor)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _stale_without_flock(descriptor: int) -> bool:
    holder = _parse(os.pread(descriptor, 4096, 0).decode(errors="replace"))
    if holder is None or holder.host != socket.gethostname():
        return holder is None
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
