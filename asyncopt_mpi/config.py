"""Run configuration: one dataclass per TOML section, defaults, `--set` overrides and validation.

Every key a user can write is declared here (common keys) or by the chosen problem or
method class (their own `params`), so a typo is an error that names the key and lists what
is accepted instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import string
import tomllib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import ConfigError, UserError
from .inputs import CONFIG_MAX_BYTES, check_input, clip, read_input, shown
from .storage import COMPRESSIONS

COMPUTE_MODELS = ("fixed", "sqrt", "uniform", "exponential", "poisson", "normal", "geometric", "trace", "uniform_range")
COMPUTE_PROFILES = ("equal", "sqrt", "linear")
COMM_MODELS = ("none", "fixed", "sqrt", "uniform_range")
BACKENDS = ("mpi", "sim")


@dataclass
class ProblemConfig:
    name: str = "quadratic"
    dim: int = 100
    samples: int = 0
    noise: float = 0.0
    noise_type: str = "add"
    data: str = ""
    seed: int = 0
    max_memory: int = 0  # bytes a process may use for data and vectors; 0: half the available memory (memory.py)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodConfig:
    name: str = "async_sgd"
    lr: float = 0.1
    batch: int = 1
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkersConfig:
    n: int | None = None
    compute: str = "fixed"
    compute_profile: str = "sqrt"
    compute_scale: float = 0.01
    compute_times: list[float] = field(default_factory=list)
    compute_p: float = 0.5
    compute_trace: str = ""  # with compute = "trace": CSV (worker,seconds lines) or .npy (workers x times)
    comm: str = "none"
    comm_scale: float = 0.0
    comm_times: list[float] = field(default_factory=list)
    # compute / comm = "uniform_range": every job draws its seconds per gradient / per float from U(a, b)
    compute_range: list[float] = field(default_factory=list)
    comm_range: list[float] = field(default_factory=list)
    data_split: str = "iid"
    dirichlet_alpha: float = 0.5
    dead_after: list[float] = field(default_factory=list)
    crash_after: list[float] = field(default_factory=list)
    slowdown: list[list[float]] = field(default_factory=list)
    cache_points: bool = True  # send a point only to workers that lack it (false: with every job)
    seed: int = 0


@dataclass
class StopConfig:
    time: float | None = None
    iterations: int | None = None
    gradients: int | None = None
    target: float | None = None
    grace: float = 10.0  # seconds workers have to acknowledge the stop before the job is ended


@dataclass
class OutputConfig:
    path: str = "results/{method}-{problem}-{backend}-n{workers}.h5"  # placeholders: OUTPUT_PLACEHOLDERS
    snapshot_every: float = 0.5
    evaluate_inline: bool = False  # evaluate the loss at every snapshot during the run (shown in progress)
    # HDF5 file locks on the results file: true, false (e.g. Lustre, GPFS) or "auto" (HDF5's default,
    # which honours HDF5_USE_FILE_LOCKING); results.use_locking passes it on
    hdf5_locking: bool | str = "auto"
    # The tables that grow per result (/trace, /events, /hops, /snapshots' columns): "none", or
    # "gzip-1" ... "gzip-9", deflate at that level after a byte shuffle, once the file is closed (storage.py)
    compression: str = "none"


@dataclass
class GraphConfig:
    topology: str = "none"
    rho: float = 1.0
    edges: str = ""


@dataclass
class PluginsConfig:
    plugins: list[str] = field(default_factory=list)  # modules or .py files imported before validation


@dataclass
class Config:
    problem: ProblemConfig = field(default_factory=ProblemConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    backend: str = "mpi"
    source_text: str = ""
    segment: int = 0  # 0 for a new run, k for its k-th resumption (not a config key)
    resolved_path: str = ""  # output.path with its placeholders filled, fixed once per run (not a config key)

    def output_path(self) -> str:
        """The results file: the resolved path once resolve_output_path ran, else output.path filled now."""
        return self.resolved_path or self.fill_output_path(self.workers.n)

    def fill_output_path(self, n_workers: int | None, now: float | None = None) -> str:
        """output.path with OUTPUT_PLACEHOLDERS filled in ({workers} is n_workers, or 0 when unknown).

        ConfigError for any other placeholder, or one with a format spec, conversion, attribute or index.
        """
        import time

        check_output_placeholders(self.output.path)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
        return self.output.path.format(
            method=self.method.name, problem=self.problem.name, backend=self.backend,
            workers=n_workers or 0, seed=self.workers.seed, timestamp=stamp,
            array_task=os.environ.get("SLURM_ARRAY_TASK_ID", "0") or "0",
        )

    def resolve_output_path(self, n_workers: int) -> str:
        """Fix the results file for this run (called once, on rank 0 under MPI, then broadcast)."""
        self.resolved_path = self.fill_output_path(n_workers)
        return self.resolved_path

    def to_toml(self) -> str:
        """The full resolved config as TOML text (stored in the results file)."""
        return toml_document((section, _section_items(getattr(self, section))) for section in SECTIONS)


# Placeholders output.path may contain: {array_task} is SLURM_ARRAY_TASK_ID (0 outside an array),
# {timestamp} the UTC start time YYYYmmdd-HHMMSS, {seed} workers.seed, {workers} the number of workers.
OUTPUT_PLACEHOLDERS = ("method", "problem", "backend", "workers", "seed", "timestamp", "array_task")


def check_output_placeholders(path: str) -> None:
    """Refuse (ConfigError) an output.path with a placeholder other than a bare {name} of OUTPUT_PLACEHOLDERS.

    A format spec ({workers:>2000000000} would build a 2 GB name), a conversion, an attribute or
    an index ({method.__class__}) is refused before anything is formatted; {{ and }} are braces.
    """
    accepted = ", ".join("{" + name + "}" for name in OUTPUT_PLACEHOLDERS)
    try:
        fields = list(string.Formatter().parse(path))
    except ValueError as exc:  # a lone { or }
        message = f"output.path: {exc} (write {{{{ or }}}} for a brace); accepted placeholders: {accepted}"
        raise ConfigError(message) from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in OUTPUT_PLACEHOLDERS or spec or conversion:
            written = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(
                f"output.path: placeholder {shown(written)} is not accepted (a placeholder is a bare name: no format "
                f"spec, conversion, attribute or index); accepted placeholders: {accepted}"
            )


SECTIONS = {
    "problem": ProblemConfig,
    "method": MethodConfig,
    "workers": WorkersConfig,
    "stop": StopConfig,
    "output": OutputConfig,
    "graph": GraphConfig,
    "plugins": PluginsConfig,
}
# Sections whose extra keys are the chosen problem's or method's own parameters.
OPEN_SECTIONS = ("problem", "method")


def _section_items(section: Any) -> list[tuple[str, Any]]:
    items = [(f.name, getattr(section, f.name)) for f in dataclasses.fields(section) if f.name != "params"]
    return items + sorted(getattr(section, "params", {}).items())


def toml_document(sections: Iterable[tuple[str, Iterable[tuple[str, Any]]]]) -> str:
    """TOML text of (section, [(key, value), ...]) pairs; None values are left out (TOML has no null)."""
    lines: list[str] = []
    for section, items in sections:
        lines.append(f"[{_toml_key(section)}]")
        lines += [f"{_toml_key(key)} = {toml_value(value)}" for key, value in items if value is not None]
        lines.append("")
    return "\n".join(lines)


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


def toml_value(value: Any) -> str:
    """One value as TOML text (strings, booleans, numbers with nan/inf, lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON escapes are TOML basic-string escapes, but not its surrogate pairs: non-ASCII stays as is.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


# Arrays and tables may nest this deep (the root table counts as one level); real configs need 3 or 4.
MAX_TOML_DEPTH = 32
_KEY_PART = r"""(?:[\w-]++|"[^"\n]*+"|'[^'\n]*+')"""
# A dotted key of more parts than that (a.b.c...): TOML's reader spends time and memory quadratic in
# their number on one (minutes for 100 kB), so such text is refused before it is parsed.
_LONG_DOTTED_KEY = re.compile(rf"(?<![\w-]){_KEY_PART}(?:\s*+\.\s*+{_KEY_PART}){{{MAX_TOML_DEPTH},}}")


def parse_toml(text: str, subject: str) -> dict[str, Any]:
    """TOML text as a table; ConfigError (one line naming `subject`) if it is not TOML or nests too deeply."""
    too_deep = f"{subject} nests arrays, tables or dotted keys more than {MAX_TOML_DEPTH} levels deep"
    if _LONG_DOTTED_KEY.search(text):
        raise ConfigError(too_deep)
    try:
        table = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(too_deep) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more digits than Python converts
        raise ConfigError(f"{subject} is not valid TOML: {clip(str(exc))}") from None
    if _depth(table) > MAX_TOML_DEPTH:
        raise ConfigError(too_deep)
    return table


def _depth(value: Any) -> int:
    """How deep lists and dicts nest in value (1 for a flat one), counted without recursion.

    Stops counting once past MAX_TOML_DEPTH.
    """
    deepest, pending = 0, [(value, 1)]
    while pending and deepest <= MAX_TOML_DEPTH:
        item, level = pending.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_value(text: str) -> Any:
    """A `--set` value: TOML syntax if it parses (numbers, booleans, arrays), else a plain string."""
    try:
        return parse_toml(f"v = {text}", "--set")["v"]
    except ConfigError:
        return text


def parse_stored_config(text: Any, source: str = "") -> dict[str, Any]:
    """A results file's stored config text as a table; ConfigError (one line, exit 2) if it is not TOML.

    Readers of results files (evaluate, plot, summary, resume) parse the stored text only here,
    so an old file whose config holds an escape TOML refuses (e.g. a surrogate such as \\udcff
    from a path that was not UTF-8) is one line naming the file, never a traceback.
    """
    where = f"{source}: " if source else ""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}the stored config is not UTF-8 text: {clip(str(exc))}") from None
    if not isinstance(text, str):
        raise ConfigError(f"{where}the stored config is not text (got {type(text).__name__})")
    return parse_toml(text, f"{where}the stored config")


