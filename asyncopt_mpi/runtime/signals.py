"""Signals that end a run cleanly: SIGINT, SIGTERM and SIGUSR1 (what Slurm sends before a time limit).

The handler only records the signal; the server loop and the worker loops look at it and
stop the run the normal way (final snapshot, metrics, status "stopped"). A second SIGINT
ends the process at once: the results file stays readable up to its last flush.

Code that may not come back to the loop (a method's hook, often a plugin's; set-up) runs with
`running` naming it. On the process that runs hooks (`guards`: the simulator, MPI rank 0), a
stop signal arms an alarm HOOK_GRACE seconds later, and the alarm raises Interrupted in
whatever is still `running` then; the MPI server arms the same alarm for stop.time +
stop.grace. The alarm costs the loop nothing: no call per result, one attribute set around a hook.
"""

from __future__ import annotations

import os
import signal

from .. import early_signals

STOP_SIGNALS = early_signals.STOP_SIGNALS  # SIGINT, SIGTERM, SIGUSR1: recorded from the command's start
HOOK_GRACE = 1.0  # seconds a running hook has to return after a stop signal
RETRY_SECONDS = 0.5  # the alarm comes again while the interrupted code still runs (it may catch Interrupted)


class Interrupted(BaseException):
    """Raised into a method hook or set-up step that did not return in time after a stop signal or the
    time limit. A BaseException, so a hook's `except Exception` does not swallow it."""

    def __init__(self, running: str, cause: str):
        super().__init__(f"{running} interrupted ({cause})")
        self.running = running  # what was interrupted: a hook's name, or "set-up"
        self.cause = cause  # the signal's name, or the deadline the alarm was set for


class SignalWatch:
    def __init__(self, guards: bool = False) -> None:
        self.received: int | None = None
        self.guards = guards
        self.running: str | None = None  # the hook or step in progress that the alarm may interrupt
        self.deadline = ""  # what an alarm armed by `arm` stands for
        self._previous: dict[int, object] = {}

    def install(self) -> "SignalWatch":
        for number in (*STOP_SIGNALS, *((signal.SIGALRM,) if self.guards else ())):
            self._previous[number] = signal.signal(number, self._handle)
        early_signals.replay()  # a signal that came while the command was starting stops this run
        return self

    def restore(self) -> None:
        self.disarm()
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:
        if number == signal.SIGALRM:
            self._alarm()
            return
        if number == signal.SIGINT and self.received == signal.SIGINT:
            os._exit(128 + number)  # second Ctrl-C: leave now
        if self.received is None:
            self.received = number
        if self.guards:  # also after a second signal: the final snapshot's hooks may hang too
            signal.setitimer(signal.ITIMER_REAL, HOOK_GRACE)

    def _alarm(self) -> None:
        running = self.running
        if running is None:
            return  # the loop is not held up: it stops on its own
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        raise Interrupted(running, self.name or self.deadline)

    def arm(self, seconds: float, deadline: str) -> None:
        """Interrupt a hook still running `seconds` from now (`deadline` says what that time is)."""
        if self.guards and self.received is None:
            self.deadline = deadline
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))

    def disarm(self) -> None:
        if self.guards:
            signal.setitimer(signal.ITIMER_REAL, 0)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""
