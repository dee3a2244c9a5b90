"""`asyncopt sweep`: the product of parameter grids and seeds, run into one folder (sim in-process, MPI by launching).

A run that diverges is a result of the grid, not a failure of the sweep: each run's outcome is
its results file's status (completed, stopped, diverged, failed), or `failed` when it left no
file (e.g. refused). Over MPI each run gets `workers.n + 1` ranks, so `--grid workers.n=...` works.

A stop signal (SIGINT, SIGTERM, SIGUSR1) to the sweep stops the runs in progress the documented
way (each file closed with status stopped; pool children and mpiexec are sent SIGTERM), no
further run starts (those are `not run`), and `sweep` raises SweepStopped. A pool child watches
the sweep's process: if the sweep dies (SIGKILL), the child stops its run the same way and leaves.
With `resume` (a reproduction's --resume) a run whose file already holds that very run, finished, is kept
rather than run again (finished_run), and any other file in a run's place is replaced.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .config import Config, check_output_placeholders, parse_value
from .errors import AsyncoptError, ConfigError, UserError
from .validate import load_config

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
NOT_RUN = "not run"  # the status of a run a stop signal kept from starting
_stop_signal: int | None = None  # the stop signal this process (the sweep, or one of its pool children) received
_launched: set[int] = set()  # the mpiexec processes of the MPI runs in progress


# Bounds on what one sweep launches (a typo such as --seeds 1000000 would otherwise plan for hours).
MAX_RANKS = 4096
MAX_RUNS = 10_000
MAX_PROCESSES = 256


@dataclass
class SweepRun:
    name: str
    overrides: list[str]
    path: str
    method: str = ""
    ranks: int = 0  # MPI: workers.n + 1 (or --ranks when the config leaves workers.n open)
    # The run's config as planned (its output.path set), which an in-process run uses instead of reading
    # it again (2-3 ms a run); None once used, and for runs in other processes.
    config: Config | None = field(default=None, repr=False, compare=False)


@dataclass
class Outcome:
    """How one run of a sweep ended: its exit status and its file's status."""

    name: str
    code: int
    status: str  # completed | stopped | diverged | failed (also: no file)
    method: str = ""
    path: str = ""
    reused: bool = False  # resume: the file held this very run, finished, and was kept (finished_run)


def file_status(path: str) -> str:
    """The status a run left in its results file ('failed' when there is no readable file)."""
    from .results import open_results

    try:
        with open_results(path) as handle:
            status = handle.attrs.get("status", "failed")
    except Exception:  # refused before the file existed, or left unreadable: not a result
        return "failed"
    return status.decode() if isinstance(status, bytes) else str(status)


REUSED_STATUSES = ("completed", "diverged")  # ended by the run's own rule: a stop rule, or divergence


