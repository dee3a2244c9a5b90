"""`asyncopt tune`: each method's best step size on tuning seeds, the grid extended until the best is bracketed,
then the chosen settings run on separate evaluation seeds.

As the papers tune ("each method with its best step size"), with what a reader can check:

1. Every method runs every value of the grid (`--grid method.lr=...`) on the tuning seeds
   (`workers.seed` = 1000, 1001, ...; never an evaluation seed) into OUT/tuning/.
2. The criterion of a (method, value): the median over the tuning seeds of the time to the
   target (`--target`, else `stop.target`; a run that never reaches it counts as never), and,
   between values equal on that (e.g. none reaches the target), the median of the last value of
   the metric (f - f*, or the loss when the problem has no known f*). A diverged run is worst.
3. Bracketing: while the best value is the smallest (largest) of those tried, the grid is
   extended on that side by the ratio of its two outermost values there (2 for a one-value grid),
   at most `--extensions` times per side; the output says when a best value stays at an edge.
   With more processes than tuning seeds, an extension tries as many values past the edge at once
   as the processes can run beside each other (each counts as one extension): the same wall time
   as one value, and fewer rounds when the best lies several steps out.
4. The best value of each method runs on the evaluation seeds (`workers.seed` = 0 .. E-1) into
   OUT/, so `asyncopt plot OUT` draws them as medians with interquartile bands, and OUT/tune.csv
   and OUT/TUNE.md hold the table: method, best value, bracketed, the values tried, and the median
   and interquartile range of the criterion over the evaluation seeds.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import side_files
from .config import parse_value
from .errors import ConfigError, RunError
from .inputs import shown
from .sweep import Outcome, sweep, verdict
from .validate import load_config

TUNING_SEED_BASE = 1000
MAX_EXTENSIONS = 10


@dataclass
class Trial:
    """One (method, value) on the tuning seeds."""

    value: float
    times: list[float] = field(default_factory=list)  # time to target per seed (inf: never)
    finals: list[float] = field(default_factory=list)  # last value of the metric per seed (inf: diverged)

    def key(self) -> tuple[float, float]:
        return (float(np.median(self.times)) if self.times else math.inf,
                float(np.median(self.finals)) if self.finals else math.inf)


@dataclass
class Choice:
    method: str
    value: float
    bracketed: bool
    tried: list[float]
    metric: str = "suboptimality"
    evaluation: list[tuple[float, float]] = field(default_factory=list)  # (time to target, final) per seed


def _values(grid: list[str]) -> tuple[str, list[float]]:
    from .sweep import parse_grid

    parsed = parse_grid(grid)
    if len(parsed) != 1:
        raise ConfigError("--grid: tune takes exactly one key to tune, e.g. --grid method.lr=0.01,0.1,1")
    key, texts = parsed[0]
    values = []
    for text in texts:
        value = parse_value(text)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise ConfigError(f"--grid {key}: {text[:40]!r} is not a positive number; tune extends the grid by factors")
        values.append(float(value))
    return key, sorted(set(values))


def _read(path: str, target: float | None) -> tuple[float, float, str]:
    """(time to target or inf, last value of the metric or inf, metric name) of one run's file."""
    from .results import read_run

    try:
        run = read_run(path)
    except Exception:  # refused or failed before its file existed: worst
        return math.inf, math.inf, "suboptimality"
    metrics = run["metrics"]
    known = "suboptimality" in metrics and len(metrics["suboptimality"]) and np.isfinite(metrics["suboptimality"]).any()
    metric = "suboptimality" if known and math.isfinite(run["problem"].get("f_star", math.nan)) else "loss"
    values = np.asarray(metrics.get(metric, []), dtype=float)
    if run["attrs"].get("status") == "diverged" or not values.size or not np.isfinite(values[-1]):
        return math.inf, math.inf, metric
    reached = np.flatnonzero(values <= target) if target is not None and metric == "suboptimality" else []
    when = float(metrics["time"][reached[0]]) if len(reached) else math.inf
    return when, float(values[-1]), metric


def _format(value: float) -> str:
    return f"{value:.6g}"


