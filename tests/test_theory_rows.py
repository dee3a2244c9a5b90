"""The theory rows of issue 27 (AsGrad, Koloskova et al., Fragile SGD and the graph lower bound, the
convex regime, Shadowheart's lower bound): each formula against a loop written from the printed
formula, and `asyncopt theory` showing each row for the configs it applies to only."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import QuadraticProblem
from asyncopt_mpi.problems.splits import shard_indices
from asyncopt_mpi.theory import (
    CONDITIONAL_FORMULAS,
    amelie_sgd_time,
    fragile_sgd_time,
    graph_lower_bound_time,
    heterogeneity_at,
    shadowheart_lower_bound_time,
    shadowheart_time,
)
from asyncopt_mpi.theory.asgrad import asgrad_time, koloskova_time
from asyncopt_mpi.theory.convex import (
    accelerated_rennala_sgd_time,
    convex_async_sgd_time,
    convex_lower_bound_time,
    convex_minibatch_sgd_time,
    woodworth_lower_bound_time,
)

SMALL = ["--set", "workers.n=6", "--set", "problem.dim=20", "--sigma2", "0.5"]
ASYNC_ROWS = {"asgrad_pure", "asgrad_random", "asgrad_shuffle", "koloskova_fixed_lr", "koloskova_delay_adaptive"}
GRAPH_ROWS = {"fragile_sgd", "graph_lower_bound"}
CONVEX_ROWS = {"convex_minibatch_sgd", "convex_async_sgd", "accelerated_rennala_sgd", "convex_lower_bound",
               "woodworth_lower_bound"}


def theory_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["theory", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def row_times(table: dict) -> dict[str, float]:
    return {row["method"]: row["time"] for row in table["rows"]}


# ---------------------------------------------------------------- AsGrad (seed 002) and Koloskova et al. (seed 001)


def iterations_where(term, eps: float) -> float:
    """The T at which a term of a rate, decreasing in T, equals eps: bisection on a log scale."""
    low, high = 1e-12, 1e30
    for _ in range(400):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if term(mid) > eps else (low, mid)
    return high


def asgrad_by_definition(assign, taus, L, delta, sigma2, eps, G, zeta2):
    """Seed 002's special cases term by term (L Delta put back), each inverted numerically."""
    n, LD = len(taus), L * delta
    terms = [lambda T: n * LD / T, lambda T: (LD * sigma2 / T) ** 0.5, lambda T: (n * LD * G / T) ** (2 / 3)]
    if assign == "pure" and zeta2 >= eps:
        return math.inf
    if assign == "random":
        terms.append(lambda T: (LD * zeta2 / T) ** 0.5)
    if assign == "shuffle":
        terms.append(lambda T: (LD * math.sqrt(n) * math.sqrt(zeta2) / T) ** (2 / 3))
    iterations = sum(iterations_where(term, eps) for term in terms)
    return iterations / sum(1.0 / t for t in taus)


@pytest.mark.parametrize("assign", ["pure", "random", "shuffle"])
@pytest.mark.parametrize("zeta2", [0.0, 0.004])
def test_asgrad_time_is_the_iterations_where_each_term_reaches_eps(assign, zeta2):
    taus, L, delta, sigma2, eps, G = [1.0, 2.0, 3.0, 7.5], 2.0, 3.0, 0.5, 0.01, 0.7
    expected = asgrad_by_definition(assign, taus, L, delta, sigma2, eps, G, zeta2)
    assert asgrad_time(assign, taus, L, delta, sigma2, eps, G, zeta2) == pytest.approx(expected, rel=1e-9)


def test_asgrad_orders_the_rules_as_the_seed_and_pure_cannot_beat_heterogeneity():
    args = ([1.0, 2.0, 3.0], 1.0, 1.0, 0.5, 0.01, 0.3)
    # one data distribution: the three rates coincide
    assert len({asgrad_time(rule, *args, 0.0) for rule in ("pure", "random", "shuffle")}) == 1
    # zeta^2 >= eps: pure's non-vanishing zeta^2 term, random and shuffle still converge
    assert math.isinf(asgrad_time("pure", *args, 0.02))
    assert math.isfinite(asgrad_time("random", *args, 0.02)) and math.isfinite(asgrad_time("shuffle", *args, 0.02))
    # a dead worker adds no arrivals
    assert asgrad_time("random", [1.0, 2.0, math.inf], *args[1:], 0.0) > asgrad_time("random", *args, 0.0)


