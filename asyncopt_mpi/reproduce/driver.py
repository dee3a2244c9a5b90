"""Runs one declared experiment: tuning and reported seeds through `tune`, then DIR/NAME/REPORT.md, figures, runs.csv.

Per panel and method, `tune.tune` picks the step size on the tuning seeds (workers.seed 1000, ...; the
grid extended until bracketed) and runs it on the reported seeds (workers.seed 0 .. K-1) into
DIR/NAME/runs/PANEL/METHOD/ (TUNE.md there). Claims are checked on the reported runs only.

`resume` (after a stop signal, a time limit, a crash): every run whose file holds that very run, finished, is kept
(sweep.finished_run: status completed or diverged, metrics computed, readable, the stored config the one planned
now); the others run (a stopped, killed or damaged file replaced). The tuning reads its choices from the files as
it would have, so the step sizes, figures, runs.csv and REPORT.md are those of a reproduction that ran through.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .. import side_files
from ..errors import RunError, UserError
from ..output import make_parent
from ..results import read_run, shown
from ..summary import summarize, time_to_target
from ..sweep import MAX_PROCESSES, on_stop_signals
from ..tune import Choice, markdown, table_rows, tune
from . import get
from .experiment import RULE, SCALES, Check, Claim, Experiment, Figure, MethodSpec, Panel, check, median_iqr

DEFAULT_OUTPUT = "reproductions-out"


class Stopped(BaseException):
    """A stop signal that came while no run was in progress (a sweep's own stop is SweepStopped). A BaseException,
    so that no `except Exception` on the way (a file read that counts as the worst run) takes it for a result."""

    def __init__(self, number: int):
        super().__init__(signal.Signals(number).name)
        self.signal = number
        self.exit_code = 0 if number == signal.SIGUSR1 else 128 + number  # as for a run or a sweep


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    """Within (the command's reproduction): a stop signal between the sweeps' runs (reading files, tuning, plotting)
    raises Stopped at once; during a sweep its own handlers stop the runs in progress (SweepStopped). Either way
    the finished runs stay for --resume."""
    def stop(number: int, frame) -> None:
        raise Stopped(number)

    with on_stop_signals(stop):
        yield


@dataclass
class MethodRuns:
    spec: MethodSpec
    choice: Choice
    reported: list[str]  # files of the reported seeds, in seed order
    all_files: list[str]  # tuning and reported
    reused: int = 0  # of all_files, those an earlier reproduction had finished (resume)


def reproduce(name: str, scale: str = "small", seeds: int = 5, output: str = DEFAULT_OUTPUT, processes: int = 1,
              overwrite: bool = False, log: Callable[[str], None] = print, resume: bool = False) -> str:
    """Run experiment `name` at `scale`; return its folder DIR/NAME (REPORT.md, figure-PANEL.png, runs.csv).
    `resume`: keep the runs an earlier reproduction into DIR/NAME finished (see the module doc)."""
    if resume and overwrite:
        raise UserError("--resume keeps the finished runs of OUTPUT/NAME and --overwrite replaces them; give one")
    experiment = get(name)
    if scale not in SCALES:
        raise UserError(f"--scale {shown(scale)}: accepted: {', '.join(SCALES)}")
    if not 1 <= seeds <= 1000:
        raise UserError(f"--seeds {seeds}: accepted: 1 to 1000 reported seeds")
    if not 1 <= processes <= MAX_PROCESSES:
        raise UserError(f"--processes {processes}: accepted: 1 to {MAX_PROCESSES}")
    folder = os.path.join(output, experiment.name)
    if os.path.lexists(folder) and (not os.path.isdir(folder) or os.listdir(folder)) and not (overwrite or resume):
        raise UserError(f"{shown(folder)} already exists; --overwrite replaces its runs and report, --resume "
                        "continues it (its finished runs kept)")
    make_parent(os.path.join(folder, "REPORT.md"))
    for path in _written(experiment, folder):  # before anything runs: a link in their place is refused
        side_files.check(path)
    started = time.monotonic()
    if experiment.compute is not None:
        _write(os.path.join(folder, "REPORT.md"), experiment.compute(scale))
        return folder
    panels: dict[str, list[MethodRuns]] = {}
    for panel in experiment.panels:
        panels[panel.label] = [_tune_method(experiment, panel, method, scale, seeds, folder, processes, overwrite, log,
                                            resume) for method in experiment.methods]
    every = [method_runs for runs in panels.values() for method_runs in runs]
    files = [path for method_runs in every for path in method_runs.all_files]
    reused = sum(method_runs.reused for method_runs in every)
    log(f"{experiment.name}: {len(files)} runs, {reused} reused from an earlier reproduction, {len(files) - reused} ran")
    figures = [_figure(experiment, figure, panel, panels[panel.label], scale, folder)
               for panel in experiment.panels for figure in experiment.figures]
    _write(os.path.join(folder, "runs.csv"), summarize(files, fmt="csv"))
    checks = {panel.label: {number: _check(claim, panels[panel.label], experiment.target[scale])
                            for number, claim in enumerate(experiment.claims, 1) if claim.applies_to(panel.label)}
              for panel in experiment.panels}
    _write(os.path.join(folder, "REPORT.md"),
           report(experiment, scale, seeds, panels, checks, figures, time.monotonic() - started, (reused, len(files))))
    return folder


def _write(path: str, text: str) -> None:
    """Write a new file `path`, never through a link or anything but a plain file of ours in its place."""
    try:
        side_files.write_text(path, text)
    except OSError as exc:
        raise RunError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None


def _tune_method(experiment: Experiment, panel: Panel, method: MethodSpec, scale: str, seeds: int, folder: str,
                 processes: int, overwrite: bool, log: Callable[[str], None], resume: bool = False) -> MethodRuns:
    out = os.path.join(folder, "runs", panel.slug, method.slug)
    log(f"{experiment.name}, {panel.label}: {'tuning' if method.tuned else 'running'} {method.id}")
    grid = f"{method.key}={','.join(f'{value:g}' for value in method.first_grid(scale))}"
    # a value the paper fixes runs as given: one tuning seed, never extended
    choices, outcomes = tune(None, [grid], out, methods=[method.name],
                             overrides=experiment.overrides(panel, method, scale),
                             tuning_seeds=experiment.tuning_seeds[scale] if method.tuned else 1,
                             evaluation_seeds=seeds, target=experiment.target[scale],
                             extensions=experiment.extensions[scale] if method.tuned else 0, backend="sim",
                             processes=processes, overwrite=overwrite, resume=resume,
                             log=log if method.tuned else lambda line: None)  # no bracketing to speak of
    failed = [outcome for outcome in outcomes if outcome.code != 0 and outcome.status != "diverged"]
    if failed:
        raise RunError(f"{experiment.name}: {len(failed)} runs of {method.id} failed, e.g. {shown(failed[0].path)} "
                       f"({failed[0].status})")
    paths = [outcome.path for outcome in outcomes]
    choices[0].method = method.id  # the report's tables name variants of one method apart
    return MethodRuns(method, choices[0], paths[-seeds:], paths, sum(outcome.reused for outcome in outcomes))


def _figure(experiment: Experiment, figure: Figure, panel: Panel, runs: list[MethodRuns], scale: str,
            folder: str) -> str:
    from ..plot import plot

    path = _figure_path(experiment, figure, panel, folder)
    side_files.clear(path)  # a link in its place is refused, never written through
    plot([p for method_runs in runs for p in method_runs.reported], path, x_axis=figure.x, y_axis=figure.y,
         logx=figure.logx, title=f"{experiment.figure_ref}, {panel.label}{_at_scale(panel, scale)}")
    return path


def _at_scale(panel: Panel, scale: str) -> str:
    """What the panel's keys are at the small scale, e.g. " (small scale: workers.n = 32)"."""
    if scale == "paper":
        return ""
    return f" (small scale: {', '.join(f'{s.key} = {s.small}' for s in panel.settings)})"


def _figure_path(experiment: Experiment, figure: Figure, panel: Panel, folder: str) -> str:
    suffix = "" if figure == experiment.figures[0] else f"-{figure.y}"
    return os.path.join(folder, f"figure-{panel.slug}{suffix}.png")


def _written(experiment: Experiment, folder: str) -> list[str]:
    """The files the driver itself writes into `folder` (tune writes the runs and TUNE.md)."""
    return [os.path.join(folder, "REPORT.md"), os.path.join(folder, "runs.csv"),
            *(_figure_path(experiment, figure, panel, folder)
              for panel in experiment.panels for figure in experiment.figures)]


def per_seed(path: str, claim: Claim, target: float) -> float:
    """One run's value for `claim`: time to f - f* <= target (inf: never) for kind "before"; else the
    last value of claim.metric, or its mean (kind "steadier": its variance) over the final claim.window
    of the snapshots; a diverged run is inf (-inf for kind "above", where larger is better)."""
    run = read_run(path)
    metrics = run["metrics"]
    if claim.kind == "before":
        reached = time_to_target(metrics, target)
        return math.inf if math.isnan(reached) else reached
    worst = -math.inf if claim.kind == "above" else math.inf
    values = np.asarray(metrics.get(claim.metric, []), dtype=float)
    if claim.metric not in metrics:
        raise RunError(f"{shown(path)} records no {claim.metric!r}; the claim needs it")
    if run["attrs"].get("status") == "diverged" or not values.size or not math.isfinite(values[-1]):
        return worst
    tail = values[-max(1, math.ceil(claim.window * values.size)):] if claim.window else values[-1:]
    if claim.kind == "steadier":
        return float(np.var(tail))
    return float(np.mean(tail))


def _check(claim: Claim, runs: list[MethodRuns], target: float) -> Check:
    by_method = {method_runs.spec.id: method_runs.reported for method_runs in runs}
    first = [per_seed(path, claim, target) for path in by_method[claim.first]]
    second = [per_seed(path, claim, target) for path in by_method[claim.second]]
    return check(claim, first, second)


def _number(value: float, unit: str = "") -> str:
    if math.isinf(value):
        return "never" if unit == " s" else "diverged"
    return f"{value:.3g}{unit}"


def _spread(values: list[float], unit: str) -> str:
    median, low, high = median_iqr(values)
    return f"{_number(median, unit)} [{_number(low, unit)}, {_number(high, unit)}]"


def _grid_note(method: MethodSpec, scale: str) -> str:
    values = ', '.join(f'{v:g}' for v in method.first_grid(scale))
    return f"first grid of {method.key}: {values}" if method.tuned else f"{method.key} = {values} as the paper fixes it"


def report(experiment: Experiment, scale: str, seeds: int, panels: dict[str, list[MethodRuns]],
           checks: dict[str, dict[int, Check]], figures: list[str], seconds: float,
           reused: tuple[int, int] = (0, 0)) -> str:
    """REPORT.md: setting with sources, step sizes, claims with our numbers and verdicts, files.
    `reused`: (runs kept from an earlier reproduction, all runs); the wall time is then this resumption's."""
    resumed = f" (this resumption, which kept {reused[0]} of the {reused[1]} runs finished before)" if reused[0] else ""
    lines = [f"# {experiment.figure_ref} of {experiment.paper}", "",
             f"`asyncopt reproduce {experiment.name} --scale {scale} --seeds {seeds}`: {experiment.description}.",
             f"Simulator; {seeds} reported seeds (workers.seed 0..{seeds - 1}), step sizes tuned on "
             f"{experiment.tuning_seeds[scale]} separate tuning seed(s) (workers.seed 1000, ...); wall time "
             f"{seconds:.0f} s{resumed} (the paper scale on a 2-core machine: {experiment.paper_time}).", ""]
    if scale == "small":
        lines += ["**Small scale**: the paper's structure at a size that runs in CI; its verdicts say what holds "
                  "at this size, not whether the paper's figure is reproduced (`--scale paper`).", ""]
    lines += ["## Setting", "", "| key | this run | paper | source |", "|---|---|---|---|"]
    labelled = [(setting, "") for setting in experiment.settings]
    labelled += [(setting, f" ({panel.label})") for panel in experiment.panels for setting in panel.settings]
    labelled += [(setting, f" ({method.id})") for method in experiment.methods for setting in method.settings]
    for setting, label in labelled:
        lines.append(f"| {setting.key}{label} | {setting.value(scale)} | {setting.paper} | {setting.source} |")
    target = experiment.target[scale]
    lines += ["", "## Claims", "", f"Verdict rule: {RULE}", "",
              "| claim | panel | method | ours (median [IQR]) | other method | ours (median [IQR]) | holds in | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for label, panel_checks in checks.items():
        for number, result in panel_checks.items():
            claim = result.claim
            unit = " s" if claim.kind == "before" else ""
            lines.append(f"| {number}. {claim.statement(target)} | {label} | {claim.first} | "
                         f"{_spread(result.first, unit)} | {claim.second} | {_spread(result.second, unit)} | "
                         f"{sum(result.holds)} of {len(result.holds)} seeds | **{result.verdict}** |")
    lines.append("")
    for number, claim in enumerate(experiment.claims, 1):
        measured = {"before": "time to target per seed", "steadier": "variance over the final window per seed"}.get(
            claim.kind, "final value per seed")
        where = f" on {', '.join(claim.panels)} only" if claim.panels else ""
        lines.append(f"{number}. \"{claim.quote}\" ({claim.source}). Checked as: {claim.statement(target)} ({measured})"
                     f"{where}.")
        missed = [label for label, panel_checks in checks.items()
                  if number in panel_checks and panel_checks[number].verdict == "not reproduced"]
        if missed:
            lines.append(f"   Not reproduced ({', '.join(missed)}); what to look at: {claim.look_at}.")
    lines += ["", "## Step sizes and results per method", ""]
    for label, runs in panels.items():
        lines += [f"### {label}", ""]
        for key in dict.fromkeys(method_runs.spec.key for method_runs in runs):
            choices = [method_runs.choice for method_runs in runs if method_runs.spec.key == key]
            lines.append(markdown(table_rows(choices, key), key, experiment.target[scale],
                                  experiment.tuning_seeds[scale]).rstrip())
        notes = [f"{method_runs.spec.id}: {_grid_note(method_runs.spec, scale)}"
                 f"{'; ' + method_runs.spec.note if method_runs.spec.note else ''}" for method_runs in runs]
        lines += [""] + [f"- {note}" for note in notes] + [""]
    lines += ["## Files", ""]
    drawn = [(figure, panel) for panel in experiment.panels for figure in experiment.figures]
    lines += [f"- `{os.path.basename(path)}`: {figure.y} against {figure.x} ({panel.label}), each method at its tuned "
              "step size (median and interquartile band over the reported seeds)"
              for path, (figure, panel) in zip(figures, drawn)]
    lines += ["- `runs.csv`: every run, tuning (`runs/PANEL/METHOD/tuning/`) and reported (`runs/PANEL/METHOD/`), "
              "from `asyncopt summary --csv`",
              "- `runs/PANEL/METHOD/TUNE.md`: the tuning of each method", ""]
    return "\n".join(lines)
