"""`shadowheart-table1`: the numerical comparison of Shadowheart's Table 1 (seed 001), computed from the theory module.

Table 1 (seed 001 lines 1153-1169) gives, for d = 10^6, n = 10^3, h_i, tau_i ~ U(0.1, 1) i.i.d. and
sigma^2/eps in {1, 10^3, 10^6}, the factors by which the competing methods' time complexities exceed
Shadowheart SGD's. They are formulas, not runs: each factor is a ratio of `asyncopt_mpi.theory` times (L Delta/eps
cancels), on a few draws of the workers' times. Both scales are the paper's (it takes a second).
"""

from __future__ import annotations

import math

import numpy as np

from .. import theory
from .experiment import Experiment, Setting, median_iqr

SEED = "seed 001"
D, N, K = 10**6, 10**3, 1
NOISE = (1.0, 1e3, 1e6)  # sigma^2/eps, the table's three columns
DRAWS = 5  # draws of (h_i, tau_i); the paper reports one draw, its seed unknown
RULE = ("a factor is reproduced when ours equals the paper's up to the table's rounding: x10^k gives the order of "
        "magnitude (10^k <= ours < 10^(k+1)), x3 and x1.5 their significant digits (2.5 <= ours < 3.5, "
        "1.45 <= ours < 1.55); verdict: reproduced when that holds on the median over the draws and in at least 80% "
        "of them, partly when on the median or in at least half, not reproduced otherwise")


def _minibatch(h: np.ndarray, tau: np.ndarray, noise: float) -> float:
    return theory.minibatch_sgd_comm_time(h, tau, D, 1.0, 1.0, noise, 1.0)


def _qsgd(h: np.ndarray, tau: np.ndarray, noise: float) -> float:
    return theory.qsgd_time(h, tau, D, K, 1.0, 1.0, noise, 1.0)


def _sgd_bound(h: np.ndarray, tau: np.ndarray, noise: float) -> float:
    return theory.sgd_comm_lower_bound(h, tau, D, 1.0, 1.0, noise, 1.0)


def _shadowheart(h: np.ndarray, tau: np.ndarray, noise: float) -> float:
    return theory.shadowheart_time(h, tau, D, K, 1.0, 1.0, noise, 1.0)


# (row as the table names it, source line, theory function, the paper's factors per sigma^2/eps, robust column)
ROWS = (
    ("Minibatch SGD", 1157, "theory.minibatch_sgd_comm_time", _minibatch, ("10^3", "10^3", "10^4"), "non-robust"),
    ("QSGD", 1158, "theory.qsgd_time", _qsgd, ("3", "10^2", "10^4"), "non-robust"),
    ("Rennala SGD, Asynchronous SGD (lower bound)", 1159, "theory.sgd_comm_lower_bound", _sgd_bound,
     ("10^2", "10", "1.5"), "robust"),
)


def rounds_to(value: float, shown: str) -> bool:
    """Whether `value` is the table's factor `shown` ("10^4", "10", "3", "1.5") up to the table's rounding."""
    if not math.isfinite(value):
        return False
    if shown.startswith("10"):  # an order of magnitude
        power = int(shown.partition("^")[2] or 1)
        return 10.0**power <= value < 10.0 ** (power + 1)
    step = 10.0 ** -len(shown.partition(".")[2])  # half a unit of the last digit shown either side
    return abs(value - float(shown)) < step / 2


