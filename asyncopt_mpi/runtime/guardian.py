"""A watchdog process that repairs the results file if the writing rank dies without closing it.

When one MPI rank is killed (SIGKILL, the OOM killer), the launcher kills every other rank
at once, rank 0 included, so no rank can record the failure. Rank 0 therefore starts this
small process in its own session: it watches the ranks' process ids on its host, and when
rank 0 is gone and the file was not closed, rewrites the file as normally closed with
status "failed" and a stop reason naming the rank that ended first.

It inherits the results file's lock (locks.py), so no other run, `evaluate` or `--resume`
can touch the file until the repair is done; a staged file the run never published (it died
while setting up) is removed, leaving the old file at the path as it was.

It is started as a script (not `-m asyncopt_mpi...`, which would import the whole package with
numpy and scipy in every run) and without the site module (`-S`: the site-packages' .pth hooks
cost more than the rest of its start): while it watches it imports only os, select, sys and
time, and it loads site-packages and the package's repair code only when a file needs repairing.

A simulator run (one process) shares one watchdog per process (`guard`): started at the process's
first run, it is told over a socket when each run starts (with the run's lock, passed as a
descriptor, so the lock stays held if the process dies) and when it ends; when the process dies it
repairs the runs still going exactly as a run's own watchdog would. A sweep of many runs thus starts
one watchdog, not one per run (each start cost about as much CPU as a 10-gradient run).
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time

POLL_SECONDS = 0.05
# The folder that holds the asyncopt_mpi package, for the repair code's imports when run as a script.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start(path: str, pids: list[int], hosts: list[str], lock=None, staged: str | None = None):
    """Start the watchdog for `path` (a subprocess.Popen, None if it cannot start); pids and hosts
    are per rank (rank 0 is the writer).

    `lock` (a locks.ResultsLock) is shared with the watchdog, which keeps it until it is done.
    """
    import json
    import subprocess

    local = [f"{rank}:{pid}" for rank, (pid, host) in enumerate(zip(pids, hosts)) if host == hosts[0]]
    # -P: the script's own folder (runtime/) is not put on sys.path, so its modules shadow nothing;
    # -S: no site module until a repair needs site-packages (_importable).
    command = [sys.executable, "-S", "-P", os.path.abspath(__file__), "--file", os.path.abspath(path)]
    fds: tuple[int, ...] = ()
    if lock is not None and lock.fd >= 0:
        fds = (lock.inheritable_fd(),)
        command += ["--lock-fd", str(lock.fd), "--lock-path", os.path.abspath(lock.lock_path)]
    if staged and os.path.abspath(staged) != os.path.abspath(path):
        command += ["--staged", os.path.abspath(staged)]
    if any(host != hosts[0] for host in hosts):  # ranks elsewhere report to us (host_watch.py)
        from asyncopt_mpi.runtime import host_watch

        command += ["--elsewhere", json.dumps({"host": hosts[0], "ranks": host_watch.elsewhere(pids, hosts)})]
    from asyncopt_mpi.results import locking_environment  # the repair opens the file as the run did

    try:
        return subprocess.Popen(command + local, stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=fds,
                                env=locking_environment())
    except OSError:
        return None  # best effort: without it a killed run's file is repaired by `asyncopt evaluate`


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its launcher) is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_for_first_end(ranks: dict[int, int]) -> list[int]:
    """Block until one of `ranks` ends; the ranks seen ending first (a host_watch reporter's wait)."""
    return _wait_for_ends(ranks, until=None)[0]


def _wait_for_ends(ranks: dict[int, int], until: int | None = 0, times: list[float] | None = None) -> list[list[int]]:
    """Block until rank `until` ends (any rank: None); the ranks that ended, in groups in the order they ended.

    `times` receives the wall-clock time each group was seen.

    Each rank's process file descriptor (Linux >= 5.3) sits in an epoll set, whose ready list
    keeps the order in which the ranks ended even when we wake only after several of them (a
    loaded machine, the launcher killing the other ranks at once): every such rank is a group of
    its own, so the rank that died first is told apart from the ones the launcher killed after
    it. A rank without a descriptor (already gone when we started, or no pidfd_open) is polled;
    those seen ending between two polls form one group, and which of them ended first is unknown.
    """
    ended: list[list[int]] = []
    seen: set[int] = set()
    watched: dict[int, int] = {}  # descriptor -> rank
    polled: dict[int, int] = {}  # rank -> pid
    for rank, pid in ranks.items():
        try:
            watched[os.pidfd_open(pid)] = rank
        except (AttributeError, OSError):
            polled[rank] = pid
    ready = select.epoll() if watched else None
    for descriptor in watched:
        ready.register(descriptor, select.EPOLLIN)
    while (until not in seen) if until is not None else not seen:
        if ready is None:
            time.sleep(POLL_SECONDS)
            events = []
        else:
            events = ready.poll(POLL_SECONDS if polled else 1.0)
        groups = [sorted(rank for rank, pid in polled.items() if rank not in seen and not alive(pid))]
        for descriptor, _ in events:  # in the order the ranks ended
            ready.unregister(descriptor)
            os.close(descriptor)
            groups.append([watched.pop(descriptor)])
        for group in groups:
            if group:
                ended.append(group)
                if times is not None:
                    times.append(time.time())
                seen.update(group)
    for descriptor in watched:
        os.close(descriptor)
    if ready is not None:
        ready.close()
    return ended


def watch(path: str, ranks: dict[int, int], staged: str | None = None, lock_fd: int | None = None,
          elsewhere: dict | None = None) -> None:
    times: list[float] = []
    ended = _wait_for_ends(ranks, times=times)
    repair(path, ranks, ended, times, staged, lock_fd, elsewhere)


def repair(path: str, ranks: dict[int, int], ended: list[list[int]], times: list[float], staged: str | None = None,
           lock_fd: int | None = None, elsewhere: dict | None = None) -> None:
    """The ranks ended as `ended` says (groups in the order seen, at `times`): close `path` as failed
    unless it was closed cleanly; a staged file and the disk reserve go."""
    if lock_fd is not None:
        _mark_repairing(lock_fd)  # refusals now name this process
    time.sleep(0.2)  # let the file system settle after the writer's death
    _importable()
    from asyncopt_mpi import side_files
    from asyncopt_mpi.errors import UserError
    from asyncopt_mpi.results import is_cleanly_closed, recover

    if staged:
        side_files.remove(staged)  # the run died before it started cleanly: the old file stays
    side_files.remove(path + side_files.RESERVE_SUFFIX)  # the writer's reserve of disk space
    try:
        if not os.path.exists(path) or is_cleanly_closed(path):
            return
    except UserError:
        return  # not a file we can repair (truncated by another hand): leave it
    first = ended[0]
    names = ", ".join(f"rank {rank} (pid {ranks[rank]})" for rank in first)
    if first == [0]:
        reason = "killed: rank 0 ended without closing the file"
    elif len(first) == 1:
        reason = f"killed: {names} ended first, and the MPI job ended without closing the file"
    else:
        reason = (f"killed: the MPI job ended without closing the file; {names} were seen ending together "
                  f"first, and which of them ended first cannot be told")
    if elsewhere:  # ranks on other hosts: their reporters say whether one of them ended first
        from asyncopt_mpi.runtime import host_watch

        reason = host_watch.first_ended_reason(path, first, times[0], ranks, elsewhere["ranks"], elsewhere["host"])
    try:
        recover(path, reason)
    except UserError:
        pass


def _importable() -> None:
    """Make the package and its libraries importable when this file runs as a script: site-packages
    (started with -S) and the folder holding the package (an installed package is in site-packages)."""
    if "site" not in sys.modules:
        import site

        site.main()
    if PACKAGE_PARENT not in sys.path:
        sys.path.append(PACKAGE_PARENT)


def _mark_repairing(descriptor: int) -> None:
    import datetime
    import socket

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    text = f"host={socket.gethostname()} pid={os.getpid()} started={started} repairing\n".encode()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, text, 0)


