"""`asyncopt theory` for a run config: the table's inputs measured, its rows evaluated, shown as text or JSON.

L, Delta, sigma2, zeta2 and R come from the config's problem, tau_i and theta_i from its workers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from .asgrad import ASGRAD, KOLOSKOVA
from .base import _times
from .convex import CONVEX
from .freya import FREYA
from .rennala import TABLE1, rennala_batch, rennala_optimal_m
from .shadowheart import SHADOWHEART, _equilibrium, _floor_ratio
from .table import CONDITIONAL_FORMULAS, FORMULAS, Inputs

DEFAULT_EPS = 1e-3
SIGMA2_SAMPLES = 200


def estimate_sigma2(problem: Any, x: np.ndarray, rng: np.random.Generator, samples: int = SIGMA2_SAMPLES) -> float:
    """Monte-Carlo estimate of sigma^2 = E||g - grad f(x)||^2, g = problem.stochastic_grad(x, rng, 1).

    The variance bound of Tyurin & Richtarik's Assumption 7.3, measured at one point only
    (theory_table uses x0), so it is an estimate of the bound, not the bound itself.
    """
    if samples < 1:
        raise ValueError(f"samples: must be >= 1, got {samples}")
    exact = problem.full_grad(x)
    total = 0.0
    for _ in range(samples):
        diff = problem.stochastic_grad(x, rng, 1) - exact
        total += float(diff @ diff)
    return total / samples


def heterogeneity_at(problem: Any, x: np.ndarray, workers: Any, n: int) -> float:
    """zeta^2 = (1/n) sum_i ||grad f_i(x) - mean_j grad f_j(x)||^2, f_i the mean over worker i's shard.

    AsGrad's heterogeneity bound (seed 002), measured at one point as `estimate_sigma2` is; 0 when
    every worker samples the whole data (workers.data_split = iid). Shards as the runs build them.
    """
    from ..problems.splits import shard_indices

    shards = shard_indices(problem.n_samples, n, workers.data_split, labels=problem.labels(),
                           alpha=workers.dirichlet_alpha, seed=workers.seed)
    if all(shard is None for shard in shards):
        return 0.0
    grads = np.array([problem.grad(x, shard) for shard in shards])
    spread = grads - grads.mean(axis=0)
    return float(np.mean(np.sum(spread * spread, axis=1)))


def theory_table(
    config: Any, eps: float | None = None, sigma2: float | None = None, convex: bool = False
) -> dict[str, Any]:
    """FORMULAS and the CONDITIONAL_FORMULAS that apply, for a run config; raise ConfigError on what is missing.

    Returns {"inputs": {...}, "method": config's method, "rows": [{method, time, formula, ratio}],
    "rennala_m_star": int, "rennala_S": int, "shadowheart": {t_star, active, omega, sigma2_over_eps}};
    ratio is time / lower bound (nan when undefined). Communication: theta_i from the config's
    workers (TimingModel.comm_per_float), d from the problem, K = method.K (1 when the method has
    none), and Shadowheart's sigma2/eps is sigma2 / eps. AsGrad's G is ||grad f(x0)|| (async_sgd
    configs only) and zeta2 the spread of the workers' gradients at x0 (`heterogeneity_at`, 0 when
    every worker samples the whole data); `convex` adds the convex rows, with R = ||x0 - x*||
    from the problem's minimizer and M = inf (smooth rates).
    """
    from ..problems import make_problem
    from ..timing import TimingModel

    n = config.workers.n
    if n is None:
        raise ConfigError("workers.n: required by asyncopt theory (the number of workers)")
    # The method's own sigma2/eps (those that set Rennala's S) are used when no value is given.
    method_eps = config.method.params.get("eps", 0.0)
    if eps is not None:
        eps_source = "given"
    elif method_eps > 0:
        eps, eps_source = method_eps, "method.eps"
    else:
        eps, eps_source = DEFAULT_EPS, "default"
    if sigma2 is None and config.method.params.get("sigma2", 0.0) > 0:
        sigma2 = config.method.params["sigma2"]
    if not (math.isfinite(eps) and eps > 0):
        raise ConfigError(f"eps: the target eps must be a number > 0, got {eps}")
    if sigma2 is not None and not (math.isfinite(sigma2) and sigma2 >= 0):
        raise ConfigError(f"sigma2: must be a number >= 0, got {sigma2}")

    timing = TimingModel(config.workers, n)
    taus = timing.expected_compute()
    theta = np.asarray(timing.comm_per_float, dtype=float)
    problem = make_problem(config.problem)
    x0 = problem.x0()
    R = _distance_to_minimizer(problem, config.problem.name, x0) if convex else math.nan
    L = float(problem.smoothness())
    if not (math.isfinite(L) and L >= 0):
        raise ConfigError(f"problem.name: problem {config.problem.name!r} gives no smoothness constant L (got {L})")
    f_star = float(problem.compute_f_star())
    delta = float(problem.loss(x0)) - f_star
    if not math.isfinite(delta):
        raise ConfigError(f"problem.name: problem {config.problem.name!r} gives no f* for Delta = f(x0) - f* (got {f_star})")
    delta = max(delta, 0.0)  # f* from a solver may sit a rounding error above f(x0)
    if sigma2 is not None:
        sigma2_source = "given"
    else:
        rng = np.random.default_rng(config.problem.seed)
        sigma2, sigma2_source = estimate_sigma2(problem, x0, rng), f"estimated at x0 from {SIGMA2_SAMPLES} samples"

    dim = int(problem.dim)
    K = config.method.params.get("K", 1)
    if isinstance(K, bool) or not isinstance(K, (int, float)) or int(K) != K or not 1 <= K <= dim:
        raise ConfigError(
            f"method.K: RandK keeps K coordinates, an integer in 1..{dim} (the problem's dimension), got {K}"
        )
    K = int(K)

    m = int(problem.n_samples or 0)
    distances = None
    if getattr(config, "graph", None) is not None and config.graph.topology != "none":
        from ..graph import Graph

        distances = Graph.from_config(config.graph, n).distances()
    method = config.method.name
    G, zeta2 = math.nan, math.nan  # needed by the async_sgd rows only
    if method == "async_sgd":
        G, zeta2 = float(np.linalg.norm(problem.full_grad(x0))), heterogeneity_at(problem, x0, config.workers, n)
    q = Inputs(taus=taus, L=L, delta=delta, sigma2=float(sigma2), eps=float(eps), theta=theta, dim=dim, K=K,
               m=m, distances=distances, method=method, G=G, zeta2=zeta2, convex=convex, R=R)
    shown = {**FORMULAS, **{name: f for name, f in CONDITIONAL_FORMULAS.items() if f.applies(q)}}
    times = {name: float(formula.time(q)) for name, formula in shown.items()}
    omega = dim / K - 1.0
    t_star, _ = _equilibrium(omega, q.sigma2 / q.eps, taus, _times(K, theta))
    shadowheart = {
        "t_star": t_star,
        "active": _active_count(t_star, taus, _times(K, theta), dim, K),
        "omega": omega,
        "sigma2_over_eps": q.sigma2 / q.eps,
    }
    rows = [
        {"method": name, "time": times[name], "formula": formula.text, "ratio": _ratio(times[name], times[formula.bound])}
        for name, formula in shown.items()
    ]
    return {
        "inputs": {
            "n": int(n),
            "L": L,
            "delta": delta,
            "sigma2": q.sigma2,
            "eps": q.eps,
            "tau_min": float(taus.min()),
            "tau_max": float(taus.max()),
            "theta_min": float(theta.min()),
            "theta_max": float(theta.max()),
            "dim": dim,
            "K": K,
            "m": m,
            "graph": config.graph.topology if distances is not None else "none",
            "G": G,
            "zeta2": zeta2,
            "convex": convex,
            "R": R,
            "eps_source": eps_source,
            "sigma2_source": sigma2_source,
            "problem": config.problem.name,
        },
        "method": config.method.name,
        "rows": rows,
        "rennala_m_star": rennala_optimal_m(q.taus, q.L, q.delta, q.sigma2, q.eps),
        "rennala_S": rennala_batch(q.sigma2, q.eps),
        "shadowheart": shadowheart,
    }


def _distance_to_minimizer(problem: Any, name: str, x0: np.ndarray) -> float:
    """R = ||x0 - x*|| for the convex rows; ConfigError when the problem has no minimizer to give x*."""
    x_star = problem.minimizer() if hasattr(problem, "minimizer") else None
    if x_star is None:
        raise ConfigError(f"--convex: problem {name!r} gives no minimizer x*, needed for R = ||x0 - x*||")
    return float(np.linalg.norm(x0 - x_star))


def _active_count(t_star: float, h: np.ndarray, t: np.ndarray, dim: int, K: int) -> int:
    """How many workers do at least one gradient and one send in a round of t* (as `shadowheart_plan`).

    Counted directly so that the table also covers what the plan refuses (t* = 0 or inf, h_i = 0):
    with t* = 0 or inf no round is planned and the count is 0.
    """
    if not (0 < t_star < math.inf):
        return 0
    b = _floor_ratio(t_star, h)
    m = np.minimum(_floor_ratio(t_star, t), math.ceil(dim / K))
    return int(np.sum((b >= 1) & (m >= 1)))


def _ratio(time: float, bound: float) -> float:
    """time / bound; nan when the bound is 0 or inf (the ratio is undefined)."""
    if bound == 0 or math.isinf(bound):
        return math.nan
    return time / bound


# ---------------------------------------------------------------- output


def _jsonable(value: Any) -> Any:
    """JSON has no inf or nan: +-inf becomes the string "inf" / "-inf", nan becomes null."""
    if isinstance(value, dict):
        return {key: _jsonable(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def table_json(table: dict[str, Any]) -> str:
    """The table as strict JSON (inf as the string "inf", nan as null)."""
    return json.dumps(_jsonable(table), indent=2, allow_nan=False)


def _g4(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def format_table(table: dict[str, Any]) -> str:
    """Inputs line, then one aligned row per method: time (s, 4 significant digits), ratio to the lower bound, formula."""
    q = table["inputs"]
    lines = [
        f"{q['problem']}: n={q['n']} L={q['L']:.4g} Delta={q['delta']:.4g} "
        f"sigma2={q['sigma2']:.4g} ({q['sigma2_source']}) eps={q['eps']:.4g} ({q['eps_source']}) "
        f"tau=[{q['tau_min']:.4g}, {q['tau_max']:.4g}] s",
        f"rennala: m*={table['rennala_m_star']} fastest workers, S={table['rennala_S']}; "
        f"times up to constants ({TABLE1}); LD = L Delta, s2 = sigma2",
    ]
    if q.get("m", 0) > 0:
        lines.append(
            f"finite sum: m={q['m']}; freya_page ... freya_lower_bound ({FREYA}) are compared with freya_lower_bound"
        )
    if q.get("graph", "none") != "none":
        lines.append(
            f"graph: {q['graph']}; rho_ij = shortest-path link times; graph_minibatch_sgd and amelie_sgd (data "
            "heterogeneous) are compared with amelie_sgd, fragile_sgd with graph_lower_bound (one distribution)"
        )
    if table["method"] == "async_sgd":
        lines.append(
            f"async_sgd: G={_g4(q['G'])} (||grad f(x0)||), z2={_g4(q['zeta2'])} (at x0); asgrad_* ({ASGRAD}) and "
            f"koloskova_* ({KOLOSKOVA}): iterations at sum_i 1/tau_i per second, tau_C = n"
        )
    if q.get("convex"):
        lines.append(
            f"convex ({CONVEX}): R={q['R']:.4g} (||x0 - x*||), M=inf, eps is a target on f - f*; "
            "compared with convex_lower_bound"
        )
    lines.append("- : the row does not apply (no finite sum, no graph, or an unknown dimension)")
    if any(row["method"] in CONDITIONAL_FORMULAS for row in table["rows"]):
        lines.append("rows after lower_bound apply to this config only; their papers state them up to constants, "
                     "taken as 1")
    if q.get("theta_max", 0.0) > 0:
        sh = table["shadowheart"]
        lines.append(
            f"comm: theta=[{q['theta_min']:.4g}, {q['theta_max']:.4g}] s/float, d={q['dim']}, K={q['K']}, "
            f"w=d/K-1={sh['omega']:.4g}; rows without theta ignore communication"
        )
        lines.append(
            f"shadowheart: t*={sh['t_star']:.4g} s, {sh['active']} of {q['n']} workers active ({SHADOWHEART})"
        )
    header = ("method", "time [s]", "x bound", "formula")
    cells = [
        (
            row["method"] + (" *" if row["method"] == table.get("method") else ""),
            _g4(row["time"]),
            _g4(row["ratio"]),
            row["formula"],
        )
        for row in table["rows"]
    ]
    widths = [max(len(c[k]) for c in [header, *cells]) for k in range(3)]
    for cell in [header, *cells]:
        lines.append(
            f"{cell[0]:<{widths[0]}}  {cell[1]:>{widths[1]}}  {cell[2]:>{widths[2]}}  {cell[3]}".rstrip()
        )
    if any(row["method"] == table.get("method") for row in table["rows"]):
        lines.append("* the config's method")
    return "\n".join(lines)
