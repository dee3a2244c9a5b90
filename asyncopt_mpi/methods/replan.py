"""Re-planning of Fragile and Amelie SGD (method.replan = "drift"): measured job times, the drift rule, the plan.

Seed 004: "All described methods can adapt to changing computational conditions, which is
particularly useful in real systems where device performance can vary over time." The paper's
algorithms (Tyurin & Richtarik, NeurIPS 2024) take the times as known and choose the pivot, its
tree and the participants once, before the first step; `method.replan = "off"` (the default)
runs them as specified. Under "drift":

- Every computing node measures its jobs on its own clock (virtual in the simulator, wall under
  MPI). A job replaced by a newer point before it finished counts its elapsed time only when
  that already exceeds the node's known time (a lower bound that says the node is slower). The
  estimate is the mean of the last `method.replan_window` measurements, per gradient.
- With a full window, a node whose estimate differs from the time the pivot knows for it by
  more than a factor 1 + `method.replan_threshold` (slower or faster) reports it up the tree
  to the pivot, then starts a new window. A node none of whose last window's jobs finished
  (a slow or dead node, its jobs replaced by newer points) reports as soon as its estimate, a
  lower bound, exceeds the known time: at this pace it gives nothing. Reports ride on the
  next result a node sends up (appended to its vector); a node with no result to send sends
  them alone (TIMES) once its link is free, so reports never queue before results.
- Link times are not re-measured: they stay as configured (MPI hop times include the polling
  latency of ranks sharing cores, which would read as drift).
- At its next step (a round boundary) the pivot recomputes the plan with make_plan on the
  times it knows (a node that sits out is not measured: it keeps its last time, so a dropped
  node comes back only when others slow down). If the pivot or the participants changed, the
  new point goes down the current tree as a PLAN message carrying the plan (pivot,
  participants, known times); each node passes it on to its current children, then switches
  to the new tree and participation, so every node leaves the old plan at the same version.
  Amelie needs every node's gradients, so only its pivot moves.
- The pivot records a re-plan in /events: one row of kind PLAN per node (accepted: the node
  computes under the new plan) and one row of kind PIVOT naming the new pivot; point_version
  is the last point of the old plan. /graph keeps the first plan.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..inputs import shown

REPLAN_RULES = ("off", "drift")
REPLAN_PARAMS = {"replan": "off", "replan_threshold": 1.0, "replan_window": 4}


def check_replan(options: dict[str, Any]) -> None:
    """ConfigError naming the key when a re-planning option is out of range (validate.py checked the types)."""
    rule = str(options["replan"])
    if rule not in REPLAN_RULES:
        raise ConfigError(f"method.replan: {shown(rule, 40)} is not accepted; accepted: {', '.join(REPLAN_RULES)}")
    threshold = options["replan_threshold"]
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ConfigError(f"method.replan_threshold: must be > 0 (a relative drift; 1: a factor of 2), got {threshold}")
    if options["replan_window"] < 1:
        raise ConfigError(f"method.replan_window: must be >= 1 (jobs per estimate), got {options['replan_window']}")


@dataclass
class Replanning:
    """What a node needs to re-plan: the plan's inputs and the drift rule."""

    method_name: str
    options: dict[str, Any]
    batch: int
    threshold: float
    window: int

    @classmethod
    def from_options(cls, method_name: str, options: dict[str, Any], batch: int) -> "Replanning | None":
        """None when the plan is fixed (method.replan = "off" or a method without the option)."""
        if str(options.get("replan", "off")) != "drift":
            return None
        return cls(method_name, options, batch, float(options["replan_threshold"]), int(options["replan_window"]))


class JobClock:
    """One node's measured job times (seconds per gradient) and when they have drifted."""

    def __init__(self, rule: Replanning, known: float):
        self.rule = rule
        self.batch = rule.batch
        self.recent: deque[float] = deque(maxlen=rule.window)
        self.replaced: deque[bool] = deque(maxlen=rule.window)  # per measurement: a lower bound (never finished)
        self.started: float | None = None  # when the running job started
        self.known = known  # seconds per gradient the pivot has for this node

    def estimate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else self.known

    def start(self, now: float) -> None:
        """A job starts now, replacing the running one if any."""
        if self.started is not None:
            elapsed = (now - self.started) / self.batch
            if elapsed > self.known:
                self.recent.append(elapsed)
                self.replaced.append(True)
        self.started = now

    def finish(self, now: float) -> None:
        if self.started is not None:
            self.recent.append((now - self.started) / self.batch)
            self.replaced.append(False)
            self.started = None

    def drifted(self) -> float | None:
        """The estimate when a full window differs from the known time beyond the threshold, or when none of
        its jobs finished and it exceeds the known time (the node gives nothing at this pace); it becomes known."""
        if len(self.recent) < self.recent.maxlen:
            return None
        estimate = self.estimate()
        if estimate == self.known:
            return None
        ratio = estimate / self.known if self.known > 0 else math.inf
        drifted = max(ratio, 1.0 / ratio if ratio > 0 else math.inf) > 1.0 + self.rule.threshold
        if not drifted and not (all(self.replaced) and estimate > self.known):
            return None
        self.known = estimate
        self.recent.clear()  # the next report needs a full window of its own
        self.replaced.clear()
        return estimate


def encode_plan(x: np.ndarray, pivot: int, participants: np.ndarray, known: np.ndarray) -> np.ndarray:
    """A PLAN message's vector: the point, then the pivot, a 0/1 mask of participants and the known times."""
    n = known.size
    mask = np.zeros(n)
    mask[np.asarray(participants, dtype=int)] = 1.0
    return np.concatenate([x, [float(pivot)], mask, known])


def decode_plan(vector: np.ndarray, dim: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """(point, pivot, participants, known times) of a PLAN message's vector."""
    n = (vector.size - dim - 1) // 2
    mask = vector[dim + 1 : dim + 1 + n]
    return vector[:dim], int(vector[dim]), np.flatnonzero(mask > 0.5), vector[dim + 1 + n :].copy()
