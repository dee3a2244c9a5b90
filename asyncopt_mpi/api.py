"""The Python front door: load a config, run it in this process or under mpiexec, read a results file.

Errors are the package's own exceptions (ConfigError and DataError for bad input, RunError
when a run fails), never `sys.exit`. See the module docstring of `asyncopt_mpi` for an example.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .config import Config, parse_toml, toml_document, toml_value
from .errors import AsyncoptError, ConfigError, DataError, RunError, UserError
from .output import refuse_inputs
from .plugins import load_plugins, merge
from .validate import load_config as _load_config

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], Config]
Overrides = Union[Sequence[str], Mapping[str, Any]]


class PandasMissingError(ImportError):
    """pandas is optional: RunResult.to_pandas / metrics_frame need it installed."""


def load_config(
    config: ConfigSource, overrides: Overrides = (), *, backend: str = "sim", output: str | None = None,
    plugins: Sequence[str] = (),
) -> Config:
    """A validated Config from a TOML path, a dict of sections, or a Config (copied, not changed).

    `overrides` are `--set` items ("method.lr=0.05") or a mapping {"method.lr": 0.05}; `plugins`
    are modules or .py files imported first (and recorded in the config's [plugins] table).
    Raises ConfigError (or DataError) naming the key at fault.
    """
    resolved = load_plugins(plugins, requested=False)  # this config's, not every later one's
    items = _override_items(overrides)
    output = None if output is None else os.fspath(output)
    if isinstance(config, Config):
        loaded = _load_config(None, items, backend=backend, output=output, text=config.to_toml())
    elif isinstance(config, Mapping):
        try:
            text = _to_toml(config)
        except RecursionError:
            raise ConfigError("config dict: nests lists or dicts too deeply for a config") from None
        parse_toml(text, "config dict")  # a value TOML cannot hold, or nesting too deep: one line
        loaded = _load_config(None, items, backend=backend, output=output, text=text)
    else:
        loaded = _load_config(os.fspath(config), items, backend=backend, output=output)
    loaded.plugins.plugins = merge(resolved, loaded.plugins.plugins)
    return loaded


def _override_items(overrides: Overrides) -> list[str]:
    if isinstance(overrides, Mapping):
        return [f"{key}={toml_value(_plain(value))}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values (TOML text cannot spell np.True_)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _to_toml(raw: Mapping[str, Any]) -> str:
    for section, values in raw.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"config dict: {section!r} must be a section (a dict of keys), got {values!r}")
        for key, value in values.items():
            if isinstance(value, Mapping):
                raise ConfigError(f"config dict: {section}.{key} must be a value, not a nested dict")
    return toml_document((str(section), [(str(key), _plain(value)) for key, value in values.items()])
                         for section, values in raw.items())


def run(
    config: ConfigSource, backend: str = "sim", *, overrides: Overrides = (), ranks: int | None = None,
    output: str | os.PathLike[str] | None = None, plugins: Sequence[str] = (), quiet: bool = True,
    overwrite: bool = False, mpiexec: str | None = None, timeout: float | None = None,
) -> RunResult:
    """Run a config and return its results file read back.

    backend="sim": the virtual-clock simulator in this process (workers.n required).
    backend="mpi": `mpiexec -n ranks python -m asyncopt_mpi run` (ranks defaults to workers.n + 1);
    its processes import the config's plugins and the modules of methods/problems registered here.
    An existing results file is refused unless overwrite=True (it is replaced once the new run
    has started cleanly). Raises ConfigError/DataError (UserError) for bad input and RunError when
    the run fails (the file, closed with status failed, is at `error.path`).
    """
    if backend not in ("sim", "mpi"):
        raise ConfigError(f"backend {backend!r} is not accepted; accepted: sim, mpi")
    try:
        loaded = load_config(config, overrides, backend=backend, output=output, plugins=plugins)
        replace = {"overwrite": True} if overwrite else {}
        if backend == "sim":
            from .runtime.session import simulate

            return load(simulate(loaded, quiet=quiet, inputs=_config_file(config), **replace).path)
        return _run_mpi(loaded, ranks, mpiexec, timeout, ["--overwrite"] if overwrite else [], _config_file(config))
    except AsyncoptError as error:
        raise _in_api_words(error)


# What the command line's refusals ask for, as this function's parameters.
_API_WORDS = (("pass --overwrite", "pass overwrite=True"), ("another --output", "another output="),
              ("give --output FILE.h5", "give output='FILE.h5'"))


def _in_api_words(error: AsyncoptError) -> AsyncoptError:
    """The error with the command line's words as this API's; a plain UserError (e.g. a refused output
    path) as the ConfigError this API documents, since UserError is not exported."""
    text = str(error)
    for flag, parameter in _API_WORDS:
        text = text.replace(flag, parameter)
    if type(error) is UserError:
        translated = ConfigError(text)
        translated.__dict__.update(error.__dict__)
        return translated
    if text != str(error):
        error.args = (text,)
    return error


def _config_file(config: ConfigSource) -> tuple[str, ...]:
    """The TOML file a config came from, if any: an input the results file must never be."""
    return (os.fspath(config),) if isinstance(config, (str, os.PathLike)) else ()


def _run_mpi(config: Config, ranks: int | None, mpiexec: str | None, timeout: float | None,
             flags: list[str], inputs: tuple[str, ...] = ()) -> RunResult:
    if ranks is None:
        if config.workers.n is None:
            raise ConfigError("ranks: give ranks = workers + 1 (or workers.n) for backend='mpi'")
        ranks = config.workers.n + 1
    if ranks < 2:
        raise ConfigError(f"ranks: the mpi backend needs at least 2 ranks (rank 0 is the server), got {ranks}")
    _check_importable(config)  # the config's [plugins] table already lists the modules of methods registered here
    path = config.resolve_output_path(ranks - 1)
    refuse_inputs(path, inputs)  # the ranks read a copy of the config: they cannot tell its file
    launcher = mpiexec or shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if launcher is None:
        raise ConfigError("backend='mpi': no mpiexec found; install an MPI (pip install mpich) or pass mpiexec=PATH")
    with tempfile.TemporaryDirectory(prefix="asyncopt-") as folder:
        config_path = os.path.join(folder, "config.toml")
        with open(config_path, "w") as handle:
            handle.write(config.to_toml())
        command = [launcher, "-n", str(ranks), sys.executable, "-m", "asyncopt_mpi", "run", config_path,
                   "--backend", "mpi", "--output", path, "--quiet", *flags]
        try:
            # The ranks see this process's import path, so modules imported here import there too.
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(entry for entry in sys.path if entry))
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  env=env)
        except subprocess.TimeoutExpired:
            raise RunError(f"mpiexec did not finish within {timeout:g} s: {' '.join(command)}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        message = next((line.split("error: ", 1)[1] for line in lines if "error: " in line), None)
        message = message or (lines[-1] if lines else f"mpiexec exited with status {done.returncode}")
        error: Exception = ConfigError(message) if done.returncode == 2 else RunError(message)
        error.path = path  # type: ignore[attr-defined]
        raise error
    return load(path)


def _check_importable(config: Config) -> None:
    """The MPI ranks import the run's plugins; a method or problem defined in __main__ cannot travel."""
    from .methods import ORIGINS as METHOD_ORIGINS
    from .problems import ORIGINS as PROBLEM_ORIGINS

    for kind, name, origins in (("method", config.method.name, METHOD_ORIGINS),
                                ("problem", config.problem.name, PROBLEM_ORIGINS)):
        if origins.get(name) == "module __main__":
            raise ConfigError(
                f"{kind} {name!r} is defined in __main__ (this script or notebook), which the MPI ranks cannot "
                f"import; move it into a .py file and pass plugins=['that_file.py']"
            )


def load(path: str | os.PathLike[str]) -> RunResult:
    """Read a results file: root attributes and every group's datasets as numpy arrays."""
    import h5py

    from .results import DAMAGE, damaged, decode_attrs, open_results, values

    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"results file not found: {path}")
    groups: dict[str, dict[str, np.ndarray]] = {}
    group_attrs: dict[str, dict[str, Any]] = {}
    try:
        with open_results(path) as handle:
            attrs = decode_attrs(handle.attrs)
            for name, group in handle.items():
                if not isinstance(group, h5py.Group):
                    continue
                group_attrs[name] = decode_attrs(group.attrs)
                columns: dict[str, np.ndarray] = {}

                def take(inner: str, item: Any, columns: dict[str, np.ndarray] = columns) -> None:
                    if isinstance(item, h5py.Dataset):
                        columns[inner] = values(item)

                group.visititems(take)
                groups[name] = columns
    except DAMAGE as exc:
        raise DataError(str(damaged(path, exc))) from None
    return RunResult(path, attrs, groups, group_attrs)



