"""Time-complexity formulas of the papers, up to constants, and the quantities they depend on.

Setting (Tyurin & Richtarik, "Optimal time complexities of parallel stochastic optimization
methods under a fixed computation model", NeurIPS 2023, Table 1): n workers, worker i needs
tau_i seconds per stochastic gradient (sorted: tau_(1) <= ... <= tau_(n)), f is L-smooth,
Delta = f(x0) - f*, sigma^2 bounds the variance of a stochastic gradient, and the target is
E||grad f(x)||^2 <= eps (nonconvex). Every formula is the paper's up to a constant factor,
so a value is "seconds up to a universal constant", good for comparing methods and worker
pools, not for predicting a run's wall time exactly.

Conventions shared by all formulas:
- tau_i = inf is a worker that never answers; 1/inf = 0 contributes nothing to a sum of
  speeds. A formula that waits for every worker (minibatch, Malenia) is then inf; Rennala
  and the lower bound never pick such a worker; Async SGD keeps its published formula, a
  harmonic mean over all n workers in which the dead worker adds 0 speed but still counts in n.
- tau_i = 0 (an instant worker) is accepted and gives time 0 where it is used.
- 0 * inf is taken as 0: with L * Delta = 0 (x0 already optimal) every time is 0.

To add a method (Shadowheart, QSGD, ...), write its time function over `Inputs` (add a field
with a default there if it needs more, e.g. communication times) and one entry in `FORMULAS`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import ConfigError

TABLE1 = "Tyurin & Richtarik, NeurIPS 2023, Table 1"
DEFAULT_EPS = 1e-3
SIGMA2_SAMPLES = 200


# ---------------------------------------------------------------- checks and helpers


def _check(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> np.ndarray:
    """taus as a non-empty 1-D float array; raise ValueError on values the formulas do not accept."""
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"taus: expected a non-empty 1-D array of seconds per gradient, got shape {taus.shape}")
    if np.isnan(taus).any() or (taus < 0).any():
        raise ValueError("taus: every tau_i must be >= 0 (inf for a worker that never answers), got nan or < 0")
    for name, value in (("L", L), ("delta", delta), ("sigma2", sigma2)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: must be a finite number > 0, got {eps}")
    return taus


def _times(a: Any, b: Any) -> Any:
    """a * b with 0 * inf = 0 (both non-negative)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where((a == 0) | (b == 0), 0.0, a * b)


def _speed_prefix(taus: np.ndarray) -> np.ndarray:
    """S_m = sum_{i<=m} 1/tau_(i) for m = 1..n (workers sorted fastest first; 1/inf = 0, 1/0 = inf)."""
    with np.errstate(divide="ignore"):
        return np.cumsum(1.0 / np.sort(taus))


def _rennala_profile(taus: np.ndarray, sigma2: float, eps: float) -> np.ndarray:
    """(m + sigma2/eps) / S_m for m = 1..n: Rennala's time with m workers divided by L Delta / eps.

    (1/m S_m)^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)) = (L Delta/eps) (m + sigma2/eps) / S_m,
    a form that needs no inf * 0 when S_m is 0 (only dead workers) or inf (an instant worker).
    """
    m = np.arange(1, taus.size + 1, dtype=float)
    with np.errstate(divide="ignore"):
        return (m + sigma2 / eps) / _speed_prefix(taus)


# ---------------------------------------------------------------- the formulas


def minibatch_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Minibatch SGD: tau_(n) (L Delta/eps + sigma2 L Delta/(n eps^2)).

    Tyurin & Richtarik, NeurIPS 2023, Table 1: every step waits for the slowest worker, so one
    dead worker (tau = inf) makes it inf.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    n = taus.size
    work = L * delta / eps * (1.0 + sigma2 / (n * eps))
    return float(_times(taus.max(), work))


def async_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Asynchronous SGD: (1/n sum_i 1/tau_i)^{-1} (L Delta/eps + sigma2 L Delta/(n eps^2)).

    Cohen et al. 2021, Mishchenko et al. 2022, Koloskova et al. 2022, as reported in Tyurin &
    Richtarik, NeurIPS 2023, Table 1. Kept as published: a dead worker (tau = inf) adds 1/inf = 0
    to the sum of speeds but still counts in n, so it raises the harmonic mean, but the time
    stays finite while one worker answers.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    n = taus.size
    with np.errstate(divide="ignore"):
        harmonic_mean = n / np.sum(1.0 / taus)
    work = L * delta / eps * (1.0 + sigma2 / (n * eps))
    return float(_times(harmonic_mean, work))


def rennala_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Rennala SGD: min over m in 1..n of (1/m sum_{i<=m} 1/tau_(i))^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)).

    Tyurin & Richtarik, NeurIPS 2023, Theorem 7.5 and Table 1. Only the m fastest workers
    matter; a dead worker (tau = inf) is never among the chosen ones while a finite one is left.
    Vectorised over m with a prefix sum of the sorted speeds 1/tau_(i).
    """
    taus = _check(taus, L, delta, sigma2, eps)
    best = _rennala_profile(taus, sigma2, eps).min()
    return float(_times(L * delta / eps, best))


def rennala_optimal_m(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> int:
    """m*: how many of the fastest workers attain the minimum in `rennala_sgd_time` (1-based count).

    Ties go to the smallest m (e.g. sigma2 = 0 with equal workers gives 1). m* depends on L and
    Delta only through the common factor L Delta / eps, so it is computed without it.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    return int(np.argmin(_rennala_profile(taus, sigma2, eps))) + 1


