"""Stop signals that reach the `asyncopt` command while it is still starting, before a run watches them.

Loading numpy, scipy and MPI takes a fraction of a second, several on a loaded machine. A SIGINT,
SIGTERM or SIGUSR1 in that time (Ctrl-C, scancel, mpiexec passing one on to the ranks) would end
the process the default way: a KeyboardInterrupt traceback, or death by the signal, which hydra
reports as a crashed rank (its "BAD TERMINATION" banner, exit 15). In the command, this module
(standard library only, imported by the package before anything heavy) handles such a signal
instead. A process that is not one rank of a parallel job has written nothing yet: it prints one
line and exits 128+n (0 after SIGUSR1) at once. A rank of a parallel job only records the signal:
leaving at once would be safe only if every rank left, and a rank already inside MPI_Init waits
there for ever for a rank that left (seen under a loaded machine: mpiexec hung). So every rank
carries on to the run's first agreement, where a run's SignalWatch (runtime/signals.py), handed
the signal again once installed (`replay`), stops it before it starts the documented way: one
line, every rank exits 128+n (0 after SIGUSR1). Commands other than run get Python's default
handlers back as they start (`release`).
"""

from __future__ import annotations

import os
import signal

from .launcher import launched_ranks
from .threads import is_command

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
DEFAULT_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
                    signal.SIGUSR1: signal.SIG_DFL}

received: int | None = None  # the first stop signal recorded and not yet handed on


def install() -> None:
    """Record stop signals from now on (the command's first step)."""
    for number in STOP_SIGNALS:
        signal.signal(number, _record)


def _record(number: int, frame) -> None:
    global received
    if number == signal.SIGINT and received == signal.SIGINT:
        os._exit(128 + number)  # a second Ctrl-C: leave now, as during a run
    if launched_ranks()[0] <= 1:  # one process (the simulator, any other command): nothing written yet; leave now
        _leave(number)
    if received is None:
        received = number


def _leave(number: int) -> None:
    """End a single-process command while it starts: one line, exit 128+n (0 after SIGUSR1, the planned
    stop, as for a run it stops)."""
    if launched_ranks()[1] == 0:
        os.write(2, f"asyncopt: stopped while starting ({signal.Signals(number).name}); nothing was written\n".encode())
    os._exit(0 if number == signal.SIGUSR1 else 128 + number)


def replay() -> None:
    """Deliver the recorded signal again, to the handlers installed now (a run's SignalWatch)."""
    global received
    number, received = received, None
    if number is not None:
        signal.raise_signal(number)


def release() -> None:
    """Python's default handlers back where ours are (a command that is not a run); a recorded signal acts now."""
    for number, handler in DEFAULT_HANDLERS.items():
        if signal.getsignal(number) is _record:
            signal.signal(number, handler)
    replay()


if is_command():
    install()
