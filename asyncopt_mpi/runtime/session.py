"""A run from start to end for each runtime: set up, run, close the file, evaluate, exit status.

Under MPI every step that can fail is agreed on by all ranks before the next one starts,
so a bad config or data file ends every rank with the same message and status instead of
a hang or an abort.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import signal
import socket
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..config import Config
from ..errors import AsyncoptError, ConfigError, RunError, UserError
from ..evaluate import VALUE_COLUMNS, evaluate_file, evaluate_points, metrics_table
from ..locks import ResultsLock, held, release_fully
from ..logs import log, outcome as closing
from .. import side_files
from ..inputs import shown
from ..output import check_output_path, lock_output, refuse_inputs, staging_path
from ..results import ResumePoint, is_cleanly_closed, read_resume_point, read_snapshots, recover, write_metrics
from ..progress import Progress, SetupProgress
from ..timing import TimingModel
from ..validate import check_memory, load_config
from . import guardian, host_watch
from .mpi.backoff import lower_timer_slack, poll
from .heap import keep_freed_memory
from ..methods.decentralized import graph_attrs, uses_graph
from .mpi.text import library_version
from .mpi.emulation import warn_if_short
from .build import build_context, build_method, build_plan, build_problem, build_shards, compute_f_star, open_writer
from .server import ServerCore, failure_text
from .signals import Interrupted, SignalWatch


def _closing(line: str, good: bool) -> None:
    """A run's closing line: info when it went well (the command prints it on stdout), else warning."""
    closing.log(logging.INFO if good else logging.WARNING, line)


class StoppedBeforeStart(RunError):
    """A stop signal came before the run started (set up, and the method's start returned on every
    rank): its results file was never published. Exit status as for a stopped run: 0 after
    SIGUSR1, else 128 + the signal's number."""

    def __init__(self, number: int, rank: int = 0, left: str = ""):
        where = f" received by rank {rank}" if rank else ""
        super().__init__(f"stopped before the run started ({signal.Signals(number).name}{where}){left}")
        self.rank = rank
        self.exit_code = 0 if number == signal.SIGUSR1 else 128 + number


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AsyncoptError):
        return str(exc)
    culprit = _failing_method(exc)
    if culprit is not None:  # a method's own code (often a plugin's) raised: name the method
        return f"method {culprit[0]!r} failed in {culprit[1]}: {failure_text(exc)}"
    return f"internal error: {failure_text(exc)}"  # a bug: its innermost frame says where


def _failing_method(exc: BaseException) -> tuple[str, str] | None:
    """(name, function) of the outermost method frame `exc` passed through, or None."""
    from ..methods.base import Method

    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if isinstance(owner, Method):
            return type(owner).name, frame.f_code.co_name
    return None


def _exit_code(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, AsyncoptError) else 1


def _failure(text: str, code: int) -> AsyncoptError:
    """An error with `text` that exits with `code` (2: the user's mistake, else the run's failure)."""
    failure = UserError(text) if code == 2 else RunError(text)
    failure.exit_code = code
    return failure


def _left(path: str | None, stopped: bool) -> str:
    """What the line of a run that never started says of its path: '; PATH left as it was' when a
    file is there (an old run's, untouched), '; no results file written' after a stop signal."""
    if path is not None and os.path.exists(path):
        return f"; {side_files.shown(path)} left as it was"
    return "; no results file written" if stopped else ""


def _drive(server: ServerCore, step: Callable[[], None]) -> BaseException | None:
    """Run `step` (the method's start, or the run loop); returns what failed, or None.

    A hook the stop alarm interrupted stops the run (ServerCore.interrupted). Anything else is a
    failure, BaseExceptions too: a method hook's SystemExit or KeyboardInterrupt arrives here as a
    RunError (ServerCore.method_failed), and a real Ctrl-C is only a flag while signals are watched.
    """
    try:
        step()
    except Interrupted as stop:
        server.interrupted(stop)
    except BaseException as exc:
        server.signals.running = None
        return exc
    finally:
        server.signals.disarm()  # the alarm of a stop signal: nothing is left for it to interrupt
    return None