@dataclass(frozen=True, eq=False)
class RunResult:
    """One run's results file in memory.

    `attrs`: root attributes (method, problem, backend, n_workers, config TOML text, status, ...).
    `groups[name][column]`: every dataset as a numpy array (nested ones as "state/point").
    `group_attrs[name]`: attributes of a group (e.g. /problem's f_star, dim, n_samples).
    """

    path: str
    attrs: dict[str, Any]
    groups: dict[str, dict[str, np.ndarray]]
    group_attrs: dict[str, dict[str, Any]]

    def __getitem__(self, group: str) -> dict[str, np.ndarray]:
        try:
            return self.groups[group]
        except KeyError:
            raise KeyError(f"{self.path} has no group {group!r}; it has: {', '.join(sorted(self.groups))}") from None

    # The groups every run has (README "Results file").
    @property
    def trace(self) -> dict[str, np.ndarray]:
        return self.groups.get("trace", {})

    @property
    def events(self) -> dict[str, np.ndarray]:
        return self.groups.get("events", {})

    @property
    def snapshots(self) -> dict[str, np.ndarray]:
        return self.groups.get("snapshots", {})

    @property
    def metrics(self) -> dict[str, np.ndarray]:
        return self.groups.get("metrics", {})

    @property
    def workers(self) -> dict[str, np.ndarray]:
        return self.groups.get("workers", {})

    @property
    def problem(self) -> dict[str, Any]:
        """/problem's attributes: f_star, dim, n_samples, name."""
        return self.group_attrs.get("problem", {})

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", ""))

    @property
    def method(self) -> str:
        return str(self.attrs.get("method", ""))

    @property
    def plugins(self) -> list[str]:
        """The plugins the run imported (what resume and evaluate import again)."""
        return [str(item) for item in self.attrs.get("plugin_specs", [])]

    def to_pandas(self, group: str = "metrics") -> Any:
        """A group as a pandas DataFrame (one column per 1-D dataset; rows of 2-D ones as arrays)."""
        pandas = _pandas()
        data = self[group]
        lengths = [len(value) for value in data.values() if np.ndim(value) >= 1]
        rows = min(lengths) if lengths else 0
        columns = {}
        for name, value in data.items():
            if np.ndim(value) == 1:
                columns[name] = value[:rows]
            elif np.ndim(value) == 2:
                columns[name] = list(value[:rows])
        return pandas.DataFrame(columns)

    def metrics_frame(self) -> Any:
        """/metrics as a DataFrame with the run's method, problem, backend, workers and file as columns,
        so frames of several runs concatenate into one table."""
        frame = self.to_pandas("metrics")
        for key in ("method", "problem", "backend", "n_workers"):
            frame[key] = self.attrs.get(key)
        frame["path"] = self.path
        return frame

    def __repr__(self) -> str:
        return (f"RunResult({self.path!r}, method={self.method!r}, status={self.status!r}, "
                f"groups={sorted(self.groups)})")


