"""Run configuration: one dataclass per TOML section, defaults, TOML parsing and `--set` overrides.

Every key a user can write is declared here (common keys) or by the chosen problem or
method class (their own `params`), so a typo is an error that names the key and lists what
is accepted instead of being silently ignored. This module knows no registry: validate.py,
above it, checks the values against the methods, problems and the rest, and loads configs.
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

from .errors import ConfigError
from .inputs import CONFIG_MAX_BYTES, clip, read_input, shown

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


def config_table(
    path: str | None,
    overrides: Iterable[str] = (),
    method: str | None = None,
    output: str | None = None,
    text: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A config as a parsed table with `--set section.key=value` overrides applied, and its TOML text.

    Reads the TOML file at `path`, or `text` given directly (a results file's stored config); the
    table is not checked against the sections yet (config_sections does that). Raises ConfigError.
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
    return raw, text or ""


def read_config_file(path: str) -> bytes:
    """A config file's bytes: a regular file of at most CONFIG_MAX_BYTES (a FIFO or device is refused unread)."""
    return read_input(path, "config file", CONFIG_MAX_BYTES)


def _is_string_field(section: str, name: str) -> bool:
    return _field_types(SECTIONS[section]).get(name) is str


def config_sections(raw: dict[str, Any], source: str = "config") -> Config:
    """Parsed TOML as a Config, rejecting unknown sections/keys and wrong types (values are checked by validate.py)."""
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
        if not is_number(value):
            raise ConfigError(f"{key}: expected a number, got {shown(value)}")
        return checked_float(key, value)
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
        return list(value)
    if item == list[float]:
        rows_ok = isinstance(value, list) and all(
            isinstance(row, list) and len(row) == 4 and all(is_number(v) for v in row) for row in value
        )
        if not rows_ok:
            raise ConfigError(f"{key}: expected a list of [worker, start, end, factor] rows, got {shown(value)}")
        return [[checked_float(key, v) for v in row] for row in value]
    if item in (int, float):
        if not isinstance(value, list) or not all(is_number(v) for v in value):
            raise ConfigError(f"{key}: expected a list of numbers, got {shown(value)}")
        return [_coerce(key, v, item) for v in value]
    raise TypeError(f"{key}: no check for the declared type list[{item}]")


@functools.cache
def _field_types(section: type) -> dict[str, Any]:
    """A section dataclass's fields and their declared types as real types (the annotations are text)."""
    return typing.get_type_hints(section)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_float(key: str, value: int | float) -> float:
    """A number as a float; nan is refused for every key (no key means anything by it)."""
    number = float(value)
    if math.isnan(number):
        raise ConfigError(f"{key}: nan is not accepted; give a number")
    return number