def simulated_delays(taus, arrivals: int) -> tuple[float, float]:
    """Pure asynchronous SGD with fixed times: (max, mean) over arrivals of the steps a gradient spans (delay + 1)."""
    next_arrival = list(taus)
    started_at = [0] * len(taus)  # the step count when each worker took its point
    step, spans = 0, []
    for _ in range(arrivals):
        worker = min(range(len(taus)), key=lambda i: next_arrival[i])
        step += 1
        spans.append(step - started_at[worker])
        started_at[worker] = step
        next_arrival[worker] += taus[worker]
    return max(spans), sum(spans) / len(spans)


def test_koloskova_delays_are_those_of_a_simulated_pure_asynchronous_sgd():
    taus = [1.0, 1.7, 2.9, 4.3]
    speed = sum(1.0 / t for t in taus)
    tau_max, tau_avg = simulated_delays(taus, 20_000)
    assert tau_avg == pytest.approx(len(taus), rel=1e-3)
    # each other worker lands floor or ceil of tau_(n)/tau_j times in the slowest worker's window
    assert abs(tau_max - max(taus) * speed) <= len(taus) - 1
    L, delta, sigma2, eps = 2.0, 3.0, 0.5, 0.01
    fixed = L * delta * (sigma2 / eps**2 + math.sqrt(max(taus) * speed * len(taus)) / eps) / speed
    adaptive = L * delta * (sigma2 / eps**2 + len(taus) / eps) / speed
    assert koloskova_time(taus, L, delta, sigma2, eps, False) == pytest.approx(fixed, rel=1e-12)
    assert koloskova_time(taus, L, delta, sigma2, eps, True) == pytest.approx(adaptive, rel=1e-12)
    # a dead worker: left out of tau_max, tau_avg and the speed; none answering: inf
    assert koloskova_time([*taus, math.inf], L, delta, sigma2, eps, False) == pytest.approx(fixed, rel=1e-12)
    assert math.isinf(koloskova_time([math.inf], L, delta, sigma2, eps, True))


def test_heterogeneity_is_the_spread_of_the_shard_gradients_at_x0():
    problem = QuadraticProblem(dim=5, samples=40, lam=0.5, seed=3)
    x0 = problem.x0()
    workers = load_config(None, ["workers.n=4", "workers.data_split=partition", "problem.samples=40"],
                          backend="sim", require_stop=False).workers
    shards = shard_indices(40, 4, "partition", seed=workers.seed)
    shard_grads = [sum(problem.grad(x0, np.array([j])) for j in shard) / len(shard) for shard in shards]
    mean = sum(shard_grads) / 4
    expected = sum(float((g - mean) @ (g - mean)) for g in shard_grads) / 4
    assert expected > 0
    assert heterogeneity_at(problem, x0, workers, 4) == pytest.approx(expected, rel=1e-9)
    iid = load_config(None, ["workers.n=4"], backend="sim", require_stop=False).workers
    assert heterogeneity_at(problem, x0, iid, 4) == 0.0


def test_the_asgrad_configs_get_their_rows_with_split_data():
    table = theory_json("jobs/asgrad_fixed.toml", "--set", "workers.n=4")
    assert table["inputs"]["zeta2"] > 0 and table["inputs"]["G"] > 0
    rows = row_times(table)
    assert all(isinstance(rows[name], float) for name in ASYNC_ROWS)
    # zeta^2 < eps here: pure pays it only as a floor on eps, random and shuffle in extra iterations
    assert table["inputs"]["zeta2"] < table["inputs"]["eps"]
    assert rows["asgrad_pure"] < rows["asgrad_random"] and rows["asgrad_pure"] < rows["asgrad_shuffle"]


# ---------------------------------------------------------------- Fragile SGD and the graph lower bound


def floyd_warshall(n: int, links: dict[tuple[int, int], float]) -> np.ndarray:
    dist = np.full((n, n), math.inf)
    np.fill_diagonal(dist, 0.0)
    for (i, j), time in links.items():
        dist[i, j] = min(dist[i, j], time)
    for k, i, j in itertools.product(range(n), repeat=3):
        dist[i, j] = min(dist[i, j], dist[i, k] + dist[k, j])
    return dist