OPTIONS = ("--file", "--lock-fd", "--lock-path", "--staged", "--elsewhere")


def parse(argv: list[str]) -> tuple[dict[str, str], dict[int, int]]:
    """The command line `start` writes: OPTIONS, each with its value (--file required), then
    rank:pid pairs on this host (rank 0 writes the file). argparse is not imported: it would cost
    more than the rest of the watchdog's start, in every run."""
    options: dict[str, str] = {}
    at = 0
    while at < len(argv) and argv[at] in OPTIONS and at + 1 < len(argv):
        options[argv[at]] = argv[at + 1]
        at += 2
    pairs = [item.split(":") for item in argv[at:]]
    if "--file" not in options or not pairs or any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"usage: guardian.py --file PATH [{' '.join(f'{name} VALUE' for name in OPTIONS[1:])}] "
                         "RANK:PID...")
    return options, {int(rank): int(pid) for rank, pid in pairs}


# ---------------------------------------------------------------- one watchdog per process (simulator runs)

SHARED = "--shared"  # the command line of a process's shared watchdog: --shared PID DESCRIPTOR
MESSAGE_BYTES = 1 << 16  # a message names a run's files: paths of at most 4096 characters each


class Guard:
    """One run registered with its process's shared watchdog; `stop` once its file is closed."""

    def __init__(self, channel: socket.socket, number: int):
        self.channel, self.number = channel, number

    def stop(self) -> None:
        """The run's file is closed: the watchdog forgets it (and closes its copy of the lock)."""
        try:
            self.channel.send(f"done\0{self.number}".encode())
        except OSError:
            pass  # the watchdog is gone: nothing left to tell


