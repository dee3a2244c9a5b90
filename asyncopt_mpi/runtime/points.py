"""Numbered, immutable model points with reference counts and a pool of reusable buffers.

The server publishes a new version for every update. A version stays alive while something
refers to it (the current or the previous point, which jobs on a pair of points such as
gradient differences need; a job in the simulator; a send in flight under MPI), then
its buffer returns to a small pool, so memory grows with live versions, not with updates,
and large points are not re-faulted into memory on every step.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

POOL_SIZE = 8
DELTA_LOG = 4096  # published deltas kept, so a worker up to this many versions behind can catch up


_daxpy: Callable[..., Any] | None = None


def _load_daxpy() -> Callable[..., Any]:
    """BLAS daxpy, imported on the first in-place step: scipy.linalg costs more to import than numpy and h5py
    together, and only the MPI server's StepAndRestart path steps in place (numpy's `x += s*d` may round
    differently, so the step keeps BLAS)."""
    global _daxpy
    from scipy.linalg.blas import daxpy

    _daxpy = daxpy
    return daxpy


def apply_delta(x: np.ndarray, delta: np.ndarray, shape: tuple[int, int]) -> None:
    """In place: X <- a X + b u v^T for delta = [a, b, u (rows), v (cols)] (x is X flattened, C order).

    A Frank-Wolfe step is such a rank-one affine update, so a worker that holds an older
    point can rebuild a newer one from O(rows + cols) numbers per step instead of rows*cols.
    """
    rows, cols = shape
    matrix = x.reshape(rows, cols)
    matrix *= delta[0]
    u, v = delta[2 : 2 + rows], delta[2 + rows : 2 + rows + cols]
    matrix += delta[1] * np.outer(u, v)


class PointStore:
    def __init__(self, x0: np.ndarray, version: int = 0):
        x0 = np.array(x0, dtype=float)
        x0.flags.writeable = False
        self.dim = x0.size
        self.current = version
        self.previous: int | None = None
        # Deltas that produced recent versions, and those versions' squared norms (to check
        # a worker's rebuilt copy).
        self.deltas: dict[int, np.ndarray] = {}
        self.fingerprints: dict[int, float] = {}
        self._points: dict[int, np.ndarray] = {version: x0}
        self._refs: dict[int, int] = {version: 1}  # the current point holds one reference
        self._pool: list[np.ndarray] = []
        self._alone: np.ndarray | None = None  # the writable buffer behind step_alone's point

    def __len__(self) -> int:
        """Number of live versions."""
        return len(self._points)

    def get(self, version: int) -> np.ndarray:
        return self._points[version]

    def delta_floats(self, base: int, version: int) -> int:
        """Floats of the delta chain from base to version (0 if some delta is not kept)."""
        steps = range(base + 1, version + 1)
        if not base < version or any(step not in self.deltas for step in steps):
            return 0
        return sum(self.deltas[step].size for step in steps)

    def delta_chain(self, base: int, version: int) -> np.ndarray | None:
        """The deltas from `base` to `version`, one per row, if every one of them is kept."""
        if not base < version or any(step not in self.deltas for step in range(base + 1, version + 1)):
            return None
        return np.concatenate([self.deltas[step] for step in range(base + 1, version + 1)])

    def new_buffer(self) -> np.ndarray:
        """A writable array of length dim for the next point (contents undefined)."""
        if self._pool:
            buffer = self._pool.pop()
            buffer.flags.writeable = True
            return buffer
        return np.empty(self.dim)

    def publish(self, x: np.ndarray, delta: np.ndarray | None = None) -> int:
        """Make x (which the store now owns) the current point; return its version.

        A read-only array (such as a published point) or one of another dtype is copied,
        so that no two versions ever share a buffer. `delta` (see apply_delta) takes the
        current point to x; workers holding the current point may then get the delta instead.
        """
        if x.shape != (self.dim,):
            raise ValueError(f"published point has shape {x.shape}, expected ({self.dim},)")
        if not x.flags.writeable or x.dtype != np.float64:
            copy = self.new_buffer()
            copy[:] = x
            x = copy
        x.flags.writeable = False
        version = self.current + 1
        self._points[version] = x
        self._refs[version] = 1
        if delta is not None:
            self.deltas[version] = np.array(delta, dtype=float)
            self.fingerprints[version] = float(x @ x)
            self.deltas.pop(version - DELTA_LOG, None)
            self.fingerprints.pop(version - DELTA_LOG, None)
        # The current point's reference passes to "previous"; the one before is let go.
        released, self.previous, self.current = self.previous, self.current, version
        if released is not None:
            self.release(released)
        return version

    def step_alone(self, direction: np.ndarray, scale: float) -> int:
        """Publish x - scale * direction for a caller that asks for no other version (no pairs, no deltas).

        The previous point is let go; the new version takes over the current point's buffer,
        updated in place, when nothing else refers to it (no pin, no send in flight), else a
        new buffer. This is the MPI server's StepAndRestart path: one BLAS axpy over x, no copy.
        The point stays a read-only view of a writable buffer kept here, so that stepping in
        place needs no toggling of the view's flags.
        """
        if self.previous is not None:
            previous, self.previous = self.previous, None
            self.release(previous)
        current = self.current
        x = self._points[current]
        owner = self._alone
        stepped_here = owner is not None and x.base is owner  # (then contiguous: no look at the flags)
        if self._refs[current] != 1 or self.deltas or not (stepped_here or x.flags.c_contiguous):
            x = self.new_buffer()  # contiguous, so the next step can be in place
            np.multiply(direction, -scale, out=x)
            x += self._points[current]
            return self.publish(x)
        del self._points[current], self._refs[current]
        if not stepped_here:  # the first step on this buffer
            x.flags.writeable = True
            self._alone = owner = x
            x = owner.view()
            x.flags.writeable = False
        # In place, one pass (BLAS may fuse the multiply-add); n and a given by position cost less to pass.
        (_daxpy or _load_daxpy())(direction, owner, self.dim, -scale)
        self.current = version = current + 1
        self._points[version] = x
        self._refs[version] = 1
        return version

    def acquire(self, version: int) -> None:
        self._refs[version] += 1

    def release(self, version: int) -> None:
        refs = self._refs[version] - 1
        if refs:
            self._refs[version] = refs
            return
        del self._refs[version]
        buffer = self._points.pop(version)
        if len(self._pool) < POOL_SIZE and buffer.base is None:
            self._pool.append(buffer)