def t_star_over_subsets(s: float, h: list[float], r: list[float]) -> float:
    """min over every non-empty set W of workers of max{max_{i in W} max(r_i, h_i), s / sum_{i in W} 1/h_i}."""
    best = math.inf
    for size in range(1, len(h) + 1):
        for chosen in itertools.combinations(range(len(h)), size):
            slowest = max(max(r[i], h[i]) for i in chosen)
            best = min(best, max(slowest, s / sum(1.0 / h[i] for i in chosen)))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fragile_and_the_graph_lower_bound_are_t_star_at_the_best_pivot(seed):
    rng = np.random.default_rng(seed)
    n = 6
    links = {}
    for i in range(n):  # a ring with one chord, link times differing per direction
        for j in ((i + 1) % n, (i + 3) % n):
            links[(i, j)], links[(j, i)] = rng.uniform(0.1, 3.0), rng.uniform(0.1, 3.0)
    dist = floyd_warshall(n, links)
    h = list(rng.uniform(0.5, 4.0, size=n))
    L, delta, sigma2, eps = 2.0, 3.0, 0.7, 0.1
    LD_eps = L * delta / eps
    bound = min(t_star_over_subsets(sigma2 / eps, h, list(dist[:, j])) for j in range(n)) * LD_eps
    fragile = min(t_star_over_subsets(sigma2 / eps, h, list(dist[:, j] + dist[j, :])) for j in range(n)) * LD_eps
    assert graph_lower_bound_time(h, dist, L, delta, sigma2, eps) == pytest.approx(bound, rel=1e-12)
    assert fragile_sgd_time(h, dist, L, delta, sigma2, eps) == pytest.approx(fragile, rel=1e-12)
    # a round trip is never shorter than the way in; one distribution is never harder than many
    assert bound <= fragile
    assert bound <= amelie_sgd_time(h, dist, L, delta, sigma2, eps) * (1 + 1e-12)


def test_fragile_on_symmetric_links_is_within_twice_the_lower_bound():
    dist = floyd_warshall(4, {(i, j): 2.0 for i in range(4) for j in range(4) if abs(i - j) == 1})
    h = [1.0, 1.0, 8.0, 1.0]
    for sigma2 in (0.0, 1.0, 100.0):
        bound = graph_lower_bound_time(h, dist, 1.0, 1.0, sigma2, 1.0)
        assert bound <= fragile_sgd_time(h, dist, 1.0, 1.0, sigma2, 1.0) <= 2 * bound
    # without noise the fastest worker alone, as pivot, takes tau_(1) per step
    assert graph_lower_bound_time(h, dist, 1.0, 1.0, 0.0, 1.0) == 1.0


# ---------------------------------------------------------------- the convex regime (seed 001 lines 1023-1032)


def convex_by_definition(taus, L, R, M, sigma2, eps):
    """The five rows of the convex table written as loops over the sorted taus."""
    taus = sorted(taus)
    n = len(taus)
    A = min(math.sqrt(L) * R / math.sqrt(eps), M**2 * R**2 / eps**2)
    harmonic = lambda m: m / sum(1.0 / t for t in taus[:m])  # noqa: E731
    minibatch = taus[-1] * (A + sigma2 * R**2 / (n * eps**2))
    asynchronous = harmonic(n) * (L * R**2 / eps + sigma2 * R**2 / (n * eps**2))
    rennala = min(harmonic(m) * (A + sigma2 * R**2 / (m * eps**2)) for m in range(1, n + 1))
    woodworth = taus[0] * A + harmonic(n) * sigma2 * R**2 / (n * eps**2)
    return minibatch, asynchronous, rennala, woodworth


@pytest.mark.parametrize("M", [math.inf, 0.05, 3.0])
def test_convex_rows_follow_the_seed_table(M):
    taus, L, R, sigma2, eps = [math.sqrt(i) for i in range(1, 13)], 2.0, 1.5, 0.3, 0.01
    minibatch, asynchronous, rennala, woodworth = convex_by_definition(taus, L, R, M, sigma2, eps)
    args = (taus, L, R, M, sigma2, eps)
    assert convex_minibatch_sgd_time(*args) == pytest.approx(minibatch, rel=1e-12)
    assert convex_async_sgd_time(*args) == pytest.approx(asynchronous, rel=1e-12)
    assert accelerated_rennala_sgd_time(*args) == pytest.approx(rennala, rel=1e-12)
    assert convex_lower_bound_time(*args) == accelerated_rennala_sgd_time(*args)
    assert woodworth_lower_bound_time(*args) == pytest.approx(woodworth, rel=1e-12)
    # Woodworth et al.'s bound is the weaker one, and Rennala's expression beats minibatch
    assert woodworth <= rennala <= minibatch


def test_convex_rows_at_the_optimum_and_with_a_dead_worker():
    assert accelerated_rennala_sgd_time([1.0, 2.0], 1.0, 0.0, math.inf, 1.0, 0.1) == 0.0
    assert math.isinf(convex_minibatch_sgd_time([1.0, math.inf], 1.0, 1.0, math.inf, 1.0, 0.1))
    args = (1.0, 1.0, math.inf, 1.0, 0.1)
    assert accelerated_rennala_sgd_time([1.0, 2.0, math.inf], *args) == accelerated_rennala_sgd_time([1.0, 2.0], *args)
    with pytest.raises(ValueError):
        convex_lower_bound_time([1.0], 1.0, math.nan, math.inf, 1.0, 0.1)


