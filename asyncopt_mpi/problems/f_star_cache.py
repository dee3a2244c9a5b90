"""f* of problems that solve for it (L-BFGS on logistic regression, FISTA on the polynomial network), kept on disk.

A solve on all 60,000 MNIST rows takes up to an hour; every run of a sweep or a reproduction
needs the same number. One small JSON file per identity, in `{data}/fstar/` (the data cache
folder, $ASYNCOPT_DATA or ~/.cache/asyncopt): the identity is a SHA-256 over the problem's
class, its settings that change f (classes, l2, lam, the radius, the solver's options) and the bytes of the
data it trains on (after scaling, the test rows held out and the first `samples` rows kept), so
a changed file, setting or solver is a new entry, never a stale one.

The environment variable ASYNCOPT_F_STAR_CACHE turns it off ("0", "off", "no" or "false") or
puts it in another folder. A cache file is written atomically: a new file of its own
(O_CREAT|O_EXCL|O_NOFOLLOW, as the run's side files), then renamed into place; the folder is
opened without following a link. A file read back is used only when it is a plain file of this
user (side_files.refusal), small, well formed, of the same identity, and holds a finite f* that
the problem accepts (not above f(x0)); anything else is ignored, and the solve runs and replaces it.
A cache that cannot be written (read-only folder, full disk) is skipped: the run goes on.
A solve holds an flock on KEY.lock there, so runs that start together solve a key once: the others
wait and read the first one's value.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse as sp

from ..datasets import cache_folder
from ..side_files import refusal

ENV = "ASYNCOPT_F_STAR_CACHE"
OFF = ("0", "off", "no", "false")
FOLDER = "fstar"
FORMAT = 1
MAX_BYTES = 4096  # a cache file is one short JSON object; anything larger is not ours


def folder() -> str | None:
    """Where cache files live, or None when the cache is off."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    return setting or os.path.join(cache_folder(), FOLDER)


def identity(*parts: Any) -> str:
    """SHA-256 (hex) of parts: text and numbers by their repr, arrays and sparse matrices by dtype, shape and bytes."""
    digest = hashlib.sha256()
    for part in parts:
        if sp.issparse(part):
            part = part.tocsr()
            digest.update(f"csr {part.shape}".encode())
            for array in (part.data, part.indices, part.indptr):
                _add_array(digest, array)
        elif isinstance(part, np.ndarray):
            _add_array(digest, part)
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _add_array(digest: "hashlib._Hash", array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str} {array.shape}".encode())
    digest.update(memoryview(array).cast("B"))


def cached(key: str, solve: Callable[[], float], accept: Callable[[float], bool] = lambda value: True) -> float:
    """f* of identity `key`: read back from the cache when there and accepted, else solve() (stored if finite).

    One process at a time solves a key: the runs of a sweep or reproduction that start together wait
    for the first one's solve and read its value, instead of each solving for up to an hour."""
    place = folder()
    if place is None:
        return solve()
    value = read(place, key)
    if value is not None and accept(value):
        return value
    with _solving(place, key):
        value = read(place, key)
        if value is not None and accept(value):
            return value
        value = solve()
        if math.isfinite(value):
            write(place, key, value)
    return value


@contextlib.contextmanager
def _solving(place: str, key: str) -> Iterator[None]:
    """Hold `key`'s lock (flock on KEY.lock in the cache folder, released by the kernel if the holder dies).

    The lock file is opened without following a link and used only when it is a plain file of this
    user; when it cannot be, the solve goes on unlocked (as before the lock: at worst solved twice)."""
    handle = None
    directory = _open_folder(place, create=True)
    if directory is not None:
        try:
            handle = os.open(f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             0o600, dir_fd=directory)
            if refusal(os.fstat(handle)) is None:
                fcntl.flock(handle, fcntl.LOCK_EX)  # a kernel wait, not a spin
            else:
                os.close(handle)
                handle = None
        except (OSError, ValueError):
            if handle is not None:
                os.close(handle)
            handle = None
        finally:
            os.close(directory)
    try:
        yield
    finally:
        if handle is not None:
            os.close(handle)  # closing releases the lock


def _open_folder(place: str, create: bool) -> int | None:
    """A descriptor of the cache folder (never a link in its place), or None."""
    try:
        if create:
            os.makedirs(place, mode=0o700, exist_ok=True)
        return os.open(place, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None


def read(place: str, key: str) -> float | None:
    """The finite f* stored for `key` in folder `place`, or None (missing, unreadable or not to be trusted)."""
    directory = _open_folder(place, create=False)
    if directory is None:
        return None
    try:
        # O_NONBLOCK: a pipe in the file's place is not waited on (it is refused below).
        handle = os.open(f"{key}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory)
    except (OSError, ValueError):
        return None
    finally:
        os.close(directory)
    try:
        status = os.fstat(handle)
        if refusal(status) is not None or status.st_size > MAX_BYTES:  # a plain file of ours, small
            return None
        entry = json.loads(os.read(handle, MAX_BYTES + 1))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    finally:
        os.close(handle)
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
        return None
    value = entry.get("f_star")
    if type(value) is not float or not math.isfinite(value):
        return None
    return value


def write(place: str, key: str, value: float) -> bool:
    """Store f* for `key` in folder `place` (a new file renamed into place); False when it cannot be."""
    directory = _open_folder(place, create=True)
    if directory is None:
        return False
    partial = f"{key}.json.{os.getpid()}.partial"
    text = json.dumps({"format": FORMAT, "key": key, "f_star": float(value)})
    try:
        handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=directory)
    except (OSError, ValueError):
        os.close(directory)
        return False
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        # rename replaces whatever stands at the name (a link included) without following it
        os.replace(partial, f"{key}.json", src_dir_fd=directory, dst_dir_fd=directory)
        return True
    except OSError:
        try:
            os.unlink(partial, dir_fd=directory)
        except OSError:
            pass
        return False
    finally:
        os.close(directory)
