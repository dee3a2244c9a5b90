"""The `asyncopt` command: run, summary, methods, evaluate."""

from __future__ import annotations

import math
import sys

import click

from .errors import AsyncoptError

PLUGIN_HELP = ("A module (mypkg.methods) or .py file that registers methods or problems; repeatable. "
               "Runs record it, so --resume, evaluate and sweeps import it again by themselves.")


def _import_plugins(ctx: click.Context, param: click.Parameter, specs: tuple[str, ...]) -> tuple[str, ...]:
    """--plugin: import the plugins (and those installed packages declare) before the command runs."""
    from .plugins import load_plugins

    try:
        load_plugins(specs)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    return specs


def _exit_with(exc: AsyncoptError) -> None:
    """One line and the error's exit status; a stop signal's line is no error (as for a stopped run)."""
    kind = "" if getattr(exc, "signal", None) is not None else "error: "
    click.echo(f"asyncopt: {kind}{exc}", err=True)
    sys.exit(exc.exit_code)


def plugin_option(command):
    """The --plugin option of commands that import plugins in this process before they start."""
    return click.option("--plugin", "plugins", multiple=True, metavar="PATH_OR_MODULE", help=PLUGIN_HELP,
                        callback=_import_plugins, expose_value=False)(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="asyncopt-mpi")
def cli() -> None:
    """Asynchronous distributed optimization on an MPI parameter server or a virtual clock."""
    from . import early_signals
    from .logs import configure

    if click.get_current_context().invoked_subcommand != "run":
        early_signals.release()  # only a run stops cleanly on a signal that came while the command started
    configure()  # info lines on stderr; `run --log-level/--verbose/--quiet` changes the level


@cli.command()
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
@click.option("--method", "method", help="Method name (overrides method.name).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. method.lr=0.05.")
@click.option("--backend", type=click.Choice(["mpi", "sim"]), default=None,
              help="mpi: under mpiexec/srun, rank 0 is the server; sim: virtual clock in this process  [default: mpi "
                   "when started by a launcher with 2 or more ranks, else sim; --resume: the file's own].")
@click.option("--output", "output", type=click.Path(dir_okay=False), help="Results file (overrides output.path).")
@click.option("--resume", "resume", type=click.Path(dir_okay=False), metavar="FILE",
              help="Continue a stopped or killed run from its last snapshot, appending to FILE.")
@click.option("--quiet", is_flag=True, help="No progress line (a live line on a terminal, a log line every 5 s "
              "otherwise) and only warnings and errors.")
@click.option("--verbose", is_flag=True, help="Also debug lines (--log-level debug).")
@click.option("--log-level", "log_level", default=None, metavar="LEVEL",
              help="debug | info | warning | error  [default: info; rank 0 only, other ranks warning]")
@click.option("--plugin", "plugins", multiple=True, metavar="PATH_OR_MODULE", help=PLUGIN_HELP)
@click.option("--overwrite", is_flag=True,
              help="Replace an existing results file (only once the new run has started cleanly); without it an "
                   "existing file is refused.")
def run(config_path: str | None, method: str | None, overrides: tuple[str, ...], backend: str | None,
        output: str | None, resume: str | None, quiet: bool, plugins: tuple[str, ...], overwrite: bool,
        verbose: bool = False, log_level: str | None = None) -> None:
    """Run a method; `mpiexec -n N+1 asyncopt run CONFIG` gives N workers.

    Exit status: 0 completed or stopped, 1 the run failed (a worker, the results file), 2 a
    mistake in what was given (config, data, paths, a file another run holds); 3 and above: see
    README.
    """
    from .launcher import launched_ranks
    from .logs import configure, level_of, log

    try:
        configure(level_of(log_level, verbose, quiet))
    except AsyncoptError as exc:
        log.error(str(exc))
        sys.exit(exc.exit_code)
    launched, launch_rank = launched_ranks()
    if resume is not None and (config_path or method or output or overwrite):
        log.error("--resume FILE takes the config, method and output from FILE; give only --set overrides")
        sys.exit(2)
    if resume is not None and backend is None:
        try:
            backend = _stored_backend(resume)
        except AsyncoptError as exc:
            _refuse(f"--resume: {exc}", exc.exit_code, launch_rank)
    if backend is None:  # started by a launcher (mpiexec, srun) with ranks to serve: MPI; else the simulator
        backend = "mpi" if launched > 1 else "sim"
    if backend == "sim" and launched > 1:
        _refuse(f"the simulator runs on one process; drop mpiexec (it started {launched} ranks)", 2, launch_rank)
    if backend == "sim":
        from .plugins import load_plugins
        from .runtime.session import prepare_resume, run_sim
        from .validate import load_config

        try:
            load_plugins(plugins)
            if resume is not None:
                code = run_sim(*prepare_resume(resume, list(overrides), "sim"), quiet=quiet)
            else:
                config = load_config(config_path, list(overrides), method=method, backend="sim", output=output)
                code = run_sim(config, quiet=quiet, overwrite=overwrite, inputs=(config_path,) if config_path else ())
        except AsyncoptError as exc:
            log.error(str(exc))
            code = exc.exit_code
    else:
        from .runtime.session import run_mpi

        code = run_mpi(config_path, list(overrides), method, output, resume, quiet, plugins=list(plugins),
                       overwrite=overwrite)
    _exit(code)


