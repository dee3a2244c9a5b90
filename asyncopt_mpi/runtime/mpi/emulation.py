"""Did the MPI workers keep up with the timing model? A warning at the end of a run when they did not.

A worker pads each job with sleep up to the duration the timing model drew; when its real
compute (or a CPU shared with other ranks) takes longer, the job overruns and the worker
delivers fewer gradients than the model asks for. Per worker, the delivered share is
busy / (busy + overrun): the modelled time of its jobs over the time they really took.
Below SHORTFALL_SHARE the emulation was distorted, and the run says so, naming the workers.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

SHORTFALL_SHARE = 0.9
log = logging.getLogger("asyncopt")


def delivered_shares(busy: Sequence[float], overrun: Sequence[float]) -> list[float]:
    """Per worker, modelled time / time taken (1.0 for a worker that did nothing)."""
    return [b / (b + o) if b + o > 0 else 1.0 for b, o in zip(busy, overrun)]


def shortfall_warning(busy: Sequence[float], overrun: Sequence[float], worker_name: Callable[[int], str],
                      threshold: float = SHORTFALL_SHARE, shown: int = 5) -> str | None:
    """The warning text when some worker delivered under `threshold` of its modelled gradients, else None."""
    shares = delivered_shares(busy, overrun)
    slow = sorted((share, worker) for worker, share in enumerate(shares) if share < threshold)
    if not slow:
        return None
    total = sum(busy) / max(sum(busy) + sum(overrun), 1e-300)
    named = "; ".join(f"{worker_name(worker)}: {share:.0%}, overrun {overrun[worker]:.3g} s"
                      for share, worker in slow[:shown])
    more = f"; and {len(slow) - shown} more" if len(slow) > shown else ""
    return (
        f"{len(slow)} of {len(shares)} workers delivered under {threshold:.0%} of the gradients the timing model "
        f"asks for ({named}{more}; all workers: {total:.0%}): their real compute was slower than the modelled "
        f"times, so the run is not the emulation the config describes. Use fewer ranks per core, a larger "
        f"workers.compute_scale or a cheaper problem (`asyncopt summary --workers` has the overrun per worker)"
    )


def warn_if_short(server) -> str | None:
    """Log the shortfall warning for a finished MPI run (server: its busy_time/overrun_time stats)."""
    stats = getattr(server, "stats", None)
    if not stats or "busy_time" not in stats or "overrun_time" not in stats:
        return None
    text = shortfall_warning(stats["busy_time"], stats["overrun_time"], server.worker_name)
    if text is not None:
        log.warning(text)
    else:
        shares = delivered_shares(stats["busy_time"], stats["overrun_time"])
        log.debug("workers delivered %.0f%% to %.0f%% of the gradients the timing model asks for",
                  100 * min(shares, default=1.0), 100 * max(shares, default=1.0))
    return text
