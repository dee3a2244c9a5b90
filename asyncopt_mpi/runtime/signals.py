"""Signals that end a run cleanly: SIGINT, SIGTERM and SIGUSR1 (what Slurm sends before a time limit).

The handler only records the signal; the server loop and the worker loops look at it and
stop the run the normal way (final snapshot, metrics, status "stopped"). A second SIGINT
ends the process at once: the results file stays readable up to its last flush.
"""

from __future__ import annotations

import os
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class SignalWatch:
    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> "SignalWatch":
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:
        if number == signal.SIGINT and self.received == signal.SIGINT:
            os._exit(128 + number)  # second Ctrl-C: leave now
        if self.received is None:
            self.received = number

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""
