"""Config loading and the checks that need registries: method and problem names and options, data
splits, datasets, timing, memory, graph topologies and plugins.

config.py parses a config into its sections and knows none of these; this module sits above both
it and the registries, so imports point one way. The registries are imported where a check asks
them, never at start-up (tests/test_startup.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterable

from .config import (
    BACKENDS, COMM_MODELS, COMPUTE_MODELS, COMPUTE_PROFILES, SECTIONS, Config, MethodConfig, check_output_placeholders,
    checked_float, config_sections, config_table, is_number,
)
from .errors import ConfigError, UserError
from .inputs import check_input, clip, shown
from .storage import COMPRESSIONS


def load_config(
    path: str | None,
    overrides: Iterable[str] = (),
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
    raw, text = config_table(path, overrides, method=method, output=output, text=text)
    config = build_config(raw, source=path or "--set")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r} is not accepted; accepted: {', '.join(BACKENDS)}")
    config.backend = backend
    config.source_text = text
    validate(config, require_stop)
    return config


def build_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Turn parsed TOML into a Config, rejecting unknown sections/keys and wrong types; its plugins are
    imported first (their methods and problems exist before validation) and recorded in [plugins]."""
    from .plugins import implied_plugins, load_plugins, merge, requested_plugins, table_plugins

    load_plugins(table_plugins(raw, source), requested=False)
    config = config_sections(raw, source)
    # What the results file records (files as absolute paths), so resume, evaluate and sweeps import it again.
    implied = implied_plugins(config.method.name, config.problem.name)
    config.plugins.plugins = merge(requested_plugins(), config.plugins.plugins, implied)
    return config


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
        resolved[key] = checked_float(f"{section}.{key}", value) if isinstance(default, float) else value
    return resolved


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return is_number(value)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))