def load_many(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *, all_keys: bool = False) -> Any:
    """The metrics of many runs as one tidy pandas DataFrame: a row per snapshot of each run, with the
    run's method, problem, backend, n_workers, path, status, seed, and one column per config key that
    differs among the runs (`all_keys=True`: every key), e.g. the `method.lr` of a sweep. A folder
    stands for the .h5 files in it.

        frame = ao.load_many("results/sweep")
        frame.groupby(["method", "method.lr"])["suboptimality"].last()
    """
    from .config import parse_stored_config
    from .parameters import cell, flat_config, parameter_columns

    pandas = _pandas()
    items = [os.fspath(item) for item in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    files: list[str] = []
    for item in items:
        files += sorted(os.path.join(item, name) for name in os.listdir(item) if name.endswith(".h5")) \
            if os.path.isdir(item) else [item]
    if not files:
        raise DataError(f"no results files in {', '.join(items)[:200]}")
    runs = [load(path) for path in files]
    configs = [flat_config(parse_stored_config(run.attrs.get("config", ""), run.path)) for run in runs]
    columns = [name for name in parameter_columns(configs, all_keys) if name != "method.name"]
    frames = []
    for run, config in zip(runs, configs):
        frame = run.metrics_frame()
        frame["status"] = run.status
        frame["seed"] = config.get("workers.seed", 0)
        for name in columns:
            frame[name] = cell(config.get(name))
        frames.append(frame)
    return pandas.concat(frames, ignore_index=True)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise PandasMissingError(
            "RunResult.to_pandas and metrics_frame need pandas, an optional dependency: pip install pandas "
            "(or pip install 'asyncopt-mpi[pandas]'); without it the same columns are numpy arrays in RunResult.groups"
        ) from None
    return pandas


__all__ = ["PandasMissingError", "RunResult", "load", "load_config", "load_many", "run"]