def finished_run(config_path: str | None, run: SweepRun) -> Outcome | None:
    """The Outcome of a file at `run.path` that holds this very run, finished, to keep instead of running it again;
    None when the run must run (no file, a link, stopped by a signal, failed, killed, damaged, or another config).

    Finished: closed by its writer with status completed or diverged, its metrics computed and every attribute and
    table readable (check_intact). This very run: its stored config is the planned one (output.path aside, so a
    moved folder still counts), whatever the file is called. A file a live run writes is refused (LockedError).
    """
    import stat

    from .config import parse_stored_config, parse_toml
    from .locks import LockedError, ResultsLock
    from .parameters import flat_config
    from .results import DAMAGE, check_intact, decode_attrs, is_cleanly_closed, open_results

    try:
        if not stat.S_ISREG(os.lstat(run.path).st_mode):
            return None
    except OSError:
        return None
    planned = run.config or load_config(config_path, run.overrides, backend="sim")
    lock = ResultsLock.acquire(run.path, "reuse")  # refused, naming the writer, while a run writes the file
    try:
        if not is_cleanly_closed(run.path):  # its writer died: the run that replaces it repairs nothing
            return None
        with open_results(run.path) as handle:
            check_intact(handle)
            attrs = decode_attrs(handle.attrs)
            evaluated = "metrics" in handle and handle["metrics/time"].shape == handle["snapshots/time"].shape
        stored = flat_config(parse_stored_config(attrs.get("config", ""), run.path))
    except LockedError:
        raise
    except (UserError, *DAMAGE):  # not a results file, truncated, damaged: run it again
        return None
    finally:
        lock.release()
    status = attrs.get("status")
    if status not in REUSED_STATUSES or not evaluated:
        return None
    if stored != flat_config(parse_toml(planned.to_toml(), f"run {run.name}")):
        return None
    return Outcome(run.name, 0, status, run.method, run.path, reused=True)


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """`section.key=v1,v2,...` items as (key, [values as written])."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or "." not in key or not values:
            raise ConfigError(f"--grid {item!r}: expected section.key=value1,value2,...")
        grid.append((key.strip(), [value.strip() for value in values.split(",") if value.strip()]))
    return grid


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text)


def plan_runs(config_path: str | None, grid_items: list[str], seeds: int, out: str, overrides: list[str],
              backend: str, ranks: int = 0) -> list[SweepRun]:
    """Every combination, each checked like `asyncopt run` would, before anything runs.

    Over MPI a run takes `workers.n + 1` ranks, or `ranks` when its config leaves workers.n open.
    """
    grid = parse_grid(grid_items)
    keys = [key for key, _ in grid]
    runs = []
    for values in itertools.product(*(values for _, values in grid)):
        for seed in range(seeds):
            chosen = [f"{key}={value}" for key, value in zip(keys, values)]
            seeding = [f"workers.seed={seed}"] if seeds > 1 else []
            config = load_config(config_path, overrides + chosen + seeding, backend="sim")
            parts = [config.method.name] + [
                f"{key.split('.', 1)[1]}={_slug(str(parse_value(value)))}"
                for key, value in zip(keys, values) if key != "method.name"
            ] + ([f"seed{seed}"] if seeds > 1 else [])
            name = "-".join(parts)
            path = os.path.join(out, name + ".h5")
            run_ranks = _ranks(config.workers.n, ranks, name) if backend == "mpi" else 0
            check_output_placeholders(path)  # as the output.path override below is checked when read again
            config.output.path = path
            runs.append(SweepRun(name, overrides + chosen + seeding + [f"output.path={path}"], path,
                                 config.method.name, run_ranks, config if backend == "sim" else None))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ConfigError("--grid: two combinations give the same run name; make the values distinct")
    return runs


def _ranks(workers: int | None, ranks: int, name: str) -> int:
    if workers is None:
        if not ranks:
            raise ConfigError(f"run {name}: workers.n is not set; set it (each run gets workers.n + 1 ranks) "
                              "or give --ranks N+1")
        return ranks
    if ranks and ranks != workers + 1:
        raise ConfigError(f"--ranks {ranks}: run {name} has workers.n = {workers}, i.e. {workers + 1} ranks; "
                          "drop --ranks (each run gets workers.n + 1 ranks)")
    return workers + 1


class SweepStopped(AsyncoptError):
    """A stop signal ended the sweep: `outcomes` holds every run's, the ones not started `not run`."""

    def __init__(self, number: int, outcomes: list["Outcome"]):
        self.signal, self.outcomes = number, outcomes
        self.exit_code = 0 if number == signal.SIGUSR1 else 128 + number  # as for one run
        done = sum(outcome.status != NOT_RUN for outcome in outcomes)
        super().__init__(f"stopped by {signal.Signals(number).name}: {done} of {len(outcomes)} runs ran "
                         f"(the ones in progress stopped cleanly), {len(outcomes) - done} not run")


def _note_stop(number: int, frame=None) -> None:
    global _stop_signal
    if _stop_signal is None:
        _stop_signal = number