def load_config(
    path: str | None,
    overrides: list[str] = (),
    method: str | None = None,
    backend: str = "mpi",
    output: str | None = None,
    require_stop: bool = True,
    text: str | None = None,
) -> Config:
    """Read a TOML file, apply `--set section.key=value` overrides, validate; raise ConfigError.

    require_stop=False is for commands that read a config without running it (theory).
    `text` is TOML given directly (a results file's stored config), read instead of `path`.
    """
    raw: dict[str, Any] = {}
    if text is not None:
        raw = parse_stored_config(text)
    elif path is not None:
        text = read_config_file(path).decode("utf-8", errors="replace")
        raw = parse_toml(text, clip(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {shown(item)}: expected section.key=value, e.g. --set method.lr=0.05")
        if section not in SECTIONS:
            raise ConfigError(
                f"--set {shown(item)}: unknown section [{clip(section)}]; accepted: {', '.join(SECTIONS)}"
            )
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"--set {shown(item)}: {section} is not a section")
        parsed = parse_value(value.strip())
        if _is_string_field(section, name) and not isinstance(parsed, str):
            parsed = value.strip()  # a string key takes the text as written (e.g. a path "1e3")
        raw[section][name] = parsed
    if method is not None:
        raw.setdefault("method", {})["name"] = method
    if output is not None:
        raw.setdefault("output", {})["path"] = output
    config = build_config(raw, source=path or "--set")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r} is not accepted; accepted: {', '.join(BACKENDS)}")
    config.backend = backend
    config.source_text = text or ""
    validate(config, require_stop)
    return config


