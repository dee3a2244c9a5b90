"""Stop signals that reach the `asyncopt` command while it is still starting, before a run watches them.

Loading numpy, scipy and MPI takes a fraction of a second, several on a loaded machine. A SIGINT,
SIGTERM or SIGUSR1 in that time (Ctrl-C, scancel, mpiexec passing one on to the ranks) would end
the process the default way: a KeyboardInterrupt traceback, or death by the signal, which hydra
reports as a crashed rank (its "BAD TERMINATION" banner, exit 15). In the command, this module
(standard library only, imported by the package before anything heavy) handles such a signal
instead. Before MPI is up nothing has started: rank 0 prints one line and every process exits
128+n at once (0 after SIGUSR1). Once MPI is up the signal is only recorded, and a run's SignalWatch
(runtime/signals.py) is handed it again once installed (`replay`), so the run stops before it
starts the documented way: one line, every rank exits 128+n. Commands other than run get
Python's default handlers back as they start (`release`).
"""

from __future__ import annotations

import os
import signal
import sys

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
    if "mpi4py.MPI" not in sys.modules:  # MPI is not up: nothing started, nothing written; leave now
        _leave(number)
    if received is None:
        received = number


def _leave(number: int) -> None:
    """End the command while it starts: rank 0's one line, every process 128+n (0 after SIGUSR1, the
    planned stop, as for a run it stops).

    At once, not after the imports: Open MPI's launcher sends SIGKILL a quarter of a second after
    the SIGTERM it passes on, and a killed rank would say nothing.
    """
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