def _stopped_by_signal(code: int, status: str, reason: str = "") -> int | None:
    """The signal that stopped a run (its exit status 128+n, or 0 and status stopped after SIGUSR1: one this
    process noted, or one an in-process run's own handlers had, as its stop reason says)."""
    if code > 128:
        return code - 128
    usr1 = _stop_signal == signal.SIGUSR1 or reason.startswith(f"signal: {signal.SIGUSR1.name} ")
    return signal.SIGUSR1 if status == "stopped" and usr1 else None


def _run_sim(task: tuple[str | None, SweepRun, bool]) -> Outcome:
    from .runtime.session import run_sim

    config_path, run, overwrite = task
    if _stop_signal is not None:
        return Outcome(run.name, 0, NOT_RUN, run.method, run.path)
    from .summary import remember_row_values

    config, run.config = run.config or load_config(config_path, run.overrides, backend="sim"), None
    closed: list = []  # the run's SimOutcome, when it closed its file itself
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_sim(config, overwrite=overwrite, inputs=(config_path,) if config_path else (), closed=closed)
    status = (closed[0].status if closed else file_status(run.path)) if code in (0, 1) or code > 128 else "failed"
    if closed and closed[0].row_values is not None:  # the sweep's summary then reads nothing of the file
        remember_row_values(run.path, *closed[0].row_values)
    number = _stopped_by_signal(code, status, closed[0].reason if closed else "")
    if number is not None:
        _note_stop(number)  # the run's own handlers had the signal: no later run starts here
    _freeze_what_stays()
    return Outcome(run.name, code, status, run.method, run.path)


_froze = False  # _freeze_what_stays ran in this process (asking gc.get_freeze_count walks every frozen object)


def _freeze_what_stays() -> None:
    """After this process's first run, hide what outlives every run from the garbage collector.

    Each run ends with a full collection (session.simulate) that frees its reference cycles; it would
    otherwise scan every object of numpy, h5py and the package's modules each time (most of its cost).
    The run freed its own objects already, so what is frozen here is what stays for the whole sweep
    (`sweep` unfreezes it at its end; a pool child keeps it until it ends).
    """
    global _froze
    if not _froze and gc.get_freeze_count() == 0:
        gc.freeze()
    _froze = True


def _run_in_child(task: tuple[str | None, SweepRun, bool]) -> Outcome:
    outcome = _run_sim(task)
    if _sweep_gone.is_set():
        os._exit(outcome.code)  # nobody to answer (and no traceback of a broken pipe)
    return outcome


_sweep_gone = threading.Event()  # set in a pool child when the sweep has died


def _child_stop(number: int, frame) -> None:
    """A pool child between runs: record the signal (no run starts after it); leave if the sweep is gone."""
    _note_stop(number)
    if _sweep_gone.is_set():
        os._exit(0 if number == signal.SIGUSR1 else 128 + number)


def _watch_sweep(sweep: int) -> None:
    """In a pool child: when the sweep process dies (even by SIGKILL), stop like after a SIGTERM."""
    try:
        descriptor = os.pidfd_open(sweep)
    except OSError:  # already gone
        descriptor = None
    if descriptor is not None:
        select.select([descriptor], [], [])  # readable once the process has ended
    _sweep_gone.set()
    os.kill(os.getpid(), signal.SIGTERM)  # a run in progress stops cleanly; between runs the child leaves