def read_config_file(path: str) -> bytes:
    """A config file's bytes: a regular file of at most CONFIG_MAX_BYTES (a FIFO or device is refused unread)."""
    return read_input(path, "config file", CONFIG_MAX_BYTES)


def _is_string_field(section: str, name: str) -> bool:
    return _field_types(SECTIONS[section]).get(name) is str


def build_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Turn parsed TOML into a Config, rejecting unknown sections/keys and wrong types."""
    from .plugins import implied_plugins, load_plugins, merge, requested_plugins, table_plugins

    load_plugins(table_plugins(raw, source), requested=False)  # its methods and problems exist before validation
    config = Config()
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{clip(source)}: unknown section [{clip(section)}]; accepted: {', '.join(SECTIONS)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{clip(source)}: {section} must be a section ([{section}]), not a value")
        target = getattr(config, section)
        known = {f.name: f for f in dataclasses.fields(target) if f.name != "params"}
        for key, value in values.items():
            if key in known:
                setattr(target, key, _coerce(f"{section}.{key}", value, _field_types(type(target))[key]))
            elif section in OPEN_SECTIONS:
                target.params[key] = value
            else:
                raise ConfigError(
                    f"{section}.{clip(key)}: unknown key; accepted in [{section}]: {', '.join(known)}"
                )
    # What the results file records, so resume, evaluate and sweeps import it again.
    implied = implied_plugins(config.method.name, config.problem.name)
    config.plugins.plugins = merge(requested_plugins(), config.plugins.plugins, implied)
    return config


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """Check a value against its field's declared type `kind` (a real type, from _field_types):
    ints widen to floats, a list is checked item by item; a type with no check here is a bug (TypeError)."""
    options = [option for option in typing.get_args(kind) if option is not type(None)] \
        if typing.get_origin(kind) in (typing.Union, types.UnionType) else [kind]
    if set(options) == {bool, str}:
        if not isinstance(value, (bool, str)):
            raise ConfigError(f"{key}: expected true, false or a string, got {shown(value)}")
        return value
    if len(options) != 1:
        raise TypeError(f"{key}: no check for the declared type {kind}")
    kind = options[0]
    if typing.get_origin(kind) is list:
        return _coerce_list(key, value, typing.get_args(kind)[0])
    if kind is float:
        if not _is_number(value):
            raise ConfigError(f"{key}: expected a number, got {shown(value)}")
        return _float(key, value)
    if kind is int:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:  # TOML's integers are 64-bit
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {shown(value)}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {shown(value)}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {shown(value)}")
        return value
    raise TypeError(f"{key}: no check for the declared type {kind}")


def _coerce_list(key: str, value: Any, item: Any) -> list:
    """A list whose items are of type `item`: strings, numbers, or rows of 4 numbers (workers.slowdown)."""
    if item is str:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {shown(value)}")
        if key == "plugins.plugins":
            from .plugins import merge

            return merge(value)  # stored resolved: files as absolute paths
        return list(value)
    if item == list[float]:
        rows_ok = isinstance(value, list) and all(
            isinstance(row, list) and len(row) == 4 and all(_is_number(v) for v in row) for row in value
        )
        if not rows_ok:
            raise ConfigError(f"{key}: expected a list of [worker, start, end, factor] rows, got {shown(value)}")
        return [[_float(key, v) for v in row] for row in value]
    if item in (int, float):
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise ConfigError(f"{key}: expected a list of numbers, got {shown(value)}")
        return [_coerce(key, v, item) for v in value]
    raise TypeError(f"{key}: no check for the declared type list[{item}]")


@functools.cache
def _field_types(section: type) -> dict[str, Any]:
    """A section dataclass's fields and their declared types as real types (the annotations are text)."""
    return typing.get_type_hints(section)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float(key: str, value: int | float) -> float:
    """A number as a float; nan is refused for every key (no key means anything by it)."""
    number = float(value)
    if math.isnan(number):
        raise ConfigError(f"{key}: nan is not accepted; give a number")
    return number


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _choice(key: str, value: str, accepted: tuple[str, ...]) -> None:
    _require(value in accepted, f"{key}: {shown(value)} is not accepted; accepted: {', '.join(accepted)}")