class Tuner:
    def __init__(self, config_path: str | None, key: str, methods: list[str], overrides: list[str], out: str,
                 tuning_seeds: int, evaluation_seeds: int, target: float | None, extensions: int, backend: str,
                 processes: int, mpiexec: str, overwrite: bool, log, resume: bool = False):
        self.config_path, self.key, self.methods, self.overrides = config_path, key, methods, overrides
        self.out, self.tuning_seeds, self.evaluation_seeds = out, tuning_seeds, evaluation_seeds
        self.target, self.extensions, self.backend = target, extensions, backend
        self.processes, self.mpiexec, self.overwrite, self.log = processes, mpiexec, overwrite, log
        self.resume = resume  # keep the finished runs already in the folders (sweep's resume)
        self.outcomes: list[Outcome] = []

    def _sweep(self, folder: str, method: str, values: list[float], seeds: list[int]) -> list[str]:
        """Run `method` at `values` x `seeds` into `folder`; the files in that order (value-major)."""
        grid = [f"method.name={method}", f"{self.key}={','.join(_format(v) for v in values)}",
                f"workers.seed={','.join(map(str, seeds))}"]
        outcomes = sweep(self.config_path, grid, 1, folder, self.overrides, self.backend, 0, self.processes,
                         self.mpiexec, self.overwrite, self.resume)
        self.outcomes += outcomes
        return [outcome.path for outcome in outcomes]

    def tune(self, method: str, values: list[float]) -> Choice:
        seeds = [TUNING_SEED_BASE + k for k in range(self.tuning_seeds)]
        trials: dict[float, Trial] = {}
        metric = "suboptimality"
        pending = values
        extended = {"low": 0, "high": 0}
        # Processes a tuning sweep leaves idle try the next extensions at once (same wall time, more values).
        ahead = max(1, self.processes // len(seeds))
        while pending:
            paths = self._sweep(os.path.join(self.out, "tuning"), method, pending, seeds)
            for index, value in enumerate(pending):
                trial = trials.setdefault(value, Trial(value))
                for path in paths[index * len(seeds):(index + 1) * len(seeds)]:
                    when, final, metric = _read(path, self.target)
                    trial.times.append(when)
                    trial.finals.append(final)
            tried = sorted(trials)
            best = min(tried, key=lambda v: trials[v].key())
            pending = []
            if best == tried[0] and extended["low"] < self.extensions:
                factor = tried[1] / tried[0] if len(tried) > 1 else 2.0
                pending = self._extension(best, factor, extended, "low", ahead)
            elif best == tried[-1] and extended["high"] < self.extensions:
                factor = tried[-1] / tried[-2] if len(tried) > 1 else 2.0
                pending = self._extension(best, factor, extended, "high", ahead)
            if pending:
                self.log(f"{method}: best {self.key} = {_format(best)} is at the edge of {_list(tried)}; "
                         f"trying {', '.join(_format(value) for value in pending)}")
        tried = sorted(trials)
        best = min(tried, key=lambda v: trials[v].key())
        bracketed = tried[0] < best < tried[-1]
        if not bracketed:
            self.log(f"{method}: best {self.key} = {_format(best)} is still at the edge of {_list(tried)} after "
                     f"{self.extensions} extensions; not bracketed")
        return Choice(method, best, bracketed, tried, metric)

    def _extension(self, best: float, factor: float, extended: dict[str, int], side: str, ahead: int) -> list[float]:
        """The next values past `best` on one side (`ahead` of them, within the extensions left there)."""
        count = min(ahead, self.extensions - extended[side])
        extended[side] += count
        if side == "low":
            return [best / factor ** step for step in range(1, count + 1)]
        return [best * factor ** step for step in range(1, count + 1)]

    def evaluate(self, choice: Choice) -> None:
        seeds = list(range(self.evaluation_seeds))
        for path in self._sweep(self.out, choice.method, [choice.value], seeds):
            when, final, _ = _read(path, self.target)
            choice.evaluation.append((when, final))


def _list(values: list[float]) -> str:
    return "(" + ", ".join(_format(v) for v in values) + ")"


def _median_iqr(values: list[float]) -> tuple[float, float, float]:
    """Median, 25th and 75th percentile; runs that never reached (inf) count as larger than any other
    (and -inf, a diverged run where larger is better, as smaller)."""
    if not values:
        return math.inf, math.inf, math.inf
    big = np.finfo(float).max / 4
    finite = np.clip(np.asarray(values, dtype=float), -big, big)  # +-inf, kept in order
    low, median, high = np.percentile(finite, [25, 50, 75])
    return tuple(math.copysign(math.inf, v) if abs(v) >= big / 2 else float(v) for v in (median, low, high))


def table_rows(choices: list[Choice], key: str) -> list[dict[str, object]]:
    rows = []
    for choice in choices:
        times = [when for when, _ in choice.evaluation]
        finals = [final for _, final in choice.evaluation]
        time_median, time_low, time_high = _median_iqr(times)
        final_median, final_low, final_high = _median_iqr(finals)
        rows.append({
            "method": choice.method, key: choice.value, "bracketed": "yes" if choice.bracketed else "no",
            "tried": " ".join(_format(v) for v in choice.tried), "evaluation_seeds": len(choice.evaluation),
            "reached_target": sum(math.isfinite(t) for t in times),
            "time_to_target_median": time_median, "time_to_target_q25": time_low, "time_to_target_q75": time_high,
            f"final_{choice.metric}_median": final_median, f"final_{choice.metric}_q25": final_low,
            f"final_{choice.metric}_q75": final_high,
        })
    return rows


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "never" if value == math.inf else f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict[str, object]], key: str, target: float | None, tuning_seeds: int) -> str:
    lines = [f"Best `{key}` per method: criterion = median over {tuning_seeds} tuning seeds of the time to "
             f"f - f* <= {target if target is not None else '(no target)'}, then of the final value; evaluation "
             "on separate seeds (median [25th, 75th percentile]).", ""]
    lines.append(f"| method | best {key} | bracketed | values tried | reached target | time to target | final value |")
    lines.append("|---|---|---|---|---|---|---|")
    for row in rows:
        final = [name for name in row if name.startswith("final_") and name.endswith("_median")][0]
        stem = final[: -len("_median")]
        lines.append(
            f"| {row['method']} | {_cell(row[key])} | {row['bracketed']} | {row['tried']} | "
            f"{row['reached_target']} of {row['evaluation_seeds']} | {_cell(row['time_to_target_median'])} "
            f"[{_cell(row['time_to_target_q25'])}, {_cell(row['time_to_target_q75'])}] | {_cell(row[final])} "
            f"[{_cell(row[stem + '_q25'])}, {_cell(row[stem + '_q75'])}] |")
    return "\n".join(lines) + "\n"