def _start_child(sweep: int, requested: list[str], loaded: list[str]) -> None:
    """A pool child: stop signals recorded between runs, a stop of its own if the sweep dies, plugins."""
    from .plugins import load_plugins

    for number in STOP_SIGNALS:
        signal.signal(number, _child_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked in the forkserver (_pool_outcomes)
    threading.Thread(target=_watch_sweep, args=(sweep,), name="sweep-watch", daemon=True).start()
    load_plugins(requested)
    load_plugins([spec for spec in loaded if spec not in requested], requested=False)


def _pool_outcomes(config_path: str | None, runs: list[SweepRun], overwrite: bool, processes: int) -> list[Outcome]:
    """The runs on `processes` children, at most one each at a time, so that after a stop signal none starts."""
    from multiprocessing import forkserver, resource_tracker

    from .plugins import implied_plugins, loaded_plugins, requested_plugins

    outcomes = [Outcome(run.name, 0, NOT_RUN, run.method, run.path) for run in runs]
    errors: list[BaseException] = []
    slots = threading.Semaphore(processes)

    def finished(index: int, outcome: Outcome | None = None) -> None:
        if outcome is not None:
            outcomes[index] = outcome
        slots.release()

    # Children come from a forkserver, never forked from this process: a fork copies whatever lock
    # another thread holds at that moment (an HDF5 writer's, BLAS's, a test runner's), and a forked
    # child waiting on it never runs (seen under pytest). So they import the plugins again, and the
    # modules that registered the runs' methods (implied_plugins). The pool is closed, never
    # terminated: its children keep stop signals for their runs.
    loaded = list(dict.fromkeys([*loaded_plugins(), *(spec for run in runs for spec in implied_plugins(run.method, ""))]))
    # The forkserver (started with this process's first pool) must live through a stop signal to the whole process
    # group (Slurm's preemption, scancel): when it dies, the pool takes its children for ended and, replacing them
    # through it, fails (a traceback) and waits for ever. So it starts with the stop signals blocked (held, not
    # lost, here), as the children it forks are until _start_child has their handlers in place; the resource
    # tracker first, as starting it unblocks SIGINT and SIGTERM in this thread.
    resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    pool = multiprocessing.get_context("forkserver").Pool(processes, initializer=_start_child,
                                                          initargs=(os.getpid(), requested_plugins(), loaded))
    try:
        for index, run in enumerate(runs):
            slots.acquire()  # a signal's handler runs meanwhile; the wait goes on until a run ends
            if _stop_signal is not None or errors:
                break
            pool.apply_async(_run_in_child, ((config_path, run, overwrite),),
                             callback=lambda outcome, index=index: finished(index, outcome),
                             error_callback=lambda exc: (errors.append(exc), finished(-1)))
    except BaseException:  # e.g. a caller's timeout: the runs in progress stop now, cleanly
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGTERM)
        raise
    finally:
        pool.close()
        pool.join()
    if errors:
        raise errors[0]
    return outcomes


@contextlib.contextmanager
def on_stop_signals(handle: Callable[[int, object], None]) -> Iterator[None]:
    """Within: `handle(number, frame)` takes the stop signals; the handlers before are put back after."""
    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _stoppable(children: Callable[[], Iterable[int]]) -> Iterator[None]:
    """Within: a stop signal is recorded and SIGTERM sent to `children()` (their runs stop cleanly)."""
    def handle(number: int, frame) -> None:
        _note_stop(number)
        for pid in list(children()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)

    with on_stop_signals(handle):
        yield


def _run_mpi(config_path: str | None, run: SweepRun, mpiexec: str, overwrite: bool = False) -> Outcome:
    from .plugins import requested_plugins

    command = [mpiexec, "-n", str(run.ranks), sys.executable, "-m", "asyncopt_mpi", "run", "--quiet"]
    command += ["--overwrite"] if overwrite else []
    command += [item for spec in requested_plugins() for item in ("--plugin", spec)]  # a [plugins] table travels in the config
    command += ([config_path] if config_path else []) + [item for override in run.overrides for item in ("--set", override)]
    if _stop_signal is not None:
        return Outcome(run.name, 0, NOT_RUN, run.method, run.path)
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:  # the launcher is missing or not executable
        raise ConfigError(f"--mpiexec {mpiexec!r}: cannot start it ({exc.strerror}); give the path of mpiexec or srun") from None
    _launched.add(process.pid)
    try:
        _, stderr = process.communicate()
    finally:
        _launched.discard(process.pid)
    code = process.returncode
    status = file_status(run.path) if code in (0, 1) or code > 128 else "failed"
    if code != 0 and status not in ("diverged", "stopped"):
        sys.stderr.write(stderr)
    return Outcome(run.name, code, status, run.method, run.path)


