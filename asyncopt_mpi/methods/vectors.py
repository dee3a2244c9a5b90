"""VectorSum: the runtime-owned accumulator through which methods add up gradients (server.vector_sum()).

Methods add results, other sums or arrays with a weight and read the total with value();
how many gradients went in is the method's own scalar bookkeeping. The MPI server uses
this class as it is (adds happen at once); the simulator hands out a subclass that may
defer the adds of results it has not computed yet and does their math in one block,
with the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_vector(item: Any) -> np.ndarray:
    """The vector of a Result, a VectorSum or an array."""
    if isinstance(item, np.ndarray):
        return item
    if isinstance(item, VectorSum):
        return item.value()
    return item.vector


class VectorSum:
    """sum of weight * vector over everything added since the last clear()."""

    __slots__ = ("total",)

    def __init__(self, dim: int):
        self.total = np.zeros(dim)

    def add(self, item: Any, weight: float = 1.0) -> None:
        """Add weight * the vector of `item` (a Result, a VectorSum or an ndarray)."""
        self.total += weight * as_vector(item)

    def clear(self) -> None:
        self.total.fill(0.0)

    def value(self) -> np.ndarray:
        """The sum (a read-only view: copy it to keep it past the next add or clear)."""
        view = self.total.view()
        view.flags.writeable = False
        return view
