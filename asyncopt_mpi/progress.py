"""Progress of a run on rank 0: a live line on a terminal, a log line every few seconds otherwise.

Off a terminal the interval is ASYNCOPT_PROGRESS_SECONDS (default 5) seconds. When stop.time,
stop.gradients or stop.iterations bound the run, the line says how much of it is done (the largest
of those shares) and about how long it has left in wall seconds, from the pace so far (and, in the
simulator, in virtual seconds too). It shows f - f* when f* is known, else the loss. A set-up that
takes longer than SETUP_SECONDS (2 s, or the interval if shorter) says which phase it is in,
one log line per phase and then more after an interval that doubles each time (SetupProgress).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from typing import Any, TextIO

SETUP_SECONDS = 2.0  # a set-up shorter than this prints nothing
SETUP_REPEAT_MAX = 600.0  # seconds between two lines of one set-up phase at most (the gap doubles up to it)


def progress_interval(default: float = 5.0) -> float:
    """ASYNCOPT_PROGRESS_SECONDS, or `default` when it is unset or not a positive number."""
    try:
        value = float(os.environ.get("ASYNCOPT_PROGRESS_SECONDS", default))
    except ValueError:
        return default
    return value if value > 0 and math.isfinite(value) else default


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False, virtual: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.virtual = virtual
        self.terminal = self.stream.isatty()
        self.interval = 0.5 if self.terminal else progress_interval()
        self.next_time = time.monotonic() + self.interval
        self.shown = False
        self.origin: tuple[float, float] | None = None  # (wall clock, share done) at the first tick: the pace's start
        self.setup: SetupProgress | None = None  # the set-up's lines, ended once the run is under way

    def tick(self, server: Any) -> None:
        """Cheap unless it is time to show a line (called after every result)."""
        if self.setup is not None:
            self.setup.close()
            self.setup = None
        if self.quiet:
            return
        now = time.monotonic()
        if self.origin is None:  # a resumed run starts part done: its pace counts from here
            self.origin = (now, done_share(server)[0])
        if now < self.next_time:
            return
        self.next_time = now + self.interval
        self.show(server)

    def line(self, server: Any) -> str:
        elapsed = server.now()
        rate = server.grads_received / elapsed if elapsed > 0 else 0.0
        unit = "virtual s" if self.virtual else "s"
        limit = getattr(server, "time_limit", math.inf)
        text = f"asyncopt: {elapsed:.1f}{f' of {limit:g}' if math.isfinite(limit) else ''} {unit}"
        share, rule = done_share(server)
        if rule:
            text += f", {100 * share:.0f}% of {rule} done{self.time_left(share, elapsed)}"
        text += f", {server.version} updates, {server.grads_received} gradients ({rate:.4g}/{unit})"
        loss, f_star = getattr(server, "last_loss", math.nan), getattr(server, "f_star", math.nan)
        if math.isfinite(loss) and math.isfinite(f_star):
            return text + f", f - f* {loss - f_star:.4g}"
        return text + (f", loss {loss:.6g}" if math.isfinite(loss) else "")

    def time_left(self, share: float, elapsed: float) -> str:
        """', about T left' from the pace since the first tick (wall seconds; in the simulator also virtual)."""
        if self.origin is None or not 0 < share < 1:
            return ""
        started, share_then = self.origin
        spent = time.monotonic() - started
        if share <= share_then or spent <= 0:
            return ""
        text = f", {_duration(spent * (1 - share) / (share - share_then))} left"
        return text + (f" ({elapsed * (1 - share) / share:.3g} virtual s)" if self.virtual else "")

    def show(self, server: Any) -> None:
        text = self.line(server)
        if self.terminal:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """End the live line so that what follows starts on a new line."""
        if self.terminal and self.shown and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()


def done_share(server: Any) -> tuple[float, str]:
    """(share done, the stop rule it is of): the largest of elapsed / stop.time, gradients /
    stop.gradients and updates / stop.iterations; (0, "") when none of them bounds the run."""
    shares = [(used / limit, rule) for used, limit, rule in (
        (server.now(), getattr(server, "time_limit", math.inf), "stop.time"),
        (server.grads_received, getattr(server, "gradient_limit", math.inf), "stop.gradients"),
        (server.version, getattr(server, "iteration_limit", math.inf), "stop.iterations"),
    ) if 0 < limit < math.inf]
    if not shares:
        return 0.0, ""
    share, rule = max(shares)
    return min(share, 1.0), rule


def _duration(seconds: float) -> str:
    """An estimate in words: 'under 1 s', 'about 40 s', 'about 12 min', 'about 3.5 h'."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.0f} min" if seconds < 5400 else f"about {seconds / 3600:.1f} h"


class SetupProgress:
    """Log lines while a long set-up runs (`phase(...)` names what it is doing; `close()` ends it).

    A background thread wakes every interval; once SETUP_SECONDS (or the interval, if shorter)
    have passed since the set-up began, it logs the current phase when it changes and again
    while it lasts, after an interval that doubles with each repeat (up to SETUP_REPEAT_MAX), so
    millions of simulated workers do not set up in silence and an hour's f* solve in a batch
    log is a dozen lines, not hundreds.
    Lines go to the asyncopt logger at info level: --quiet or --log-level warning hides them.
    """

    def __init__(self, what: str, quiet: bool = False):
        self.what = what
        self.interval = progress_interval()
        self.threshold = min(SETUP_SECONDS, self.interval)
        self.start = time.monotonic()
        self.current = ""
        self.shown = ""
        self.next_time = self.start + self.threshold
        self.wait = self.interval  # until the next line of an unchanged phase
        self.stopped = threading.Event()
        self.thread = None
        if not quiet and logging.getLogger("asyncopt").isEnabledFor(logging.INFO):
            self.thread = threading.Thread(target=self._watch, name="asyncopt-setup-progress", daemon=True)
            self.thread.start()

    def phase(self, name: str) -> None:
        """The set-up now does `name` (cheap: one attribute)."""
        self.current = name

    def _watch(self) -> None:
        log = logging.getLogger("asyncopt")
        while not self.stopped.wait(min(self.interval, max(self.threshold, 0.05))):
            now, current = time.monotonic(), self.current
            if now - self.start < self.threshold or (current == self.shown and now < self.next_time):
                continue
            log.info("%s: %s (%.1f s so far)", self.what, current, now - self.start)
            self.wait = self.interval if current != self.shown else min(2 * self.wait, SETUP_REPEAT_MAX)
            self.shown, self.next_time = current, now + self.wait

    def close(self) -> None:
        """The set-up is over: no more lines (safe to call twice)."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