def _exit(code: int) -> None:
    """Exit; after a write error left an HDF5 file unclosable, without the interpreter's clean-up
    (HDF5 would crash closing it: SIGSEGV instead of our exit status)."""
    from .results import UNCLOSED

    if UNCLOSED:
        import os

        from .locks import release_all

        release_all()
        sys.stdout.flush()
        sys.stderr.flush()
        mpi = sys.modules.get("mpi4py.MPI")
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
            mpi.Finalize()  # the other ranks wait in theirs; a rank gone without it makes hydra SIGKILL them (exit 9)
        os._exit(code)
    sys.exit(code)


def _refuse(message: str, code: int, launch_rank: int) -> None:
    """Refuse a run before MPI starts: rank 0 prints the line and leaves with `code`, the others with 0.

    The job's status is rank 0's. A launcher that sees a rank fail ends the others, and Open
    MPI's ended rank 0 before its line was out when rank 1 exited first with the error code.
    """
    if launch_rank == 0:
        from .logs import log

        log.error(message)
    sys.exit(code if launch_rank == 0 else 0)


def _stored_backend(path: str) -> str:
    """The backend a results file was written with (a file that cannot be read: UserError, one line)."""
    from .results import read_backend

    return read_backend(path)


@cli.command("final-stats")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--final", "final", default=0.2, show_default=True, type=float,
              help="Share of each run (by time, at its end) to average over.")
@click.option("--metric", default="test_accuracy", show_default=True, help="A /metrics column.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def final_stats_command(files: tuple[str, ...], final: float, metric: str, as_json: bool) -> None:
    """Mean and variance of a metric over the last part of each run (Freya PAGE's Table 2)."""
    from .final_stats import final_stats, format_final_stats

    try:
        rows = [final_stats(path, metric, final) for path in _expand(files)]
        click.echo(format_final_stats(rows, "json" if as_json else "table"))
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--sort", "sort", default=None, help="Sort by a column, e.g. time_to_target or suboptimality.")
@click.option("--csv", "fmt", flag_value="csv", help="CSV instead of a table.")
@click.option("--json", "fmt", flag_value="json", help="JSON instead of a table.")
@click.option("--workers", is_flag=True, help="One row per worker: jobs, gradients, busy/idle time, bytes, accepted share.")
@click.option("--provenance", "show_provenance", is_flag=True,
              help="Versions (Python, numpy, scipy, h5py, mpi4py, MPI), git commit, command line, hosts, plugins.")
@click.option("--all-keys", "all_keys", is_flag=True,
              help="A column for every config key (default: only the keys that differ among the runs).")
@plugin_option
def summary(files: tuple[str, ...], sort: str | None, fmt: str | None, workers: bool, show_provenance: bool,
            all_keys: bool) -> None:
    """One row per results file (or folder of them): method, the config keys that differ among the runs
    (e.g. method.lr of a sweep; CSV/JSON also the seed), status, workers, duration, updates, loss, time to target."""
    from .summary import summarize

    try:
        if show_provenance:
            from .provenance import describe

            click.echo("\n".join(describe(path) for path in _expand(files)))
            return
        skippable: set[str] = set()
        paths = _expand(files, skippable)
        text = summarize(paths, sort=sort, fmt=fmt or "table", workers=workers, skippable=skippable, warn=_warn,
                         all_keys=all_keys)
        click.echo(text)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="OUT.png or OUT.pdf")
