"""The `asyncopt` command: run, summary, methods, evaluate."""

from __future__ import annotations

import math
import sys

import click

from .errors import AsyncoptError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="asyncopt-mpi")
def cli() -> None:
    """Asynchronous distributed optimization on an MPI parameter server or a virtual clock."""


@cli.command()
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
@click.option("--method", "method", help="Method name (overrides method.name).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. method.lr=0.05.")
@click.option("--backend", type=click.Choice(["mpi", "sim"]), default=None,
              help="mpi (default): under mpiexec, rank 0 is the server; sim: virtual clock in this process.")
@click.option("--output", "output", type=click.Path(dir_okay=False), help="Results file (overrides output.path).")
@click.option("--resume", "resume", type=click.Path(dir_okay=False), metavar="FILE",
              help="Continue a stopped or killed run from its last snapshot, appending to FILE.")
def run(config_path: str | None, method: str | None, overrides: tuple[str, ...], backend: str | None,
        output: str | None, resume: str | None) -> None:
    """Run a method; `mpiexec -n N+1 asyncopt run CONFIG` gives N workers."""
    from .runtime.session import report

    if resume is not None and (config_path or method or output):
        report("error: --resume FILE takes the config, method and output from FILE; give only --set overrides")
        sys.exit(2)
    if resume is not None and backend is None:
        backend = _stored_backend(resume)
    if backend == "sim":
        from .config import load_config
        from .runtime.session import prepare_resume, run_sim

        try:
            if resume is not None:
                code = run_sim(*prepare_resume(resume, list(overrides), "sim"))
            else:
                code = run_sim(load_config(config_path, list(overrides), method=method, backend="sim", output=output))
        except AsyncoptError as exc:
            report(f"error: {exc}")
            code = exc.exit_code
    else:
        from .runtime.session import run_mpi

        code = run_mpi(config_path, list(overrides), method, output, resume)
    sys.exit(code)


def _stored_backend(path: str) -> str:
    """The backend a results file was written with (mpi when it cannot be read)."""
    from .results import open_results

    try:
        with open_results(path) as handle:
            return str(handle.attrs.get("backend", "mpi"))
    except OSError:
        return "mpi"


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def summary(files: tuple[str, ...]) -> None:
    """One row per results file: method, backend, workers, duration, updates, gradients, loss."""
    from .summary import summarize

    click.echo(summarize(list(files)))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="OUT.png or OUT.pdf")
@click.option("--x", "x_axis", default="time", show_default=True, help="time | grads | bytes | iteration")
@click.option("--y", "y_axis", default="suboptimality", show_default=True,
              help="suboptimality | loss | grad_norm_sq | accuracy")
@click.option("--title", default=None)
@click.option("--logx", is_flag=True, help="Logarithmic x axis.")
@click.option("--best", is_flag=True, help="Per method, only its best parameters (lowest final value).")
def plot(files: tuple[str, ...], output: str, x_axis: str, y_axis: str, title: str | None, logx: bool, best: bool) -> None:
    """Plot results files (or folders of them): one line per configuration, seeds as median and band."""
    from .plot import best_per_method, plot as draw

    paths = _expand(files)
    try:
        if best:
            paths = best_per_method(paths, y_axis)
        draw(paths, output, x_axis, y_axis, title=title, logx=logx)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"wrote {output} ({len(paths)} runs)")


def _expand(items: tuple[str, ...]) -> list[str]:
    """Files as given; a folder stands for the .h5 files in it."""
    import glob
    import os

    paths: list[str] = []
    for item in items:
        paths += sorted(glob.glob(os.path.join(item, "*.h5"))) if os.path.isdir(item) else [item]
    return paths


@cli.command()
def methods() -> None:
    """List the methods with their parameters and defaults."""
    from .methods import METHODS

    for name in sorted(METHODS):
        cls = METHODS[name]
        params = ", ".join(f"{key}={value!r}" for key, value in cls.params.items())
        common = "lr, batch"
        click.echo(f"{name:<26} {cls.description}")
        click.echo(f"{'':<26} parameters: {common}{', ' + params if params else ''}; source: {cls.paper}")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def evaluate(file: str) -> None:
    """(Re)compute /metrics of a results file; repairs a file whose run was killed."""
    from .config import build_config, validate
    from .evaluate import evaluate_file
    from .problems import make_problem
    from .results import is_cleanly_closed, read_run, recover
    import tomllib

    try:
        if not is_cleanly_closed(file):
            recover(file)
            click.echo(f"{file}: the run ended without closing the file; rewrote it (status failed)", err=True)
        run_data = read_run(file)
        config = build_config(tomllib.loads(run_data["attrs"]["config"]), source=file)
        validate(config)
        problem = make_problem(config.problem)
        f_star = run_data["problem"].get("f_star", math.nan)
        if not math.isfinite(f_star):
            f_star = problem.compute_f_star()
        table = evaluate_file(file, problem, f_star)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"{file}: {len(table['time'])} snapshots evaluated")


@cli.command()
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. workers.n=100.")
@click.option("--method", "method", help="Method name (overrides method.name; its row is marked with *).")
@click.option("--eps", type=float, help="Target E||grad f||^2 <= eps  [default: stop.target, else 1e-3].")
@click.option("--sigma2", type=float, help="Variance of a stochastic gradient  [default: estimated at x0].")
@click.option("--json", "as_json", is_flag=True, help='JSON output; inf is the string "inf", nan is null.')
def theory(config_path: str | None, overrides: tuple[str, ...], method: str | None, eps: float | None,
           sigma2: float | None, as_json: bool) -> None:
    """Time complexities of the methods (up to constants) for a config's problem and workers.

    Formulas of Tyurin & Richtarik, NeurIPS 2023, Table 1, with tau_i the expected time per
    gradient of each worker, L and Delta = f(x0) - f* from the problem.
    """
    from .config import load_config
    from .theory import format_table, table_json, theory_table

    try:
        config = load_config(config_path, list(overrides), method=method, backend="sim", require_stop=False)
        table = theory_table(config, eps=eps, sigma2=sigma2)
    except AsyncoptError as exc:
        click.echo(f"asyncopt: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(table_json(table) if as_json else format_table(table))


def main() -> None:
    cli(prog_name="asyncopt")


if __name__ == "__main__":
    main()