class _Shared:
    """This process's end of its shared watchdog."""

    def __init__(self, process, channel: socket.socket):
        self.process, self.channel, self.pid, self.runs = process, channel, os.getpid(), 0


_shared: _Shared | None = None


def guard(path: str, lock=None, staged: str | None = None) -> Guard | None:
    """Register a run of this process (its results `path`, staged file and lock, a locks.ResultsLock)
    with the process's shared watchdog, started at the first run; None if it cannot start (best
    effort, as `start`)."""
    global _shared
    if _shared is None or _shared.pid != os.getpid() or _shared.process.poll() is not None:
        _shared = _start_shared()
        if _shared is None:
            return None
    from asyncopt_mpi.results import locking_environment  # the repair opens the file as the run did

    _shared.runs += 1
    descriptors = [lock.fd] if lock is not None and lock.fd >= 0 else []
    fields = ["run", str(_shared.runs), os.path.abspath(path),
              os.path.abspath(staged) if staged and os.path.abspath(staged) != os.path.abspath(path) else "",
              os.path.abspath(lock.lock_path) if descriptors else "",
              locking_environment().get("HDF5_USE_FILE_LOCKING", "")]
    try:
        socket.send_fds(_shared.channel, ["\0".join(fields).encode()], descriptors)
    except OSError:
        _shared = None
        return None
    return Guard(_shared.channel, _shared.runs)


def _start_shared() -> _Shared | None:
    import subprocess

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # As `start`: no site module, the script's folder not on sys.path, a session of its own.
    command = [sys.executable, "-S", "-P", os.path.abspath(__file__), SHARED, str(os.getpid()), str(theirs.fileno())]
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True,
                                   pass_fds=(theirs.fileno(),))
    except OSError:
        ours.close()
        return None
    finally:
        theirs.close()
    return _Shared(process, ours)


def serve(parent: int, channel: socket.socket) -> None:
    """The shared watchdog: follow the runs `parent` registers until it ends, then repair the ones
    it left running and release their locks."""
    runs: dict[str, list[str]] = {}  # run number -> its fields, then its lock's descriptor (or "")
    try:
        ended = os.pidfd_open(parent)
    except OSError:  # already gone (or no pidfd_open): polled
        ended = None
    ready = select.epoll()
    ready.register(channel.fileno(), select.EPOLLIN)
    if ended is not None:
        ready.register(ended, select.EPOLLIN)
    while True:
        events = [descriptor for descriptor, _ in ready.poll(POLL_SECONDS if ended is None else -1)]
        if ended in events or (ended is None and not alive(parent)):
            break
        if channel.fileno() in events and not _receive(channel, runs):
            ready.unregister(channel.fileno())  # the parent closed its end: only its end is left to see
    channel.setblocking(False)
    while _receive(channel, runs):  # what the parent said before it ended
        pass
    when = time.time()
    for path, staged, lock_path, locking, descriptor in runs.values():
        if locking:
            os.environ["HDF5_USE_FILE_LOCKING"] = locking
        lock_fd = int(descriptor) if descriptor else None
        try:
            repair(path, {0: parent}, [[0]], [when], staged or None, lock_fd)
        finally:
            if lock_fd is not None:
                _importable()
                from asyncopt_mpi.locks import release_descriptor

                release_descriptor(lock_path, lock_fd)


def _receive(channel: socket.socket, runs: dict[str, list[str]]) -> bool:
    """Take one message into `runs`; False at the end of the channel or when nothing is waiting."""
    try:
        data, descriptors, _, _ = socket.recv_fds(channel, MESSAGE_BYTES, 1)
    except (BlockingIOError, ConnectionResetError):
        return False
    if not data:
        return False
    kind, number, *fields = data.decode().split("\0")
    if kind == "run":
        runs[number] = [*fields, str(descriptors[0]) if descriptors else ""]
    elif kind == "done" and number in runs:
        descriptor = runs.pop(number)[-1]
        if descriptor:
            os.close(int(descriptor))
    return True


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [SHARED] and len(argv) == 3:
        serve(int(argv[1]), socket.socket(fileno=int(argv[2])))
        return
    options, ranks = parse(argv)
    lock_fd = int(options["--lock-fd"]) if "--lock-fd" in options else None
    elsewhere = None
    if "--elsewhere" in options:  # rank 0's host and the ranks per other host
        import json

        elsewhere = json.loads(options["--elsewhere"])
    try:
        watch(options["--file"], ranks, options.get("--staged"), lock_fd, elsewhere)
    finally:
        if lock_fd is not None and options.get("--lock-path"):
            _importable()
            from asyncopt_mpi.locks import release_descriptor

            release_descriptor(options["--lock-path"], lock_fd)


if __name__ == "__main__":
    main()