def sweep(config_path: str | None, grid_items: list[str], seeds: int, out: str, overrides: list[str],
          backend: str = "sim", ranks: int = 0, processes: int = 1, mpiexec: str = "mpiexec",
          overwrite: bool = False, resume: bool = False) -> list[Outcome]:
    """Run every combination into `out`; returns each run's Outcome in order.
    A results file already in `out` is refused (that run fails) unless `overwrite`; with `resume` a file that
    holds its run, finished, is kept (finished_run: the Outcome says `reused`) and any other is replaced."""
    if backend == "mpi" and ranks and not 2 <= ranks <= MAX_RANKS:
        raise ConfigError(f"--ranks {ranks}: the mpi backend needs 2 to {MAX_RANKS} ranks per run (rank 0 is the server)")
    if not 0 <= seeds <= MAX_RUNS or not 1 <= processes <= MAX_PROCESSES:
        raise ConfigError(f"--seeds {seeds} / --processes {processes}: accepted: 0 to {MAX_RUNS} seeds (0: one run), "
                          f"1 to {MAX_PROCESSES} processes")
    os.makedirs(out, exist_ok=True)
    runs = plan_runs(config_path, grid_items, max(seeds, 1), out, overrides, backend, ranks)
    for run in runs:
        if backend == "mpi" and not 2 <= run.ranks <= MAX_RANKS:
            raise ConfigError(f"run {run.name}: {run.ranks} ranks; the mpi backend needs 2 to {MAX_RANKS} ranks per run")
    global _stop_signal, _froze
    _stop_signal = None
    from .summary import forget_row_values

    forget_row_values()  # a pool child's are its own: the sweep's summary reads those files
    kept = {run.path: outcome for run in runs if resume and (outcome := finished_run(config_path, run)) is not None}
    runs, planned = [run for run in runs if run.path not in kept], runs
    overwrite = overwrite or resume  # what is not kept is replaced
    if backend == "mpi":
        with _stoppable(lambda: _launched):
            outcomes = [_run_mpi(config_path, run, mpiexec, overwrite) for run in runs]
    elif processes > 1:
        with _stoppable(lambda: (child.pid for child in multiprocessing.active_children())):
            outcomes = _pool_outcomes(config_path, runs, overwrite, processes)
    else:
        frozen_before = gc.get_freeze_count()  # a caller's own freeze stays; ours (_freeze_what_stays) ends here
        try:
            with _stoppable(lambda: ()):  # a run in progress has its own handlers; between runs, this one
                outcomes = [_run_sim((config_path, run, overwrite)) for run in runs]
        finally:
            _froze = False
            if not frozen_before:
                gc.unfreeze()
    ran = iter(outcomes)
    outcomes = [kept[run.path] if run.path in kept else next(ran) for run in planned]
    if _stop_signal is not None:
        raise SweepStopped(_stop_signal, outcomes)
    return outcomes


def verdict(outcomes: list[Outcome]) -> tuple[str, int]:
    """The sweep's last line and exit status: diverged runs are results (exit 0) unless every run of
    some method diverged; any other failure makes the status 1."""
    failed = [outcome.name for outcome in outcomes if outcome.code != 0 and outcome.status not in ("diverged", NOT_RUN)]
    diverged = [outcome.name for outcome in outcomes if outcome.status == "diverged"]
    by_method: dict[str, list[str]] = {}
    for outcome in outcomes:
        by_method.setdefault(outcome.method, []).append(outcome.status)
    all_diverged = sorted(method for method, statuses in by_method.items() if set(statuses) == {"diverged"})
    parts = [f"{len(outcomes)} runs: {len(outcomes) - len(failed) - len(diverged)} ended by a stop rule"]
    if diverged:
        parts.append(f"{len(diverged)} diverged ({_names(diverged)})")
    if failed:
        parts.append(f"{len(failed)} failed ({_names(failed)})")
    line = ", ".join(parts)
    if all_diverged:
        line += f"; every run of {', '.join(all_diverged)} diverged: try smaller step sizes"
    return line, 1 if failed or all_diverged else 0


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