def _finish(server: ServerCore, error: BaseException | None) -> tuple[str, str]:
    if error is not None:
        server.fail(_describe(error))
    status, reason = server.status()
    # Peak memory of this process (rank 0 / the simulator), for the memory benchmarks.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    server.writer.finish(status, reason, server.worker_table(), {"peak_rss_bytes": peak})
    return status, reason


def _summary_line(config: Config, server: ServerCore, status: str, reason: str) -> str:
    return (
        f"{status} ({reason}): {config.method.name} on {config.problem.name}, {server.n_workers} workers, "
        f"{server.now():.3g} s{' virtual' if config.backend == 'sim' else ''}, {server.version} updates, "
        f"{server.grads_received} gradients -> {config.output_path()}"
    )


def prepare_resume(path: str, overrides: list[str], backend: str) -> tuple[Config, ResumePoint]:
    """The config a run resumes with (the file's own, plus overrides) and its last snapshot.

    Takes the file's lock (refused while a run or a repair holds it) and never changes the file:
    everything is validated first, then the run works on a copy (PATH.partial; a file whose writer
    died is repaired into it) that replaces the file once the resumed run has started cleanly.
    The method and the number of workers stay.
    """
    check_output_path(path, resume=True)
    lock = ResultsLock.acquire(path, "resume")
    staged = staging_path(path)
    try:
        for item in overrides:
            key = item.partition("=")[0].strip()
            if key in ("method.name", "problem.name", "workers.n"):
                raise ConfigError(f"--set {key}: a resumed run keeps the {key} it was started with")
        source = path
        if not is_cleanly_closed(path):
            recover(path, target_path=staged)
            source = staged
        point = read_resume_point(source)
        config = load_config(None, overrides, backend=backend, output=path, text=point.config)
        stored = load_config(None, [], backend=backend, output=path, text=point.config)
        if config.problem != stored.problem:
            changed = [key for key in vars(stored.problem) if getattr(config.problem, key) != getattr(stored.problem, key)]
            raise ConfigError(
                f"--set problem.{changed[0] if changed else '...'}: a resumed run keeps the problem it was started "
                "with (its snapshots are points of that problem); start a new run to change it"
            )
        if config.output.compression != stored.output.compression:  # its tables keep the filter they were made with
            raise ConfigError(
                f"--set output.compression: a resumed run keeps the compression it was started with "
                f"({stored.output.compression}); start a new run to change it"
            )
        crash_after = config.workers.crash_after
        if crash_after and len(crash_after) != len(point.workers["jobs"]):
            raise ConfigError(
                f"workers.crash_after: has {len(crash_after)} entries but the run has {len(point.workers['jobs'])} workers"
            )
        if uses_graph(config.method.name, config.graph.topology):
            raise ConfigError(f"--resume: {config.method.name} on a worker graph cannot be resumed yet; start a new run")
        limit = config.stop.time
        if limit is not None and limit <= point.time:
            further = math.floor(point.time) + max(math.ceil(limit), 1)  # beyond the time reached, a whole number
            raise ConfigError(
                f"stop.time = {limit:g} s: the run already reached {point.time:.4g} s; "
                f"continue it with e.g. --set stop.time={further}"
            )
        refuse_inputs(path, _inputs(config), f"--resume {shown(path)}")
        if source == path:
            side_files.copy_into(path, staged)  # never through a link in the staged file's place
        point.staged = staged
    except BaseException:
        side_files.remove(staged)
        lock.release()
        raise
    config.segment = point.segment
    return config, point


