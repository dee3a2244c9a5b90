"""A plugin method whose hooks misbehave on request (method.mode), for the tests of hook failures and of
runs that never start; HOOK_MARK (an environment variable) names a file it creates once it is stuck."""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
import time

from conftest import asyncopt_command, project_lines

PLUGIN = textwrap.dedent('''
    import os
    import sys
    import time

    import asyncopt_mpi as ao


    class Odd(BaseException):
        pass


    def stuck():
        """Say so with this process's id (the test may then signal it), and never come back."""
        mark = os.environ.get("HOOK_MARK")
        if mark:
            with open(mark + ".new", "w") as handle:
                handle.write(str(os.getpid()))
            os.replace(mark + ".new", mark)
        while True:
            time.sleep(3600)


    @ao.register_method
    class HookTest(ao.Method):
        name = "hook_test"
        description = "asynchronous SGD whose hooks misbehave as method.mode says"
        params = {"mode": "none"}

        def start(self, server):
            if self.options["mode"] == "start":
                raise RuntimeError("no first jobs today")
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, 1))

        def on_result(self, server, worker, result):
            mode = self.options["mode"]
            if mode == "exit":
                sys.exit(7)
            if mode == "interrupt":
                raise KeyboardInterrupt
            if mode == "odd":
                raise Odd("an odd one")
            if mode == "hang" and server.version >= 3:
                stuck()
            server.step(result, self.lr, grads_used=1, max_delay=result.delay)
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, 1))
            return True


    @ao.register_method
    class SlowSetUp(HookTest):
        name = "slow_set_up"
        description = "a method whose construction never ends"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stuck()
''')


def write_plugin(folder) -> str:
    path = os.path.join(str(folder), "hook_test.py")
    with open(path, "w") as handle:
        handle.write(PLUGIN)
    return path


def loaded_plugin(tmp_path_factory) -> str:
    """The plugin's file, one per test session, imported into this process (once: its method names are
    taken then) without being listed in the configs made afterwards."""
    from asyncopt_mpi.plugins import load_plugins

    folder = tmp_path_factory.getbasetemp() / "hook_plugin"
    folder.mkdir(exist_ok=True)
    path = write_plugin(folder)
    load_plugins([path], requested=False)
    return path


def digest(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def signal_when_stuck(command: list[str], mark, number: int, timeout: float = 120) -> subprocess.CompletedProcess:
    """Start `command` (with HOOK_MARK=mark) and send signal `number` to the process that is stuck in the
    plugin (the simulator, or MPI rank 0: Open MPI's launcher kills its ranks a quarter of a second after
    a SIGTERM of its own) once it says so; the finished process (a hang fails the test after `timeout` s)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HOOK_MARK": str(mark)})
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(mark) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None and os.path.exists(mark):
            with open(mark) as handle:
                os.kill(int(handle.read()), number)
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def lines_of(stderr: str) -> list[str]:
    """The project's lines (conftest.project_lines) without the lone NUL Open MPI's launcher may print."""
    return [line for line in project_lines(stderr) if line.strip("\x00").strip()]


def run_command(*args: str) -> list[str]:
    return asyncopt_command() + ["run", *args]