def rennala_batch(sigma2: float, eps: float) -> int:
    """Rennala SGD's batch size S = max(ceil(sigma2/eps), 1) (Tyurin & Richtarik, NeurIPS 2023, Theorem 7.5)."""
    if not (math.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2: must be a finite number >= 0, got {sigma2}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: must be a finite number > 0, got {eps}")
    return max(math.ceil(sigma2 / eps), 1)


def lower_bound_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Lower bound for any method in the fixed computation model (homogeneous data).

    Tyurin & Richtarik, NeurIPS 2023, Theorem 6.4 and Table 1: the same expression as Rennala
    SGD's time, min over m of (1/m sum_{i<=m} 1/tau_(i))^{-1} (L Delta/eps + sigma2 L Delta/(m eps^2)),
    which is why Rennala SGD is optimal (up to constants).
    """
    return rennala_sgd_time(taus, L, delta, sigma2, eps)


def hero_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Hero SGD (plain SGD on the fastest worker only): tau_(1) (L Delta/eps + sigma2 L Delta/eps^2).

    SGD's LD/eps + s2 LD/eps^2 iterations, each taking tau_(1) seconds: the single-worker baseline
    of Tyurin & Richtarik, NeurIPS 2023 (introduction) and of Richtarik's talk (seeds/001, "Hero SGD").
    """
    taus = _check(taus, L, delta, sigma2, eps)
    work = L * delta / eps * (1.0 + sigma2 / eps)
    return float(_times(taus.min(), work))


def malenia_sgd_time(taus: Any, L: float, delta: float, sigma2: float, eps: float) -> float:
    """Malenia SGD (heterogeneous data): tau_(n) L Delta/eps + (1/n sum_i tau_i) sigma2 L Delta/(n eps^2).

    Tyurin & Richtarik, NeurIPS 2023, Theorem A.4 (data heterogeneous regime). Every worker's
    data is needed, so a dead worker (tau = inf) makes it inf.
    """
    taus = _check(taus, L, delta, sigma2, eps)
    n = taus.size
    base = L * delta / eps
    return float(_times(taus.max(), base) + _times(taus.mean(), base * sigma2 / (n * eps)))


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Inputs:
    """Everything a formula may depend on; a new formula needing more adds a field with a default."""

    taus: np.ndarray
    L: float
    delta: float
    sigma2: float
    eps: float


@dataclass(frozen=True)
class Formula:
    """One row of the table: a time function over Inputs and the formula as printed."""

    time: Callable[[Inputs], float]
    text: str


def _standard(fn: Callable[..., float]) -> Callable[[Inputs], float]:
    return lambda q: fn(q.taus, q.L, q.delta, q.sigma2, q.eps)


# Row order is table order; lower_bound stays last.
FORMULAS: dict[str, Formula] = {
    "minibatch_sgd": Formula(_standard(minibatch_sgd_time), "tau_(n) (LD/eps + s2 LD/(n eps^2))"),
    "async_sgd": Formula(_standard(async_sgd_time), "(1/n sum_i 1/tau_i)^-1 (LD/eps + s2 LD/(n eps^2))"),
    "rennala_sgd": Formula(
        _standard(rennala_sgd_time), "min_m (1/m sum_{i<=m} 1/tau_(i))^-1 (LD/eps + s2 LD/(m eps^2))"
    ),
    "malenia_sgd": Formula(_standard(malenia_sgd_time), "tau_(n) LD/eps + (1/n sum_i tau_i) s2 LD/(n eps^2)"),
    "hero_sgd": Formula(_standard(hero_sgd_time), "tau_(1) (LD/eps + s2 LD/eps^2)"),
    "lower_bound": Formula(_standard(lower_bound_time), "= rennala_sgd (Theorem 6.4)"),
}


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


def theory_table(config: Any, eps: float | None = None, sigma2: float | None = None) -> dict[str, Any]:
    """Every formula of FORMULAS for a run config's problem and workers; raise ConfigError on what is missing.

    Returns {"inputs": {...}, "method": config's method, "rows": [{method, time, formula, ratio}],
    "rennala_m_star": int, "rennala_S": int}; ratio is time / lower bound (nan when undefined).
    """
    from .problems import make_problem
    from .timing import TimingModel

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

    taus = TimingModel(config.workers, n).expected_compute()
    problem = make_problem(config.problem)
    x0 = problem.x0()
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

    q = Inputs(taus=taus, L=L, delta=delta, sigma2=float(sigma2), eps=float(eps))
    times = {name: float(formula.time(q)) for name, formula in FORMULAS.items()}
    bound = times["lower_bound"]
    rows = [
        {"method": name, "time": times[name], "formula": formula.text, "ratio": _ratio(times[name], bound)}
        for name, formula in FORMULAS.items()
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
            "eps_source": eps_source,
            "sigma2_source": sigma2_source,
            "problem": config.problem.name,
        },
        "method": config.method.name,
        "rows": rows,
        "rennala_m_star": rennala_optimal_m(q.taus, q.L, q.delta, q.sigma2, q.eps),
        "rennala_S": rennala_batch(q.sigma2, q.eps),
    }


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