def _inputs(config: Config, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Files the run reads, which its results file and side files must never be: `extra` (the
    config file), problem.data (paths joined by ':'), the problem's *_data files (test_data), the
    workers' *_trace files, graph.edges, and the files of the plugins this process imported."""
    data = config.problem.data if config.problem.data and config.problem.data != "synthetic" else ""
    problem_files = [value for key, value in config.problem.params.items() if key.endswith("_data")]
    traces = [value for key, value in vars(config.workers).items() if key.endswith("_trace")]
    files = (*extra, *data.split(":"), *problem_files, *traces, config.graph.edges, *_plugin_files(config))
    return tuple(name for name in files if name and isinstance(name, str))


def _plugin_files(config: Config) -> list[str]:
    """The files of the run's plugins: file plugins as given, module plugins by their `__file__`."""
    from ..plugins import is_file_spec, loaded_plugins, merge

    specs = merge(config.plugins.plugins, loaded_plugins())
    return [spec if is_file_spec(spec) else getattr(sys.modules.get(spec), "__file__", None) or "" for spec in specs]


# ---------------------------------------------------------------- simulator


@dataclass
class SimOutcome:
    """How a simulator run ended: its file, status and stop reason, exit status, closing line."""

    path: str
    status: str
    reason: str
    exit_code: int
    summary: str
    written: bool = True  # False after a write error: the file says failed, whatever `status` says
    # What a summary row of the file shows (summary.remember_row_values's arguments), when the run knows it.
    row_values: tuple | None = None


def run_sim(config: Config, resume: ResumePoint | None = None, quiet: bool = True, overwrite: bool = False,
            inputs: tuple[str, ...] = (), closed: list[SimOutcome] | None = None) -> int:
    """The CLI's simulator run: `simulate`, its closing line or error reported, an exit status.

    `closed` (a sweep's) receives the run's SimOutcome when it closed its file without error."""
    try:
        outcome = simulate(config, resume, quiet, overwrite=overwrite, inputs=inputs)
    except Exception as exc:
        if isinstance(exc, StoppedBeforeStart):
            closing.warning(str(exc))
        else:
            log.error(_describe(exc))
        return _exit_code(exc)
    _closing(outcome.summary, good=outcome.status != "diverged")
    if closed is not None and outcome.written:
        closed.append(outcome)
    return outcome.exit_code


def simulate(config: Config, resume: ResumePoint | None = None, quiet: bool = True, *, overwrite: bool = False,
             inputs: tuple[str, ...] = ()) -> SimOutcome:
    """Run a validated config in the simulator, in this process. Raises ConfigError/DataError for
    bad input; when the run itself fails the file is closed (status failed) and a RunError (or the
    method's own AsyncoptError) is raised with `.path` set.

    The results path is checked and locked before anything is built; an existing file is refused
    unless `overwrite` (then replaced only once the new run has set up and the method's start has
    returned; a stop signal or failure before that leaves it as it was: StoppedBeforeStart, or the
    error, says so). `inputs` are files the run reads (the config), which the results file must not be.
    """
    keep_freed_memory()
    n_workers = config.workers.n
    if n_workers is None and resume is not None:
        n_workers = len(resume.workers["jobs"])
    if n_workers is None:
        raise ConfigError("workers.n: required with --backend sim (the number of simulated workers; the simulator "
                          "is the default outside mpiexec: for N workers over MPI run `mpiexec -n N+1 asyncopt run ...`)")
    if not config.resolved_path:
        config.resolve_output_path(n_workers)
    path = config.output_path()
    if resume is None:
        lock = lock_output(path, overwrite=overwrite, inputs=_inputs(config, inputs), dim=config.problem.dim)
    else:
        lock = ResultsLock.acquire(path)
    try:
        return _simulate_locked(config, resume, quiet, n_workers, lock, replace=overwrite or resume is not None)
    finally:
        if resume is not None and resume.staged and os.path.exists(resume.staged):
            os.unlink(resume.staged)  # the resumed run did not start: the file stays as it was
        lock.release()
        if resume is not None:
            lock.release()  # the one prepare_resume took
        # A run leaves thousands of objects in reference cycles (server, method, results writer,
        # per-worker contexts); only a full collection frees them. Without it a sweep or a loop of
        # ao.run calls grows by megabytes a run and each run gets slower.
        gc.collect()


def _simulate_locked(config: Config, resume: ResumePoint | None, quiet: bool, n_workers: int, lock: ResultsLock,
                     replace: bool) -> SimOutcome:
    setup = SetupProgress(f"setting up {n_workers} simulated workers", quiet=quiet)  # lines only if slow
    signals = SignalWatch(guards=True).install()  # a stop signal from here on, set-up included, stops the run
    try:
        return _build_and_simulate(config, resume, quiet, n_workers, lock, replace, setup, signals)
    finally:
        signals.restore()
        setup.close()


def _build_and_simulate(config: Config, resume: ResumePoint | None, quiet: bool, n_workers: int, lock: ResultsLock,
                        replace: bool, setup: SetupProgress, signals: SignalWatch) -> SimOutcome:
    from .graph.sim import GraphSim
    from .sim.server import SimServer

    signals.running = "set-up"  # a large problem or a slow plugin: a stop signal interrupts it
    try:
        setup.phase(f"problem {config.problem.name}")
        problem = build_problem(config)
        setup.phase("timing model")
        timing = TimingModel(config.workers, n_workers)
        setup.phase("data shards")
        shards = build_shards(config, problem, n_workers)
        setup.phase("worker contexts")
        contexts = [build_context(config, problem, worker, shards[worker]) for worker in range(n_workers)]
        setup.phase(f"method {config.method.name}")
        method = build_method(config, problem, n_workers)
        setup.phase("f* (reference optimum)")
        f_star = compute_f_star(problem)
        setup.phase("graph plan")
        plan = build_plan(config, n_workers, timing)
    except Interrupted:
        raise StoppedBeforeStart(signals.received, left=_left(config.output_path(), True)) from None
    finally:
        signals.running = None
    setup.phase("results file")
    staged = resume.staged if resume is not None and resume.staged else staging_path(config.output_path())
    writer = open_writer(config, problem, method, n_workers, f_star, resume=resume,
                         graph=None if plan is None else graph_attrs(plan), staging=staged)
    watchdog = guardian.guard(config.output_path(), lock=lock, staged=staged)  # the process's one watchdog
    try:
        setup.phase("server state")
        if plan is None:
            server = SimServer(config, problem, method, writer, timing, f_star, resume, contexts=contexts)
        else:
            server = GraphSim(config, problem, method, writer, timing, f_star, resume, contexts=contexts, plan=plan)
        server.signals = signals
        server.progress = Progress(quiet=quiet, virtual=True)
        server.progress.setup = setup  # ended by the first progress tick
        server.record_shards(shards)
        setup.phase("first jobs")
        error = _drive(server, server.start)
        if error is not None:
            raise _failure(_describe(error) + _left(config.output_path(), False), _exit_code(error)) from error
        if signals.received is not None:
            raise StoppedBeforeStart(signals.received, left=_left(config.output_path(), True))
        writer.publish(replace)  # set up and started cleanly: the new file takes the path
    except BaseException:
        writer.abandon()  # the staged file goes; an old file at the path stays as it was
        _stop_watchdog(watchdog)
        raise
    error = _drive(server, server.run)  # a failure is recorded in the file and reported; the file is still closed
    server.progress.close()
    status, reason = _finish(server, error)
    row_values = None
    if writer.failed is None:
        kept = writer.written_snapshots()
        metrics = evaluate_file(config.output_path(), problem, f_star, kept)
        if kept is not None:
            row_values = ({**writer.attrs, "status": status}, kept, writer.last_trace_row(), metrics)
    _stop_watchdog(watchdog)  # not before: a file left open by an error here is repaired when the process ends
    if error is not None:
        failure = error if isinstance(error, AsyncoptError) else RunError(_describe(error))
        failure.path = config.output_path()
        if failure is error:
            raise failure
        raise failure from error
    return SimOutcome(config.output_path(), status, reason, server.exit_code(),
                      _summary_line(config, server, status, reason), writer.failed is None, row_values)


# ---------------------------------------------------------------- MPI


def _agree(comm, error: BaseException | None) -> BaseException | None:
    """Collective: the first error any rank had (with its rank), or None on every rank."""
    _polite_barrier(comm)
    found = comm.allgather(None if error is None else (_exit_code(error), _describe(error)))
    for rank, item in enumerate(found):
        if item is not None:
            failure = _failure(item[1], item[0])
            failure.rank = rank
            return failure
    return None


def _agree_started(comm, error: BaseException | None, signals: SignalWatch) -> BaseException | None:
    """Collective, before the run has started: the first error any rank had, else the first stop
    signal any rank received so far (StoppedBeforeStart), else None on every rank. A set-up the
    stop alarm interrupted is no error: its signal speaks."""
    error = _agree(comm, None if isinstance(error, Interrupted) else error)
    if error is not None:
        return error
    for rank, number in enumerate(comm.allgather(signals.received)):
        if number is not None:
            return StoppedBeforeStart(number, rank)
    return None


def _polite_barrier(comm) -> None:
    """A barrier that sleeps while it waits (MPI's own would spin on every rank)."""
    request = comm.Ibarrier()
    poll(request.Test)


def _try(step: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return step(), None
    except (Exception, Interrupted) as exc:  # an interrupted set-up: _agree_started makes it a stop
        return None, exc


def run_mpi(
    path: str | None, overrides: list[str], method: str | None, output: str | None, resume_path: str | None = None,
    quiet: bool = False, plugins: list[str] = (), overwrite: bool = False,
) -> int:
    from mpi4py import MPI

    from ..plugins import config_file_plugins, load_plugins, merge, override_plugins, results_file_plugins

    from .mpi.graph import GraphNode, GraphServer, shared_start
    from .mpi.loops import MpiServer, WorkerLoop

    lower_timer_slack()
    keep_freed_memory()
    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    signals = SignalWatch(guards=rank == 0).install()  # rank 0 runs the method's hooks

    def fail(error: BaseException) -> int:
        """The run ended before it started: nothing was published."""
        signals.disarm()  # a stop signal's alarm would end the process with SIGALRM while it leaves
        if rank == 0 and resume is not None and resume.staged and os.path.exists(resume.staged):
            os.unlink(resume.staged)  # the resumed run never started: its file stays as it was
        if rank == 0:
            stopped = isinstance(error, StoppedBeforeStart)
            origin = "" if stopped or getattr(error, "rank", 0) == 0 else f"rank {error.rank}: "
            target = None if config is None else config.output_path()
            (closing.warning if stopped else log.error)(f"{origin}{error}{_left(target, stopped)}")
        return _exit_code(error)

    # 0. Plugins (--plugin, the config's [plugins], a resumed file's) on every rank, before validation.
    config, resume = None, None
    specs = comm.bcast(
        merge(plugins, config_file_plugins(path), override_plugins(overrides), results_file_plugins(resume_path))
        if rank == 0 else None, root=0,
    )
    _, error = _try(lambda: load_plugins(specs))
    error = _agree_started(comm, error, signals)
    if error is not None:
        return fail(error)

    # 1. Config: read and validated on rank 0 only, then shared.
    if rank == 0:
        loaded, error = _try(lambda: _load_mpi_config(path, overrides, method, output, size, resume_path, overwrite))
        config, resume = loaded or (None, None)
        if config is not None:
            config.plugins.plugins = merge(specs, config.plugins.plugins)
    else:
        error = None
    error = _agree_started(comm, error, signals)
    if error is not None:
        return fail(error)
    config = comm.bcast(config, root=0)
    n_workers = size - 1
    hosts = comm.allgather(socket.gethostname())
    pids = comm.allgather(os.getpid())
    watchdog = None
    opened: dict[str, Any] = {}  # rank 0: the writer, once its staged file exists

    # 2. Problem on every rank (workers need the data too); method and file on rank 0.
    problem, error = _try(lambda: build_problem(config))
    error = _agree_started(comm, error, signals)
    if error is not None:
        return fail(error)

    def setup():
        shards = build_shards(config, problem, n_workers)
        timing = TimingModel(config.workers, n_workers)
        plan = build_plan(config, n_workers, timing)
        if rank == 0:
            method_object = build_method(config, problem, n_workers)
            f_star = compute_f_star(problem)
            library = library_version(MPI)  # Open MPI's ends in a NUL byte: cleaned
            staged = resume.staged if resume is not None and resume.staged else staging_path(config.output_path())
            writer = open_writer(
                config, problem, method_object, n_workers, f_star, library, hosts, pids, resume, background=True,
                graph=None if plan is None else graph_attrs(plan), staging=staged,
            )
            opened["writer"] = writer
            nonlocal watchdog
            watchdog = guardian.start(config.output_path(), pids, hosts, lock=held(config.output_path()),
                                      staged=staged)
            if plan is None:
                server = MpiServer(config, problem, method_object, writer, timing, f_star, resume, comm=comm, hosts=hosts)
            else:
                server = GraphServer(config, problem, method_object, writer, timing, f_star, resume, comm=comm,
                                     hosts=hosts, t0=0.0, plan=plan)
            server.record_shards(shards)
            server.signals = signals
            server.progress = Progress(quiet=quiet)
            return server
        watchdog = host_watch.start_reporter(config.output_path(), pids, hosts, rank)  # None but on other hosts
        context = build_context(config, problem, rank - 1, shards[rank - 1])
        if plan is not None:
            return GraphNode(comm, context, plan, config, timing, 0.0, signals)
        return WorkerLoop(comm, context, problem.dim, signals, ranks_on_host=hosts.count(hosts[rank]))

    signals.running = "set-up"  # a large problem or a slow plugin: a stop signal interrupts it on rank 0
    role, error = _try(setup)
    signals.running = None
    signals.disarm()
    error = _agree_started(comm, error, signals)
    if error is not None:
        if rank == 0 and "writer" in opened:
            opened["writer"].abandon()  # the staged file goes; an old file at the path stays as it was
        if isinstance(role, (MpiServer, WorkerLoop)):
            role.discard()  # never started
        _stop_watchdog(watchdog)  # rank 0's watchdog, or another host's reporter
        return fail(error)

    # 3. The method's first jobs; the file takes the path only once every rank knows the run started.
    error = _drive(role, role.start) if rank == 0 else None
    error = _agree_started(comm, error, signals)
    if error is None and rank == 0:
        _, error = _try(lambda: opened["writer"].publish(overwrite or resume is not None))
    started = error is None  # on rank 0; the others run their loop either way, to take the first jobs back
    # Graph runs agree on a time origin: hop times are compared across ranks.
    if uses_graph(config.method.name, config.graph.topology):
        role.t0 = shared_start(comm, hosts)
    if rank == 0 and not started:
        server = role
        server.progress.close()
        missing = server.shutdown(failed=True)  # the workers drain the jobs start() sent them
        server.writer.abandon()  # the staged file goes; an old file at the path stays as it was
        fail(error)
        _stop_watchdog(watchdog)
        if missing:  # workers that do not answer within stop.grace cannot join the barrier: never a clean stop
            comm.Abort(1)
        outcome = _exit_code(error)
    elif rank == 0:
        server: MpiServer = role
        error = _drive(server, server.run)
        server.progress.close()
        if error is not None:
            log.error(_describe(error))
        missing = server.shutdown(failed=error is not None)
        if missing and error is None:
            names = ", ".join(server.worker_name(w) for w in missing)
            error = RunError(f"no answer to the stop message within stop.grace = {config.stop.grace:g} s from {names}")
            log.error(f"{error}; ending the job")
        status, reason = _finish(server, error)
        if error is None:  # a failed run says one thing: its error
            warn_if_short(server)  # workers slower than the timing model: say so
        if missing:  # the run failed (error is set above): never reached by a completed or stopped run
            # Ranks that do not answer cannot join the collective evaluation: evaluate here, then end the job.
            if server.writer.failed is None:
                _, trouble = _try(lambda: evaluate_file(config.output_path(), problem, server.f_star))
                if trouble is not None:
                    log.error(f"metrics not computed: {_describe(trouble)}")
            _stop_watchdog(watchdog)
            comm.Abort(1)
        outcome = 1 if error is not None else server.exit_code()
    else:
        failed, error = _try(role.run)
        outcome = 1 if (failed or error is not None) else 0
        if error is not None:
            log.error(f"rank {rank}: {_describe(error)}")
        _stop_watchdog(watchdog)  # this host's reporter: no rank ends before the barrier
    _polite_barrier(comm)

    # 4. Metrics at the snapshots, shared out over all ranks (none after a write error).
    skip = rank == 0 and (not started or server.writer.failed is not None)  # nothing published, or a write error
    problem_text = _evaluate_shared(comm, config, problem, server.f_star if rank == 0 else math.nan, skip=skip)
    if rank == 0 and problem_text is not None:
        log.error(problem_text)
        outcome, error = 1, error or RunError(problem_text)
    if rank == 0:
        _stop_watchdog(watchdog)
        if error is None:
            _closing(_summary_line(config, server, status, reason), good=status != "diverged")
    return comm.bcast(outcome, root=0)


def _stop_watchdog(watchdog) -> None:
    """The file is closed: the watchdog has nothing left to guard (a process's shared one forgets the run)."""
    if isinstance(watchdog, guardian.Guard):
        watchdog.stop()
    elif watchdog is not None:
        watchdog.terminate()
        watchdog.wait()


def _load_mpi_config(path, overrides, method, output, size: int, resume_path: str | None, overwrite: bool = False):
    """Rank 0: the validated config, the resume point, and the results file checked and locked."""
    if resume_path is not None:
        config, resume = prepare_resume(resume_path, overrides, "mpi")  # takes the lock
        try:
            _check_ranks(config, resume, size)
            check_memory(config, size - 1, ranks=size)
        except BaseException:
            os.unlink(resume.staged)
            release_fully(resume_path)
            raise
        config.resolve_output_path(size - 1)
        return config, resume
    config = load_config(path, overrides, method=method, backend="mpi", output=output)
    _check_ranks(config, None, size)
    check_memory(config, size - 1, ranks=size)  # validation counted workers.n or 1; rank 0 holds buffers for size - 1
    config.resolve_output_path(size - 1)  # once, here on rank 0 ({timestamp}); the config is broadcast
    # Held by rank 0 until it exits (and by its watchdog while it repairs a killed run's file).
    lock_output(config.output_path(), overwrite=overwrite, inputs=_inputs(config, (path,) if path else ()),
                dim=config.problem.dim)
    return config, None


def _check_ranks(config: Config, resume: ResumePoint | None, size: int) -> None:
    if resume is not None and len(resume.workers["jobs"]) != size - 1:
        raise ConfigError(
            f"--resume: the run had {len(resume.workers['jobs'])} workers; start "
            f"{len(resume.workers['jobs']) + 1} ranks (mpiexec started {size})"
        )
    if size < 2:
        raise ConfigError(
            "the mpi backend needs at least 2 ranks (rank 0 is the server): run "
            "`mpiexec -n N+1 asyncopt run ...` for N workers, or use --backend sim"
        )
    if config.workers.n is not None and config.workers.n != size - 1:
        raise ConfigError(
            f"workers.n = {config.workers.n} but mpiexec started {size} ranks, i.e. {size - 1} workers; "
            f"set workers.n = {size - 1}, remove it, or start {config.workers.n + 1} ranks"
        )


def _evaluate_shared(comm, config: Config, problem, f_star: float, skip: bool = False) -> str | None:
    """Every rank evaluates a share of the snapshots; rank 0 stores the table.

    On rank 0, the reason the metrics could not be read or stored (None when they were).
    """
    snapshots, trouble = None, None
    if comm.rank == 0 and not skip:
        try:
            snapshots = read_snapshots(config.output_path())
        except Exception as exc:
            trouble = f"metrics not computed: {_describe(exc)}"
    count = comm.bcast(0 if snapshots is None else len(snapshots["x"]), root=0)
    f_star = comm.bcast(f_star, root=0)
    xs = snapshots["x"] if snapshots is not None else np.empty((count, problem.dim))
    if count:
        comm.Bcast(xs, root=0)
    mine = np.arange(comm.rank, count, comm.size)
    values = evaluate_points(problem, xs[mine], f_star)
    gathered = comm.gather((mine, values), root=0)
    if comm.rank == 0:
        table = np.full((count, len(VALUE_COLUMNS)), math.nan)
        for rows, part in gathered:
            table[rows] = part
        if snapshots is not None:
            try:
                write_metrics(config.output_path(), metrics_table(snapshots, table), f_star)
            except Exception as exc:
                trouble = f"metrics not stored: {_describe(exc)}"
    return trouble
