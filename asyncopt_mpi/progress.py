"""Progress of a run on rank 0: a live line on a terminal, a log line every few seconds otherwise.

Off a terminal the interval is ASYNCOPT_PROGRESS_SECONDS (default 5) seconds. A set-up that
takes longer than SETUP_SECONDS (2 s, or the interval if shorter) says which phase it is in,
one log line per phase and then one per interval (SetupProgress).
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
        self.interval = 0.5 if self.terminal else float(os.environ.get("ASYNCOPT_PROGRESS_SECONDS", 5.0))
        self.next_time = time.monotonic() + self.interval
        self.shown = False
        self.setup: SetupProgress | None = None  # the set-up's lines, ended once the run is under way

    def tick(self, server: Any) -> None:
        """Cheap unless it is time to show a line (called after every result)."""
        if self.setup is not None:
            self.setup.close()
            self.setup = None
        if self.quiet:
            return
        now = time.monotonic()
        if now < self.next_time:
            return
        self.next_time = now + self.interval
        self.show(server)

    def line(self, server: Any) -> str:
        elapsed = server.now()
        rate = server.grads_received / elapsed if elapsed > 0 else 0.0
        unit = "virtual s" if self.virtual else "s"
        text = (f"asyncopt: {elapsed:.1f} {unit}, {server.version} updates, {server.grads_received} gradients "
                f"({rate:.4g}/{unit})")
        loss = getattr(server, "last_loss", math.nan)
        return text + (f", loss {loss:.6g}" if math.isfinite(loss) else "")

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


class SetupProgress:
    """Log lines while a long set-up runs (`phase(...)` names what it is doing; `close()` ends it).

    A background thread wakes every interval; once SETUP_SECONDS (or the interval, if shorter)
    have passed since the set-up began, it logs the current phase when it changes and again
    every interval while it lasts, so millions of simulated workers do not set up in silence.
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
            self.shown, self.next_time = current, now + self.interval

    def close(self) -> None:
        """The set-up is over: no more lines (safe to call twice)."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