@click.option("--x", "x_axis", default="time", show_default=True, help="time | grads | bytes | iteration")
@click.option("--y", "y_axis", default="suboptimality", show_default=True,
              help="suboptimality | loss | grad_norm_sq | accuracy | test_loss | test_accuracy")
@click.option("--title", default=None)
@click.option("--logx", is_flag=True, help="Logarithmic x axis.")
@click.option("--best/--all", "best", default=None,
              help="--best: per method only its best parameters (lowest final value; a note when the best value "
                   "is the smallest or largest tried); --all: every run  [default: --best when a folder is given, "
                   "else --all].")
@click.option("--figsize", default="6.4,4.2", show_default=True, metavar="W,H", help="Figure size in inches.")
@click.option("--dpi", default=120, show_default=True, help="Dots per inch (PNG).")
@click.option("--ylim", default=None, metavar="LOW,HIGH", help="y range; either end may be empty, e.g. 1e-8,")
@click.option("--style", default=None, help="A matplotlib style (e.g. ggplot, seaborn-v0_8-paper) or style file.")
@click.option("--export", "export", default=None, type=click.Path(dir_okay=False), metavar="CSV",
              help="Also write the drawn lines (label, runs, x, median, 25th/75th percentile) as CSV.")
@plugin_option
def plot(files: tuple[str, ...], output: str, x_axis: str, y_axis: str, title: str | None, logx: bool, best: bool | None,
         figsize: str, dpi: int, ylim: str | None, style: str | None, export: str | None) -> None:
    """Plot results files (or folders of them): one line per configuration (everything but the seeds);
    runs of one configuration as their median and interquartile band; diverged runs left out with a note;
    runs whose problem has no known f* drawn on the loss."""
    from .plot import parse_pair, plot as draw

    import os

    skippable: set[str] = set()
    paths = _expand(files, skippable)
    try:
        paths = _readable(paths, skippable)
        # A folder is a sweep: like the papers, show each method at its best parameters unless --all.
        if best is None:
            best = any(os.path.isdir(item) for item in files)
        drawn = draw(paths, output, x_axis, y_axis, title=title, logx=logx, size=parse_pair("--figsize", figsize),
                     dpi=dpi, ylim=parse_pair("--ylim", ylim, allow_empty=True), style=style, export=export,
                     best=best, skippable=skippable, warn=_warn)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    for note in drawn.notes:
        click.echo(f"asyncopt: note: {note}", err=True)
    click.echo(f"wrote {output} ({drawn.considered} runs, {len(drawn.labels)} lines){f' and {export}' if export else ''}")