def _nonnegative(key: str, value: float | None, allow_zero: bool = True) -> None:
    if value is None:
        return
    ok = value >= 0 if allow_zero else value > 0
    _require(ok and not math.isnan(value), f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def validate(config: Config, require_stop: bool = True) -> None:
    """Check values, resolve the problem's and method's own parameters (defaults filled in)."""
    from .methods import METHODS
    from .problems import PROBLEMS
    from .problems.splits import SPLITS
    from . import datasets

    problem, method, workers, stop, output = (
        config.problem, config.method, config.workers, config.stop, config.output
    )
    _choice("problem.name", problem.name, tuple(sorted(PROBLEMS)))
    problem.params = _resolve_params("problem", PROBLEMS[problem.name].params, problem.params, problem.name)
    _require(problem.dim >= 1, f"problem.dim: must be >= 1, got {problem.dim}")
    _nonnegative("problem.samples", problem.samples)
    _nonnegative("problem.noise", problem.noise)
    _nonnegative("problem.seed", problem.seed)
    if problem.data and problem.data != "synthetic":
        problem.data = ":".join(datasets.resolve(part) for part in problem.data.split(":"))
        for part in problem.data.split(":"):
            if not os.path.lexists(part):
                raise ConfigError(f"problem.data: data file not found: {clip(part)}{datasets.missing_hint(part)}")
            check_input(part, "problem.data: data file")
    if problem.params.get("test_data"):
        problem.params["test_data"] = datasets.resolve(problem.params["test_data"])

    _choice("method.name", method.name, tuple(sorted(METHODS)))
    method.params = _resolve_params("method", METHODS[method.name].params, method.params, method.name)
    _check_options(method)
    _require(math.isfinite(method.lr) and method.lr > 0, f"method.lr: must be a finite number > 0, got {method.lr}")
    _require(method.batch >= 1, f"method.batch: must be >= 1, got {method.batch}")

    _require(workers.n is None or workers.n >= 1, f"workers.n: must be >= 1, got {workers.n}")
    _nonnegative("workers.seed", workers.seed)
    _choice("workers.compute", workers.compute, COMPUTE_MODELS)
    _choice("workers.compute_profile", workers.compute_profile, COMPUTE_PROFILES)
    _nonnegative("workers.compute_scale", workers.compute_scale)
    for i, value in enumerate(workers.compute_times):
        _nonnegative(f"workers.compute_times[{i}]", value)
    _require(0 < workers.compute_p <= 1, f"workers.compute_p: must be in (0, 1], got {workers.compute_p}")
    if workers.compute == "trace":
        _require(bool(workers.compute_trace),
                 'workers.compute_trace: workers.compute = "trace" needs a trace file (CSV or .npy)')
        check_input(workers.compute_trace, "workers.compute_trace: trace file")
    _choice("workers.comm", workers.comm, COMM_MODELS)
    _nonnegative("workers.comm_scale", workers.comm_scale)
    for i, value in enumerate(workers.comm_times):
        _nonnegative(f"workers.comm_times[{i}]", value)
    for key, model in (("compute", workers.compute), ("comm", workers.comm)):
        bounds = getattr(workers, f"{key}_range")
        if model == "uniform_range":
            _require(len(bounds) == 2 and 0 <= bounds[0] <= bounds[1] and math.isfinite(bounds[1]),
                     f'workers.{key}_range: workers.{key} = "uniform_range" needs [a, b] with 0 <= a <= b < inf '
                     f"(seconds per {'gradient' if key == 'compute' else 'float'}), got {shown(bounds)}")
    _choice("workers.data_split", workers.data_split, SPLITS)
    _nonnegative("workers.dirichlet_alpha", workers.dirichlet_alpha, allow_zero=False)
    for row in workers.slowdown:
        worker, start, end, factor = row
        _require(
            worker >= 0 and worker == int(worker) and 0 <= start <= end and factor > 0,
            f"workers.slowdown: row {row} must be [worker >= 0, 0 <= start <= end, factor > 0]",
        )
    for key in ("dead_after", "crash_after"):
        for i, value in enumerate(getattr(workers, key)):
            _nonnegative(f"workers.{key}[{i}]", value)
    if workers.n is not None:
        for key in ("compute_times", "comm_times", "dead_after", "crash_after"):
            times = getattr(workers, key)
            _require(
                not times or len(times) == workers.n,
                f"workers.{key}: has {len(times)} entries but workers.n = {workers.n}",
            )

    _nonnegative("stop.time", stop.time)
    # A count of 0 is refused: the count is checked after each update, so 0 would still make one
    # (stop.time = 0 ends a run before its first update).
    for key in ("iterations", "gradients"):
        count = getattr(stop, key)
        _require(count is None or count >= 1,
                 f"stop.{key}: must be >= 1, got {count} (a run without updates: stop.time = 0)")
    _nonnegative("stop.grace", stop.grace)
    _require(
        not require_stop or any(v is not None for v in (stop.time, stop.iterations, stop.gradients)),
        "[stop]: give at least one of stop.time, stop.iterations, stop.gradients so the run ends",
    )
    _validate_graph(config)
    _validate_limits(config)
    _nonnegative("output.snapshot_every", output.snapshot_every)
    _require(isinstance(output.hdf5_locking, bool) or output.hdf5_locking == "auto",  # a string: "auto" only
             f"output.hdf5_locking: {shown(output.hdf5_locking)} is not accepted; accepted: \"auto\", true, false")
    _choice("output.compression", output.compression, COMPRESSIONS)
    check_output_placeholders(output.path)


def _check_options(method: MethodConfig) -> None:
    """The method's own check of its options; whatever else it raises becomes one ConfigError line naming the method."""
    from .methods import METHODS

    try:
        METHODS[method.name].check_options(method.params)
    except UserError:
        raise
    except (Exception, SystemExit) as exc:  # a plugin's check: a broken check is still the config's refusal
        given = ", ".join(f"method.{key} = {shown(value, 40)}" for key, value in sorted(method.params.items()))
        raise ConfigError(
            f"method {method.name!r} refused its options ({clip(given) or 'none'}): check_options raised "
            f"{type(exc).__name__}: {clip(str(exc))}"
        ) from None


# The simulator's clock advances by compute times: below this (seconds per gradient) it would
# practically never reach stop.time; and a run that only stops on time may take at most this many
# gradients (at a few microseconds each in the simulator, hours).
MIN_SIM_COMPUTE_TIME = 1e-9
MAX_SIM_GRADIENTS = 10**9


def _validate_limits(config: Config) -> None:
    """Refuse a run that would exhaust memory or never end, before anything is allocated.

    Memory: the problem's own data (its memory_estimate) plus the run's vectors and per-worker
    state (memory.run_bytes) must fit problem.max_memory (default: half the available memory).
    Simulator: every worker's mean time per gradient must be at least MIN_SIM_COMPUTE_TIME, and
    a run stopped only by stop.time may not need more than MAX_SIM_GRADIENTS gradients.
    """
    problem, workers, stop = config.problem, config.workers, config.stop
    _require(problem.max_memory >= 0, f"problem.max_memory: must be >= 0 bytes (0: half the available memory), "
                                      f"got {problem.max_memory}")
    n_workers = workers.n or 1
    check_memory(config, n_workers)
    if config.backend != "sim":
        return
    if workers.compute_times:
        means = [(f"workers.compute_times[{i}]", t) for i, t in enumerate(workers.compute_times)]
    else:
        means = [("workers.compute_scale", workers.compute_scale)]
    for key, seconds in means:
        _require(
            seconds >= MIN_SIM_COMPUTE_TIME,
            f"{key}: {seconds} s per gradient; the simulator's clock moves by compute times, so it must be "
            f">= {MIN_SIM_COMPUTE_TIME} s (the clock would never reach stop.time)",
        )
    if workers.n is None:
        return
    from .timing import TimingModel

    try:
        expected_compute = [float(seconds) for seconds in TimingModel(workers, n_workers).expected_compute()]
    except ConfigError:
        return  # the timing model's own error is reported when the run builds it
    fastest = min(range(len(expected_compute)), key=expected_compute.__getitem__)
    _require(  # e.g. a trace file of zeros
        not expected_compute[fastest] < MIN_SIM_COMPUTE_TIME,
        f"workers.compute: worker {fastest} needs {expected_compute[fastest]} s per gradient on average; the "
        f"simulator's clock moves by compute times, so it must be >= {MIN_SIM_COMPUTE_TIME} s",
    )
    if stop.iterations is None and stop.gradients is None and stop.time is not None:
        expected = stop.time * sum(1.0 / seconds for seconds in expected_compute)
        _require(
            expected <= MAX_SIM_GRADIENTS,
            f"stop.time = {stop.time}: the simulated workers would compute about {expected:.3g} gradients "
            f"(more than {MAX_SIM_GRADIENTS:.0e}, hours of simulation); lower stop.time or set stop.iterations "
            "or stop.gradients",
        )


def check_memory(config: Config, n_workers: int, ranks: int | None = None) -> None:
    """Refuse (ConfigError) a run of n_workers workers whose data, vectors and worker state exceed problem.max_memory.

    Validation calls it with workers.n (1 when absent); under MPI rank 0 calls it again once the
    launcher's rank count gives the number of workers (its per-worker buffers grow with it).
    """
    from .memory import budget, human, limit_text, run_bytes
    from .problems import PROBLEMS

    problem = config.problem
    limit = budget(problem.max_memory)
    estimate = getattr(PROBLEMS[problem.name], "memory_estimate", None)
    data_bytes, model_dim = estimate(problem) if estimate is not None else (0, problem.dim)
    vector_bytes = run_bytes(model_dim, n_workers)
    if data_bytes + vector_bytes > limit:
        if ranks is not None:
            given = f"{n_workers} (mpiexec started {ranks} ranks)"
        else:
            given = config.workers.n if config.workers.n is not None else f"unset ({n_workers} counted)"
        raise ConfigError(
            f"problem.dim = {problem.dim}, problem.samples = {problem.samples}, workers.n = {given}: the run "
            f"needs about {human(data_bytes + vector_bytes)} ({human(data_bytes)} of problem data, "
            f"{human(vector_bytes)} of vectors and worker state), more than {limit_text(limit)}"
        )


def _validate_graph(config: Config) -> None:
    from .graph import TOPOLOGIES
    from .methods.decentralized import GRAPH_BASELINES, uses_graph

    graph, name = config.graph, config.method.name
    _choice("graph.topology", graph.topology, ("none", *TOPOLOGIES))
    _nonnegative("graph.rho", graph.rho)
    _require(math.isfinite(graph.rho), f"graph.rho: must be finite, got {graph.rho}")
    if graph.topology == "none":
        _require(
            not uses_graph(name, graph.topology),
            f"graph.topology: {name} runs on a worker graph; set it to one of {', '.join(TOPOLOGIES)}",
        )
    else:
        _require(
            uses_graph(name, graph.topology),
            f"graph.topology: only decentralized methods and {', '.join(GRAPH_BASELINES)} run on a worker graph, "
            f"not {name}; remove [graph] or pick one of those",
        )
    if graph.edges and graph.topology == "edges":
        check_input(graph.edges, "graph.edges: edge-list file")


def _resolve_params(section: str, declared: dict[str, Any], given: dict[str, Any], owner: str) -> dict[str, Any]:
    """Own parameters of a problem or method: reject unknown keys, check types, fill defaults."""
    resolved = dict(declared)
    for key, value in given.items():
        if key not in declared:
            common = [f.name for f in dataclasses.fields(SECTIONS[section]) if f.name != "params"]
            accepted = ", ".join(common + sorted(declared))
            raise ConfigError(f"{section}.{clip(key)}: unknown key for {section} {owner!r}; accepted: {accepted}")
        default = declared[key]
        if default is not None and not _same_kind(default, value):
            raise ConfigError(
                f"{section}.{key}: expected {type(default).__name__}, got {shown(value)}"
            )
        resolved[key] = _float(f"{section}.{key}", value) if isinstance(default, float) else value
    return resolved


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return _is_number(value)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))