def tune(config_path: str | None, grid: list[str], out: str, *, methods: list[str] | None = None,
         overrides: list[str] = (), tuning_seeds: int = 3, evaluation_seeds: int = 5, target: float | None = None,
         extensions: int = 3, backend: str = "sim", processes: int = 1, mpiexec: str = "mpiexec",
         overwrite: bool = False, log=print, resume: bool = False) -> tuple[list[Choice], list[Outcome]]:
    """Tune, extend until bracketed, evaluate; write OUT/tune.csv and OUT/TUNE.md. See the module doc.
    With `resume`, runs whose files hold them finished are kept (sweep's resume); the choices are made from the
    files all the same, so they are those of a tuning that ran them all."""
    key, values = _values(grid)
    if not 1 <= tuning_seeds <= 100 or not 1 <= evaluation_seeds <= 1000 or not 0 <= extensions <= MAX_EXTENSIONS:
        raise ConfigError(f"--seeds {tuning_seeds} / --eval-seeds {evaluation_seeds} / --extensions {extensions}: "
                          f"accepted: 1 to 100 tuning seeds, 1 to 1000 evaluation seeds, 0 to {MAX_EXTENSIONS} extensions")
    # With the first method named: overrides may hold its own keys (method.gradient_sampling), unknown to the default.
    first = [f"method.name={methods[0]}"] if methods else []
    base = load_config(config_path, [*overrides, *first], backend="sim", require_stop=True)
    if target is None:
        target = base.stop.target
    methods = methods or [base.method.name]
    for method in methods:  # every method checked before anything runs
        load_config(config_path, [*overrides, f"method.name={method}"], backend="sim")
    os.makedirs(out, exist_ok=True)
    for name in ("tune.csv", "TUNE.md"):  # before anything runs: a link in their place is refused
        side_files.check(os.path.join(out, name))
    tuner = Tuner(config_path, key, methods, list(overrides), out, tuning_seeds, evaluation_seeds, target, extensions,
                  backend, processes, mpiexec, overwrite, log, resume)
    choices = []
    for method in methods:
        choice = tuner.tune(method, values)
        tuner.evaluate(choice)
        choices.append(choice)
    rows = table_rows(choices, key)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(dict.fromkeys(name for row in rows for name in row)))
    writer.writeheader()
    writer.writerows(rows)
    try:  # never through a link planted where the table goes
        side_files.write_text(os.path.join(out, "tune.csv"), table.getvalue())
        side_files.write_text(os.path.join(out, "TUNE.md"), markdown(rows, key, target, tuning_seeds))
    except OSError as exc:
        raise RunError(f"cannot write the tables in {shown(out)}: {exc.strerror or exc}") from None
    return choices, tuner.outcomes


def summary_line(outcomes: list[Outcome]) -> tuple[str, int]:
    """The tuning's closing line and exit status: diverged grid values are results, other failures are not."""
    line, _ = verdict(outcomes)
    failed = any(outcome.code != 0 and outcome.status != "diverged" for outcome in outcomes)
    return line, 1 if failed else 0
