"""Progress of a run on rank 0: a live line on a terminal, a log line every few seconds otherwise.

Off a terminal the interval is ASYNCOPT_PROGRESS_SECONDS (default 5) seconds.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False, virtual: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.virtual = virtual
        self.terminal = self.stream.isatty()
        self.interval = 0.5 if self.terminal else float(os.environ.get("ASYNCOPT_PROGRESS_SECONDS", 5.0))
        self.next_time = time.monotonic() + self.interval
        self.shown = False

    def tick(self, server: Any) -> None:
        """Cheap unless it is time to show a line (called after every result)."""
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