@cli.command("sweep")
@click.argument("config_path", metavar="CONFIG", required=False, type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...", help="A parameter and its values (repeatable).")
@click.option("--seeds", default=1, show_default=True, help="Runs per combination, with workers.seed = 0, 1, ...")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder of the results files.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key in every run.")
@click.option("--backend", type=click.Choice(["sim", "mpi"]), default="sim", show_default=True)
@click.option("--ranks", default=0, help="mpi backend: ranks per run when the config leaves workers.n open  "
              "[default: workers.n + 1 of each run].")
@click.option("--processes", default=1, show_default=True, help="sim backend: runs in parallel.")
@click.option("--mpiexec", default="mpiexec", show_default=True, help="mpi backend: the launcher.")
@click.option("--overwrite", is_flag=True, help="Replace results files already in the folder (else those runs are refused).")
@plugin_option
def sweep_command(config_path: str | None, grid: tuple[str, ...], seeds: int, out: str, overrides: tuple[str, ...],
                  backend: str, ranks: int, processes: int, mpiexec: str, overwrite: bool) -> None:
    """Run the product of --grid values (and seeds) into one folder; then `asyncopt plot DIR`."""
    from .summary import summarize
    from .sweep import SweepStopped, sweep, verdict

    stopped = None
    try:
        outcomes = sweep(config_path, list(grid), seeds, out, list(overrides), backend, ranks, processes, mpiexec,
                         overwrite)
    except SweepStopped as exc:
        outcomes, stopped = exc.outcomes, exc
    except AsyncoptError as exc:
        _exit_with(exc)
    paths = _expand((out,))
    if paths:
        click.echo(summarize(paths, sort="suboptimality"))
    if stopped is not None:
        _exit_with(stopped)
    line, code = verdict(outcomes)
    click.echo(f"asyncopt: {line}", err=True)
    sys.exit(code)


@cli.command("tune")
@click.argument("config_path", metavar="CONFIG", required=False, type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="The key to tune and its first values, e.g. method.lr=0.01,0.1,1 (extended until bracketed).")
@click.option("--methods", default=None, metavar="A,B,...", help="Methods to tune  [default: method.name].")
@click.option("--seeds", "tuning_seeds", default=3, show_default=True, help="Tuning seeds (workers.seed 1000, 1001, ...).")
@click.option("--eval-seeds", "evaluation_seeds", default=5, show_default=True,
              help="Evaluation seeds for each method's best value (workers.seed 0, 1, ...).")
@click.option("--target", type=float, default=None, help="f - f* target of the criterion  [default: stop.target].")
@click.option("--extensions", default=3, show_default=True, help="At most this many grid extensions per side.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder: evaluation runs, tune.csv, TUNE.md; tuning runs in OUT/tuning.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key in every run.")
@click.option("--backend", type=click.Choice(["sim", "mpi"]), default="sim", show_default=True)
@click.option("--processes", default=1, show_default=True, help="sim backend: runs in parallel.")
@click.option("--mpiexec", default="mpiexec", show_default=True, help="mpi backend: the launcher.")
@click.option("--overwrite", is_flag=True, help="Replace results files already in the folders.")
@plugin_option
def tune_command(config_path: str | None, grid: tuple[str, ...], methods: str | None, tuning_seeds: int,
                 evaluation_seeds: int, target: float | None, extensions: int, out: str, overrides: tuple[str, ...],
                 backend: str, processes: int, mpiexec: str, overwrite: bool) -> None:
    """Each method's best value of one key (e.g. the step size) on tuning seeds, the grid extended until the
    best is bracketed, then evaluated on separate seeds; prints the table (OUT/TUNE.md), then `asyncopt plot OUT`."""
    from .tune import summary_line, tune

    try:
        names = [name.strip() for name in methods.split(",") if name.strip()] if methods else None
        _, outcomes = tune(config_path, list(grid), out, methods=names, overrides=list(overrides),
                           tuning_seeds=tuning_seeds, evaluation_seeds=evaluation_seeds, target=target,
                           extensions=extensions, backend=backend, processes=processes, mpiexec=mpiexec,
                           overwrite=overwrite, log=lambda line: click.echo(f"asyncopt: {line}", err=True))
    except AsyncoptError as exc:
        _exit_with(exc)
    import os

    with open(os.path.join(out, "TUNE.md")) as handle:
        click.echo(handle.read().rstrip())
    line, code = summary_line(outcomes)
    click.echo(f"asyncopt: {line}", err=True)
    sys.exit(code)


@cli.command("reproduce")
@click.argument("name", required=False)
@click.option("--list", "show_list", is_flag=True, help="One line per experiment: name, seed paper, figure, description.")
@click.option("--scale", type=click.Choice(["small", "paper"]), default="small", show_default=True,
              help="small: the paper's structure in under a minute; paper: the paper's n, m, d and horizon.")
@click.option("--seeds", default=5, show_default=True, help="Reported seeds (workers.seed 0, 1, ...).")
@click.option("--output", "output", default="reproductions-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder; the experiment writes OUTPUT/NAME/ (REPORT.md, figure-*.png, runs.csv, runs/).")
@click.option("--processes", default=1, show_default=True, help="Runs in parallel.")
@click.option("--overwrite", is_flag=True, help="Replace the runs and report of an earlier reproduction in OUTPUT/NAME.")
@click.option("--resume", is_flag=True, help="Continue a reproduction in OUTPUT/NAME that was stopped or killed: its "
              "finished runs of the same settings are kept, the others run; the report is that of one whole run.")
def reproduce_command(name: str | None, show_list: bool, scale: str, seeds: int, output: str, processes: int,
                      overwrite: bool, resume: bool) -> None:
    """A seed paper's experiment: step sizes tuned on tuning seeds, runs on the reported seeds, the paper's claims
    checked; writes OUTPUT/NAME/REPORT.md, the figure(s) and runs.csv."""
    import signal

    from .errors import UserError
    from .reproduce import listing
    from .reproduce.driver import Stopped, reproduce, stoppable
    from .sweep import SweepStopped

    try:
        if show_list == (name is not None):
            raise UserError("reproduce: give either --list or one experiment NAME")
        if show_list:
            click.echo("\n".join(listing()))
            return
        with stoppable():
            folder = reproduce(name, scale, seeds, output, processes, overwrite,
                               log=lambda line: click.echo(f"asyncopt: {line}", err=True), resume=resume)
    except (SweepStopped, Stopped) as exc:  # exit 128+n (0 after SIGUSR1), as for a run
        click.echo(f"asyncopt: {name} stopped by {signal.Signals(exc.signal).name} (the runs in progress stopped "
                   "cleanly); the same command with --resume continues it, keeping the finished runs", err=True)
        sys.exit(exc.exit_code)
    except AsyncoptError as exc:
        _exit_with(exc)
    click.echo(f"asyncopt: {folder}/REPORT.md written", err=True)


def _expand(items: tuple[str, ...], from_folders: set[str] | None = None) -> list[str]:
    """Files as given; a folder stands for the .h5 files in it (added to `from_folders`)."""
    import glob
    import os

    paths: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(glob.glob(os.path.join(item, "*.h5")))
            if from_folders is not None:
                from_folders.update(found)
            paths += found
        else:
            paths.append(item)
    return paths


def _warn(message: str) -> None:
    click.echo(f"asyncopt: warning: {message}", err=True)


def _readable(paths: list[str], skippable: set[str]) -> list[str]:
    """The paths, less the unreadable files found in folders (a warning each); an unreadable file
    named on the command line is an error (UserError, exit 2)."""
    from .results import check_readable
    from .errors import UserError

    kept = []
    for path in paths:
        try:
            check_readable(path)
        except UserError as exc:
            if path not in skippable:
                raise
            _warn(f"skipped: {exc}")
            continue
        kept.append(path)
    if paths and not kept:
        raise UserError("no readable results files among " + ", ".join(sorted({p.rsplit('/', 1)[0] for p in paths})))
    return kept


@cli.command()
@click.option("--markdown", is_flag=True, help="A Markdown table (the one in README.md).")
@plugin_option
def methods(markdown: bool) -> None:
    """List the methods with a description, their parameters and defaults, and their source paper."""
    from .methods import method_lines, method_table_markdown

    click.echo(method_table_markdown() if markdown else "\n".join(method_lines()))


@cli.command()
@click.option("--markdown", is_flag=True, help="A Markdown table of the built-in problems.")
@plugin_option
def problems(markdown: bool) -> None:
    """List the problems (problem.name) with a description and their own config keys and defaults."""
    from .problems.listing import problem_lines, problem_table_markdown

    click.echo(problem_table_markdown() if markdown else "\n".join(problem_lines()))


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@plugin_option
def evaluate(file: str) -> None:
    """(Re)compute /metrics of a results file; repairs a file whose run was killed."""
    from .config import parse_stored_config
    from .evaluate import evaluate_file
    from .problems import make_problem
    from .errors import UserError
    from .locks import ResultsLock
    from .results import is_cleanly_closed, read_run, recover, shown
    from .validate import build_config, validate

    try:
        ResultsLock.acquire(file, "evaluate")  # refused while a run writes (or a watchdog repairs) it
        closed = is_cleanly_closed(file)
        if not closed:
            recover(file)
        try:
            run_data = read_run(file)
            if not closed:  # failed, or the status it had if the writer died after recording it (storing metrics)
                status = run_data["attrs"].get("status")
                click.echo(f"{file}: the run ended without closing the file; rewrote it (status {status})", err=True)
        except UserError as exc:  # e.g. a write that failed on a full disk: keep the rows that can be read
            recover(file)
            click.echo(f"{file}: {exc}; rewrote it with the rows that could be read", err=True)
            run_data = read_run(file)
        if run_data["attrs"].get("status") == "running":  # closed, but its writer failed before the status
            recover(file, "failed: the run ended without recording its status (recovered)")
            click.echo(f"{file}: the run ended without recording its status; rewrote it (status failed)", err=True)
            run_data = read_run(file)
        config = build_config(parse_stored_config(run_data["attrs"].get("config", ""), file), source=file)
        validate(config)
        problem = make_problem(config.problem)
        from .objective import reported
        from .runtime.build import build_shards  # attaches the objective the run reported (asyncopt_mpi.objective)

        n_workers, f_star = run_data["attrs"].get("n_workers"), run_data["problem"].get("f_star", math.nan)
        if not (isinstance(n_workers, int) and n_workers > 0 and isinstance(f_star, (int, float))):
            raise UserError(f"{shown(file)}: damaged: its n_workers or f_star attribute is not a number")
        build_shards(config, problem, n_workers)
        if not math.isfinite(f_star):
            f_star = reported(problem).compute_f_star()
        table = evaluate_file(file, problem, f_star)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        _exit(exc.exit_code)  # os._exit if a write error left an HDF5 handle unclosable
    click.echo(f"{file}: {len(table['time'])} snapshots evaluated")


@cli.command()
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. workers.n=100.")
@click.option("--method", "method", help="Method name (overrides method.name; its row is marked with *).")
@click.option("--eps", type=float, help="The accuracy the times are for: E||grad f(x)||^2 <= eps (a target on the "
              "squared gradient norm, not on f - f* like stop.target)  [default: method.eps when set > 0, else 1e-3].")
@click.option("--sigma2", type=float, help="Variance of a stochastic gradient  [default: estimated at x0].")
@click.option("--json", "as_json", is_flag=True, help='JSON output; inf is the string "inf", nan is null.')
@click.option("--convex", is_flag=True, help="Add the convex-regime rows (eps then a target on f - f*), with R = "
              "||x0 - x*|| from the problem's minimizer.")
@plugin_option
def theory(config_path: str | None, overrides: tuple[str, ...], method: str | None, eps: float | None,
           sigma2: float | None, as_json: bool, convex: bool) -> None:
    """Time complexities of the methods (up to constants) for a config's problem and workers.

    Formulas of Tyurin & Richtarik, NeurIPS 2023, Table 1, with tau_i the expected time per
    gradient of each worker, L and Delta = f(x0) - f* from the problem. Rows of other papers
    follow where they apply: AsGrad and Koloskova et al. for async_sgd, Fragile SGD and the
    graph lower bound with a [graph], Shadowheart's lower bound with communication, and the
    convex regime with --convex.
    """
    from .theory import format_table, table_json, theory_table
    from .validate import load_config

    try:
        config = load_config(config_path, list(overrides), method=method, backend="sim", require_stop=False)
        table = theory_table(config, eps=eps, sigma2=sigma2, convex=convex)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(table_json(table) if as_json else format_table(table))


@cli.group()
def data() -> None:
    """Named data sets of the shipped configs (`{data}/NAME/...` in a config): list and fetch them."""


@data.command("list")
def data_list() -> None:
    """The data sets `asyncopt data fetch` knows, and the cache folder `{data}` stands for."""
    from .datasets import DATASETS, cache_folder

    for dataset in DATASETS.values():
        click.echo(f"{dataset.name}: {dataset.description}")
    click.echo(f"cache folder ({{data}} in configs; $ASYNCOPT_DATA sets it): {cache_folder()}")


@data.command("fetch")
@click.argument("name")
@click.option("--dir", "root", type=click.Path(file_okay=False),
              help="Folder to fetch into (NAME/ goes inside)  [default: $ASYNCOPT_DATA, else ~/.cache/asyncopt].")
def data_fetch(name: str, root: str | None) -> None:
    """Download data set NAME (checksums verified); on a compute node without internet, run it once on a
    login node with a shared $ASYNCOPT_DATA."""
    from .datasets import fetch

    try:
        fetch(name, root, log=lambda line: click.echo(f"asyncopt: {line}", err=True))
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)


def main() -> None:
    cli(prog_name="asyncopt")


if __name__ == "__main__":
    main()
