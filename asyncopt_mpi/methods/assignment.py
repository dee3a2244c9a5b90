"""Which worker gets the next job in asynchronous SGD: AsGrad's pure, random and shuffle rules (seed 002)."""

from __future__ import annotations

import numpy as np

ASSIGN_RULES = ("pure", "random", "shuffle")


class Assignment:
    """`next(finished)`: the worker that receives the job freed by `finished`'s result."""

    def __init__(self, rule: str, n_workers: int, rng: np.random.Generator):
        self.rule = rule
        self.n_workers = n_workers
        self.rng = rng
        self.order = np.arange(n_workers)
        self.position = n_workers  # reshuffle before the first use

    def next(self, finished: int) -> int:
        if self.rule == "pure":
            return finished
        if self.rule == "random":
            return int(self.rng.integers(self.n_workers))
        # shuffle: every block of n jobs visits each worker once, in a fresh random order.
        if self.position == self.n_workers:
            self.order = self.rng.permutation(self.n_workers)
            self.position = 0
        worker = int(self.order[self.position])
        self.position += 1
        return worker
