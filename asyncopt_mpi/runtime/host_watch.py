"""Which rank ended first when a killed job had ranks on several hosts.

Rank 0's watchdog (guardian.py) sees only the processes on its own host. When a rank on
another host dies (SIGKILL, the OOM killer, a node failure), the launcher then kills every
rank, and the ranks on rank 0's host end together, a moment after the one that died. So the
lowest rank on each other host starts a reporter: a small process in its own session that
watches that host's ranks and, when one ends, writes `<results file>.ended-<host>` with the
ranks it saw end first and the wall-clock time. Rank 0's watchdog waits briefly for these
reports (the results folder is usually shared between nodes) and names the rank that ended
earliest; a host that sent no report is named as one where a rank may have ended first.
A run that ends normally stops its reporters before any rank exits, so they write nothing;
a report nobody collected is removed REPORT_KEEP seconds after the host's last rank ended.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

REPORT_WAIT = 10.0  # rank 0's watchdog waits at most this long for reports (a launcher may take seconds to end a host)
# Each watcher notes the time it *noticed* an end, which on a loaded machine can lag the end by a
# second or more: ends noticed on two hosts this close together cannot be ordered.
TOGETHER_SECONDS = 2.0
REPORT_KEEP = 30.0  # a report nobody collected is removed this long after the host's last rank ended


def elsewhere(pids: list[int], hosts: list[str]) -> dict[str, list[int]]:
    """Ranks per host other than rank 0's."""
    found: dict[str, list[int]] = {}
    for rank, host in enumerate(hosts):
        if host != hosts[0]:
            found.setdefault(host, []).append(rank)
    return found


def report_path(path: str, host: str) -> str:
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in host)
    return f"{os.path.abspath(path)}.ended-{safe}"


def start_reporter(path: str, pids: list[int], hosts: list[str], rank: int) -> subprocess.Popen | None:
    """On the lowest rank of a host other than rank 0's, start that host's reporter; None elsewhere."""
    host = hosts[rank]
    if host == hosts[0] or hosts.index(host) != rank:
        return None
    local = [f"{other}:{pid}" for other, (pid, name) in enumerate(zip(pids, hosts)) if name == host]
    # Started as a script, without importing the package (which takes seconds on a busy node), so it
    # watches before a rank can die.
    command = [sys.executable, os.path.abspath(__file__), "--file", os.path.abspath(path), "--host", host, *local]
    try:
        # Not the rank's stdout and stderr: a launcher waits for them to close before it ends the job.
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None  # best effort: rank 0's watchdog then says this host sent no report


def first_ended_reason(path: str, local_first: list[int], local_time: float, pids: dict[int, int],
                       hosts_elsewhere: dict[str, list[int]], rank0_host: str) -> str:
    """The stop reason of a killed multi-host job: the rank that ended first, or honestly which hosts are unknown."""
    reports = _collect(path, hosts_elsewhere)
    candidates = [(local_time, rank0_host, [(rank, pids[rank]) for rank in local_first])]
    candidates += [(item["time"], host, [tuple(pair) for pair in item["ranks"]]) for host, item in reports.items()]
    candidates.sort(key=lambda candidate: candidate[0])
    when = candidates[0][0]
    together = [candidate for candidate in candidates if candidate[0] - when <= TOGETHER_SECONDS]
    seen = {host for _, host, _ in together}
    # Hosts that may hold the rank that ended first: no report, or one whose rank had already
    # ended when its reporter started (after `when`: we cannot order it).
    unknown = [f"{name} (ranks {', '.join(map(str, ranks))}: no report)"
               for name, ranks in hosts_elsewhere.items() if name not in reports]
    unknown += [f"{name} (rank {', '.join(str(rank) for rank, _ in item['ranks'])} had ended before its "
                f"watcher started)" for name, item in reports.items() if not item.get("exact", True) and name not in seen]
    names = "; ".join(f"{', '.join(f'rank {rank} (pid {pid})' for rank, pid in first)} on {host}"
                      for _, host, first in together)
    if len(together) > 1:
        ended = (f"{names} were seen ending within {TOGETHER_SECONDS:g} s of each other first, and which of them "
                 "ended first cannot be told")
        return f"killed: the MPI job ended without closing the file; {ended}" + (
            f"; a rank on {'; '.join(unknown)} may have ended before" if unknown else "")
    if not unknown:
        return f"killed: {names} ended first, and the MPI job ended without closing the file"
    return (
        f"killed: the MPI job ended without closing the file; {names} ended first of the ranks "
        f"watched, but a rank on {'; '.join(unknown)} may have ended before"
    )


def _collect(path: str, hosts_elsewhere: dict[str, list[int]]) -> dict[str, dict]:
    """The reports the other hosts wrote within REPORT_WAIT seconds (each read, then removed)."""
    found: dict[str, dict] = {}
    deadline = time.monotonic() + REPORT_WAIT
    while True:
        for host in hosts_elsewhere:
            name = report_path(path, host)
            if host in found or not os.path.exists(name):
                continue
            try:
                with open(name) as handle:
                    found[host] = json.load(handle)
                os.unlink(name)
            except (OSError, ValueError):
                pass  # being written: read it on the next pass
        if len(found) == len(hosts_elsewhere) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def report(path: str, host: str, ranks: dict[int, int]) -> None:
    """Wait until one of this host's ranks ends, then write which ones ended first, and when."""
    try:
        from .guardian import alive, wait_for_first_end
    except ImportError:  # started as a script (start_reporter): guardian.py sits next to this file
        from guardian import alive, wait_for_first_end

    name = report_path(path, host)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped by its rank: the run ended normally
    try:
        started = time.time()
        already = [rank for rank, pid in ranks.items() if not alive(pid)]
        first = already or wait_for_first_end(ranks)
        seen = started if already else time.time()
        temporary = f"{name}.tmp{os.getpid()}"
        with open(temporary, "w") as handle:
            # "exact": False when the rank had ended before we started (so at or before `time`).
            json.dump({"host": host, "ranks": [[rank, ranks[rank]] for rank in first], "time": seen,
                       "exact": not already}, handle)
        os.replace(temporary, name)
        # The launcher may take seconds to end the job: keep the report until this host's ranks are all gone.
        while any(alive(pid) for pid in ranks.values()):
            time.sleep(0.5)
        time.sleep(REPORT_KEEP)
    except OSError:
        return  # the results folder is not on this host: rank 0's watchdog says no report came
    finally:
        if os.path.exists(name):
            try:
                os.unlink(name)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("ranks", nargs="+", help="rank:pid pairs on this host")
    args = parser.parse_args(argv)
    report(args.file, args.host, {int(rank): int(pid) for rank, pid in (item.split(":") for item in args.ranks)})


if __name__ == "__main__":
    main()