def draw(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """h_i, tau_i ~ U(0.1, 1) i.i.d. for the n workers (seed 001 line 1169)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 1.0, N), rng.uniform(0.1, 1.0, N)


def factors() -> dict[tuple[str, float], list[float]]:
    """(row, sigma^2/eps) -> the factor time / Shadowheart's time on each draw."""
    out: dict[tuple[str, float], list[float]] = {}
    for seed in range(DRAWS):
        h, tau = draw(seed)
        for noise in NOISE:
            reference = _shadowheart(h, tau, noise)
            for name, _, _, time, _, _ in ROWS:
                out.setdefault((name, noise), []).append(time(h, tau, noise) / reference)
    return out


def verdict(values: list[float], shown: str) -> str:
    holds = [rounds_to(value, shown) for value in values]
    on_median = rounds_to(median_iqr(values)[0], shown)
    if on_median and sum(holds) >= 0.8 * len(holds):
        return "reproduced"
    return "partly" if on_median or sum(holds) >= 0.5 * len(holds) else "not reproduced"


def robustness() -> dict[str, float]:
    """Each row's time (and Shadowheart's) on draw 0 with the last worker never answering (h_n = tau_n = inf)."""
    h, tau = draw(0)
    h[-1] = tau[-1] = math.inf
    rows = {name: time(h, tau, 1.0) for name, _, _, time, _, _ in ROWS}
    rows["Shadowheart SGD"] = _shadowheart(h, tau, 1.0)
    return rows


def _number(value: float) -> str:
    return f"{value:.3g}"


def report(scale: str) -> str:
    """REPORT.md: the setting, one row per method and sigma^2/eps with the paper's factor, ours and a verdict."""
    lines = [f"# {EXPERIMENT.figure_ref} of {EXPERIMENT.paper}", "",
             f"`asyncopt reproduce {EXPERIMENT.name} --scale {scale}`: {EXPERIMENT.description}.",
             "Computed, not run: each factor is a method's time complexity over Shadowheart SGD's, from "
             "`asyncopt_mpi.theory` (L Delta/eps cancels), on "
             f"{DRAWS} draws of the workers' times (numpy seeds 0..{DRAWS - 1}); both scales are the paper's.", "",
             "## Setting", "", "| key | this run | paper | source |", "|---|---|---|---|"]
    lines += [f"| {s.key} | {s.value(scale)} | {s.paper} | {s.source} |" for s in EXPERIMENT.settings]
    lines += ["", "## Claims", "", f"Verdict rule: {RULE}.", "",
              "| claim | sigma^2/eps | paper | ours (median [min, max] over draws) | formula | holds in | verdict |",
              "|---|---|---|---|---|---|---|"]
    measured = factors()
    for name, line, formula, _, shown, _ in ROWS:
        for noise, paper in zip(NOISE, shown):
            values = measured[(name, noise)]
            spread = f"{_number(median_iqr(values)[0])} [{_number(min(values))}, {_number(max(values))}]"
            holds = sum(rounds_to(value, paper) for value in values)
            lines.append(f"| {name} is x{paper} slower than Shadowheart SGD ({SEED} line {line}) | {noise:g} | "
                         f"x{paper} | {spread} | `{formula}` | {holds} of {len(values)} draws | "
                         f"**{verdict(values, paper)}** |")
    slow = robustness()
    lines += ["", "Column \"the last worker is slow\" (max{h_n, tau_n} -> inf), draw 0 with h_n = tau_n = inf, "
              "sigma^2/eps = 1:", "", "| method | paper | ours | verdict |", "|---|---|---|---|"]
    for name, line, _, _, _, robust in (*ROWS, ("Shadowheart SGD", 1160, "", None, (), "robust")):
        finite = math.isfinite(slow[name])
        ours = f"{_number(slow[name])} x L Delta/eps s" if finite else "inf"
        paper = "< inf (robust)" if robust == "robust" else "inf (non-robust)"
        lines.append(f"| {name} ({SEED} line {line}) | {paper} | {ours} | "
                     f"**{'reproduced' if finite == (robust == 'robust') else 'not reproduced'}** |")
    lines += ["", "## Notes", "",
              "- The paper reports one draw and does not give its seed; the draws here move a factor by a few percent.",
              "- Rennala SGD and Asynchronous SGD have no upper bound here: the table (footnote (a), "
              f"{SEED} line 1167) compares their lower bound, Theorem N.5 with omega = 0 and d tau_i as the send time; "
              "so does `theory.sgd_comm_lower_bound`.",
              "- Shadowheart's t* of `theory.equilibrium_time` equals the authors' find_equilibrium_time "
              "(algorithm_with_communication.py, fsolve per prefix) to 12 digits on draw 0 for all three sigma^2/eps.",
              "- x1.5 (sigma^2/eps = 10^6) is not reached: the Rennala/Async bound is at least d min_i tau_i ~ 1.0e5 "
              "x L Delta/eps (every such method sends d floats), Shadowheart's t* is 2.6e4, so x1.5 would need a t* "
              "about 2.6 times ours; no reading of Def. 4.2 we tried (the authors' constants, omega = 0 for the "
              "bound, sorting by h_i alone) gives it, and the other eight factors agree with the table.",
              "- QSGD's formula in `theory.qsgd_time` has omega/n + 1 = (d - 1)/n + 1 where the table writes d/n + 1 "
              "(K = 1); at d = 10^6 the two differ by 10^-6 relatively.", ""]
    return "\n".join(lines)


EXPERIMENT = Experiment(
    name="shadowheart-table1",
    paper="seed 001: Shadowheart SGD (Tyurin, Pozzi, Ilin, Richtarik, arXiv 2402.04785)",
    figure_ref="Table 1 (numerical comparison)",
    description="d = 10^6, n = 10^3, h_i, tau_i ~ U(0.1, 1), sigma^2/eps in {1, 10^3, 10^6}: the factors by which "
                "Minibatch SGD, QSGD, Rennala/Async SGD are slower than Shadowheart SGD (theory, no runs)",
    settings=(
        Setting("d", D, D, f"{SEED} line 1169 (footnote (b): d = 10^6)"),
        Setting("n", N, N, f"{SEED} line 1169 (n = 10^3)"),
        Setting("h_i (seconds per gradient)", "U(0.1, 1)", "U(0.1, 1)", f"{SEED} line 1169 (uniform i.i.d.)"),
        Setting("tau_i (seconds per float)", "U(0.1, 1)", "U(0.1, 1)", f"{SEED} line 1169 (uniform i.i.d.)"),
        Setting("sigma^2/eps", "1, 10^3, 10^6", "1, 10^3, 10^6", f"{SEED} line 1169 (three noise regimes)"),
        Setting("RandK K (QSGD, Shadowheart SGD)", K, K, f"{SEED} line 1153 (K = 1)"),
    ),
    panels=(),
    methods=(),
    claims=(),
    target={},
    paper_time="about 1 s (computed, no runs)",
    compute=report,
)