# ---------------------------------------------------------------- Shadowheart's lower bound (Section 7)


def test_shadowheart_lower_bound_is_its_time():
    h, theta = [1.0, 2.0, 3.0], [0.01, 0.02, 0.5]
    assert shadowheart_lower_bound_time(h, theta, 50, 2, 1.0, 2.0, 0.3, 0.01) == shadowheart_time(
        h, theta, 50, 2, 1.0, 2.0, 0.3, 0.01)


# ---------------------------------------------------------------- asyncopt theory shows each row where it applies


def test_the_async_rows_are_shown_for_async_sgd_only():
    rows = row_times(theory_json(*SMALL, "--method", "async_sgd"))
    assert ASYNC_ROWS <= set(rows) and not (set(rows) & (GRAPH_ROWS | CONVEX_ROWS))
    assert all(isinstance(rows[name], float) for name in ASYNC_ROWS)
    # the delay-adaptive rate is the async_sgd row when every worker answers
    assert rows["koloskova_delay_adaptive"] == pytest.approx(rows["async_sgd"], rel=1e-9)
    assert not set(row_times(theory_json(*SMALL, "--method", "rennala_sgd"))) & ASYNC_ROWS


def test_a_graph_config_shows_fragile_and_the_one_distribution_lower_bound():
    table = theory_json("jobs/fragile_mesh_rho1.toml", "--set", "workers.n=9", "--sigma2", "1")
    rows = {row["method"]: row for row in table["rows"]}
    assert GRAPH_ROWS <= set(rows)
    assert rows["graph_lower_bound"]["ratio"] == 1.0 and 1.0 <= rows["fragile_sgd"]["ratio"] <= 2.0
    assert rows["graph_lower_bound"]["time"] <= rows["amelie_sgd"]["time"]
    assert not set(row_times(theory_json(*SMALL))) & GRAPH_ROWS


def test_the_convex_rows_come_with_convex_and_use_r_from_the_minimizer():
    table = theory_json(*SMALL, "--method", "rennala_sgd", "--convex")
    problem = QuadraticProblem(dim=20)
    R = float(np.linalg.norm(problem.x0() - problem.minimizer()))
    assert table["inputs"]["R"] == pytest.approx(R, rel=1e-12)
    rows = {row["method"]: row for row in table["rows"]}
    assert CONVEX_ROWS <= set(rows) and rows["convex_lower_bound"]["ratio"] == 1.0
    assert rows["woodworth_lower_bound"]["ratio"] <= 1.0 + 1e-12
    assert not set(row_times(theory_json(*SMALL, "--method", "rennala_sgd"))) & CONVEX_ROWS


def test_convex_without_a_minimizer_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["theory", "jobs/sfw_matrix_sensing.toml", "--set", "workers.n=2", "--convex"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "asyncopt: error: --convex: problem 'matrix_sensing' gives no minimizer x*, needed for R = ||x0 - x*||"
    ]


def test_shadowheart_lower_bound_is_shown_when_communication_counts():
    comm = ["--set", "workers.comm=sqrt", "--set", "workers.comm_scale=0.01"]
    rows = {row["method"]: row for row in theory_json(*SMALL, *comm)["rows"]}
    assert rows["shadowheart_lower_bound"]["time"] == rows["shadowheart_sgd"]["time"]
    assert "shadowheart_lower_bound" not in row_times(theory_json(*SMALL))


def test_the_text_table_aligns_the_conditional_rows_with_the_others():
    result = CliRunner().invoke(cli, ["theory", *SMALL, "--method", "async_sgd", "--convex"])
    assert result.exit_code == 0, result.output
    formulas = {name: f.text for name, f in CONDITIONAL_FORMULAS.items()} | {"lower_bound": "= rennala_sgd"}
    starts = {line.index(formulas[line.split(" ")[0]]) for line in result.output.splitlines()
              if line.split(" ")[0] in formulas}
    assert len(starts) == 1
    assert "eps is a target on f - f*" in result.output


def test_every_conditional_row_is_compared_with_a_row_shown_with_it():
    for name, formula in CONDITIONAL_FORMULAS.items():
        assert formula.applies is not None, name
        bound = CONDITIONAL_FORMULAS.get(formula.bound)
        assert bound is None or bound.applies is formula.applies, name
