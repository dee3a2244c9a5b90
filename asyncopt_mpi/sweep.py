"""`asyncopt sweep`: the product of parameter grids and seeds, run into one folder (sim in-process, MPI by launching)."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing import Pool

from .config import load_config, parse_value
from .errors import ConfigError


# Bounds on what one sweep launches (a typo such as --seeds 1000000 would otherwise plan for hours).
MAX_RANKS = 4096
MAX_RUNS = 10_000
MAX_PROCESSES = 256


@dataclass
class SweepRun:
    name: str
    overrides: list[str]
    path: str


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
              backend: str) -> list[SweepRun]:
    """Every combination, each checked like `asyncopt run` would, before anything runs."""
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
            runs.append(SweepRun(name, overrides + chosen + seeding + [f"output.path={path}"], path))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ConfigError("--grid: two combinations give the same run name; make the values distinct")
    return runs


def _run_sim(task: tuple[str | None, SweepRun, bool]) -> tuple[str, int]:
    from .runtime.session import run_sim

    config_path, run, overwrite = task
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_sim(load_config(config_path, run.overrides, backend="sim"), overwrite=overwrite,
                       inputs=(config_path,) if config_path else ())
    return run.name, code


def _run_mpi(config_path: str | None, run: SweepRun, ranks: int, mpiexec: str, overwrite: bool = False) -> tuple[str, int]:
    from .plugins import requested_plugins

    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "asyncopt_mpi", "run", "--quiet"]
    command += ["--overwrite"] if overwrite else []
    command += [item for spec in requested_plugins() for item in ("--plugin", spec)]  # a [plugins] table travels in the config
    command += ([config_path] if config_path else []) + [item for override in run.overrides for item in ("--set", override)]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:  # the launcher is missing or not executable
        raise ConfigError(f"--mpiexec {mpiexec!r}: cannot start it ({exc.strerror}); give the path of mpiexec or srun") from None
    if done.returncode not in (0,):
        sys.stderr.write(done.stderr)
    return run.name, done.returncode


def sweep(config_path: str | None, grid_items: list[str], seeds: int, out: str, overrides: list[str],
          backend: str = "sim", ranks: int = 0, processes: int = 1, mpiexec: str = "mpiexec",
          overwrite: bool = False) -> list[tuple[str, int]]:
    """Run every combination into `out`; returns (run name, exit status) in order.
    A results file already in `out` is refused (that run fails) unless `overwrite`."""
    if backend == "mpi" and not 2 <= ranks <= MAX_RANKS:
        raise ConfigError(f"--ranks {ranks}: the mpi backend needs 2 to {MAX_RANKS} ranks per run (rank 0 is the server)")
    if not 0 <= seeds <= MAX_RUNS or not 1 <= processes <= MAX_PROCESSES:
        raise ConfigError(f"--seeds {seeds} / --processes {processes}: accepted: 0 to {MAX_RUNS} seeds (0: one run), "
                          f"1 to {MAX_PROCESSES} processes")
    os.makedirs(out, exist_ok=True)
    runs = plan_runs(config_path, grid_items, max(seeds, 1), out, overrides, backend)
    if backend == "sim":
        tasks = [(config_path, run, overwrite) for run in runs]
        if processes > 1:
            with Pool(processes) as pool:
                return list(pool.imap(_run_sim, tasks))
        return [_run_sim(task) for task in tasks]
    return [_run_mpi(config_path, run, ranks, mpiexec, overwrite) for run in runs]
