"""Many `asyncopt` commands, each in a process of its own, without paying Python's and numpy's start-up each time.

A server process (this file run as a script) imports the package once, as the command does, then
forks one child per command: the child becomes `asyncopt ARGS` (its own session, working folder,
address-space limit, stdin /dev/null, stdout and stderr to files) and runs the command's own
`main()`, then ends as the interpreter would (an uncaught exception prints its traceback and
exits 1, `sys.exit` gives the status, non-daemon threads are waited for, atexit functions run)
but without tearing down every loaded module (a tenth of a second of CPU per command). A crash,
hang or memory limit ends the child only. The child gets the caller's environment and working
folder as they are at the call (what the package reads while it is imported, the server read at
its own start). The server waits for each child under a timeout (then SIGKILLs its session)
and answers with its exit status and output; `CommandPool` starts servers as commands run at the
same time need them, one command at a time on each. A test about start-up itself (imports, early
signals) still starts a fresh process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import queue
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading

# Imported by the server before it forks: what the commands load lazily (their own start-up).
PRELOAD = ("asyncopt_mpi.cli", "asyncopt_mpi.validate", "asyncopt_mpi.runtime.session", "asyncopt_mpi.summary",
           "asyncopt_mpi.evaluate", "asyncopt_mpi.final_stats", "asyncopt_mpi.sweep", "asyncopt_mpi.plot",
           "asyncopt_mpi.theory", "h5py", "scipy.optimize")
PLOTTING = ("matplotlib.figure", "matplotlib.style", "matplotlib.backends.backend_agg")  # the optional [plot] extra


class CommandPool:
    """Command servers: `run` takes a free one, or starts one when all are busy."""

    def __init__(self):
        self.servers: queue.Queue = queue.Queue()
        # Servers start as this process is now, not as a test that first needs one has changed it.
        self.environment, self.folder = dict(os.environ, PYTHONIOENCODING="utf-8"), os.getcwd()

    def _server(self) -> subprocess.Popen:
        try:
            return self.servers.get_nowait()
        except queue.Empty:
            return subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, encoding="utf-8", env=self.environment, cwd=self.folder,
                                    start_new_session=True)  # a Ctrl-C of the tests ends it through run()

    def run(self, args: list[str], cwd: str | None = None, timeout: float = 120,
            memory_limit: int | None = None) -> subprocess.CompletedProcess:
        """`asyncopt ARGS` in a forked child; returncode None after a timeout (the child was killed)."""
        server, pid = self._server(), None
        try:
            request = {"args": args, "cwd": cwd or os.getcwd(), "env": dict(os.environ), "timeout": timeout,
                       "memory_limit": memory_limit}
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            pid = _answer(server)["pid"]
            done = _answer(server)
        except BaseException:
            # Interrupted (a test's own timeout) or the server died: neither it nor its command may go on.
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            server.kill()
            server.wait()
            raise
        self.servers.put(server)
        return subprocess.CompletedProcess(["asyncopt", *args], done["code"], done["stdout"], done["stderr"])

    def close(self) -> None:
        """End the idle servers (a server still running a command ends with the tests' process)."""
        while not self.servers.empty():
            server = self.servers.get()
            server.stdin.close()
            server.wait(timeout=60)

    def __enter__(self) -> "CommandPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _answer(server: subprocess.Popen) -> dict:
    line = server.stdout.readline()
    if not line:
        raise RuntimeError(f"the command server ended (exit {server.wait()})")
    return json.loads(line)


# ------------------------------------------------------------------ the server


def _become_the_command(request: dict, stdout: int, stderr: int) -> None:
    """In the forked child: the process state `python -m asyncopt_mpi ARGS` would start with."""
    os.setsid()  # the server kills the child's whole session after a timeout
    if request["memory_limit"]:
        resource.setrlimit(resource.RLIMIT_AS, (request["memory_limit"], request["memory_limit"]))
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first (plugins named as modules)
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    sys.argv = ["asyncopt", *request["args"]]


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit status as subprocess gives it (-n after signal n); None: killed after `timeout` s."""
    handle = os.pidfd_open(pid)
    try:
        ended = bool(select.select([handle], [], [], timeout)[0])
    finally:
        os.close(handle)
    if not ended:
        os.killpg(pid, signal.SIGKILL)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return code if ended else None


def serve() -> dict | None:
    """Answer requests until stdin ends (None); in a forked child, the request it is to run."""
    answers = sys.stdout
    while line := sys.stdin.readline():
        request = json.loads(line)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _become_the_command(request, out.fileno(), err.fileno())
                return request
            answers.write(json.dumps({"pid": pid}) + "\n")  # so that the caller can end it if interrupted
            answers.flush()
            code = _wait(pid, request["timeout"])
            texts = []
            for stream in (out, err):
                stream.seek(0)
                texts.append(stream.read().decode("utf-8", "replace"))
        answers.write(json.dumps({"code": code, "stdout": texts[0], "stderr": texts[1]}) + "\n")
        answers.flush()
    return None


def _exit_status(code: object) -> int:
    """The status the interpreter gives `sys.exit(code)` (a message: printed, status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_command() -> int:
    """The command's `main()` and the interpreter's exit steps that matter to it; its exit status."""
    from asyncopt_mpi.cli import main

    try:
        main()
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:  # noqa: BLE001 (what an uncaught exception does)
        sys.excepthook(*sys.exc_info())
        status = 1
    threading._shutdown()  # the interpreter waits for non-daemon threads: a command that leaves one hangs
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    # The package sets up the command's process (one BLAS thread, the MemoryError line, stop signals
    # while starting) when it is the command: so is the server, and each child inherits it.
    sys.argv[0] = "asyncopt"
    sys.path[0] = os.getcwd()  # not tests/: the modules the command sees
    for name in PRELOAD:
        importlib.import_module(name)
    for name in PLOTTING:
        try:
            importlib.import_module(name)
        except ImportError:  # without the extra, plot refuses in one line: the children load nothing
            break
    if serve() is not None:
        os._exit(run_command())
