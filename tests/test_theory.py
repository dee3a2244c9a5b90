"""Tests for asyncopt_mpi.theory (time-complexity formulas of Tyurin & Richtarik 2023) and `asyncopt theory`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncopt_mpi.cli import cli
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.problems import QuadraticProblem
from asyncopt_mpi.theory import (
    FORMULAS,
    amelie_sgd_time,
    async_sgd_time,
    decentralized_minibatch_time,
    freya_lower_bound_time,
    freya_page_time,
    hero_gd_time,
    hero_page_time,
    sgd_comm_lower_bound,
    soviet_gd_time,
    soviet_page_time,
    estimate_sigma2,
    hero_sgd_time,
    lower_bound_time,
    malenia_sgd_time,
    minibatch_sgd_time,
    rennala_batch,
    rennala_optimal_m,
    rennala_sgd_time,
    theory_table,
)

from conftest import run_cli

ROWS = {
    "minibatch_sgd", "qsgd", "async_sgd", "rennala_sgd", "shadowheart_sgd", "malenia_sgd", "hero_sgd", "lower_bound",
    "sgd_comm_bound", "freya_page", "hero_page", "soviet_page", "hero_gd", "soviet_gd", "freya_lower_bound",
    "graph_minibatch_sgd", "amelie_sgd",
}
SMALL = ["--set", "workers.n=8", "--set", "stop.iterations=1", "--set", "problem.dim=20", "--set", "problem.noise=0.1"]


def rennala_by_definition(taus, L, delta, sigma2, eps):
    """The published min over m, written as a plain loop over the sorted taus."""
    taus = sorted(taus)
    best = math.inf
    for m in range(1, len(taus) + 1):
        harmonic = 1.0 / (sum(1.0 / t for t in taus[:m]) / m)
        best = min(best, harmonic * (L * delta / eps + sigma2 * L * delta / (m * eps**2)))
    return best


# ---------------------------------------------------------------- formulas


@pytest.mark.parametrize("n", [1, 7, 100_000])
def test_equal_workers_give_the_same_time_and_use_all_of_them(n):
    tau, L, delta, sigma2, eps = 2.0, 1.5, 4.0, 50.0, 0.01
    taus = np.full(n, tau)
    expected = tau * (L * delta / eps + sigma2 * L * delta / (n * eps**2))
    for fn in (rennala_sgd_time, async_sgd_time, minibatch_sgd_time):
        assert fn(taus, L, delta, sigma2, eps) == pytest.approx(expected, rel=1e-9)
    assert rennala_optimal_m(taus, L, delta, sigma2, eps) == n


def test_hero_and_malenia_closed_forms():
    taus = np.array([3.0, 1.0, 2.0])
    L, delta, sigma2, eps = 2.0, 5.0, 0.3, 0.1
    assert hero_sgd_time(taus, L, delta, sigma2, eps) == pytest.approx(1.0 * (100 + 0.3 * 10 / 0.01))
    assert malenia_sgd_time(taus, L, delta, sigma2, eps) == pytest.approx(3.0 * 100 + 2.0 * 0.3 * 10 / (3 * 0.01))


def test_m_star_shrinks_as_one_worker_slows():
    # sigma2/eps = 4 with five unit workers: (m + 4)/m is least at m = 5; once the fifth
    # worker needs more than 2 s, (4 + 5)/(4 + 1/t) > 2 = the value at m = 4.
    slow = [1.0, 1.5, 1.9, 2.5, 10.0, math.inf]
    m_stars = [rennala_optimal_m([1, 1, 1, 1, t], 1.0, 1.0, 4.0, 1.0) for t in slow]
    assert m_stars[0] == 5
    assert m_stars[-1] == 4
    assert all(a >= b for a, b in zip(m_stars, m_stars[1:])), m_stars


def test_m_star_is_one_without_noise():
    # sigma2 = 0: gradients are exact, a second worker only adds its slowness.
    assert rennala_optimal_m([1.0, 1.0, 2.0], 1.0, 1.0, 0.0, 0.1) == 1


@settings(max_examples=200, deadline=None)
@given(
    taus=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=40),
    L=st.floats(1e-3, 1e3),
    delta=st.floats(1e-3, 1e3),
    sigma2=st.floats(0.0, 1e3),
    eps=st.floats(1e-4, 1.0),
)
def test_rennala_is_the_minimum_of_the_table(taus, L, delta, sigma2, eps):
    args = (np.array(taus), L, delta, sigma2, eps)
    rennala = rennala_sgd_time(*args)
    assert rennala == pytest.approx(rennala_by_definition(taus, L, delta, sigma2, eps), rel=1e-9)
    assert lower_bound_time(*args) == rennala
    tolerance = 1 + 1e-9  # the sums of speeds are accumulated in different orders
    assert rennala <= async_sgd_time(*args) * tolerance
    assert rennala <= minibatch_sgd_time(*args) * tolerance
    assert rennala <= hero_sgd_time(*args) * tolerance
    m = rennala_optimal_m(*args)
    assert 1 <= m <= len(taus)


def test_a_dead_worker_stops_minibatch_and_malenia_only():
    taus = np.array([1.0, 2.0, math.inf])
    args = (taus, 1.0, 10.0, 1.0, 0.1)
    assert math.isinf(minibatch_sgd_time(*args))
    assert math.isinf(malenia_sgd_time(*args))
    assert math.isfinite(rennala_sgd_time(*args))
    assert rennala_sgd_time(*args) == pytest.approx(rennala_by_definition([1.0, 2.0], 1.0, 10.0, 1.0, 0.1))
    assert rennala_optimal_m(*args) <= 2
    # Async SGD as published: harmonic mean over all three, the dead one adding 0 speed.
    assert async_sgd_time(*args) == pytest.approx(3 / 1.5 * (100 + 10 / (3 * 0.01)))


# ---------------------------------------------------------------- Freya PAGE (seed 000, Table 1)


def freya_by_definition(taus, L, delta, m, eps):
    """Freya PAGE's time and lower bound written as loops from the published formulas."""
    taus = sorted(taus)

    def best(b):
        value = math.inf
        for j in range(1, len(taus) + 1):
            value = min(value, (b + j) / sum(1.0 / t for t in taus[:j]))
        return value

    time = best(m) + L * delta / eps * best(math.sqrt(m))
    bound = best(m) + L * delta / (math.sqrt(m) * eps) * best(m)
    return time, bound


def test_freya_page_time_and_lower_bound_follow_the_formula():
    taus = [math.sqrt(i) for i in range(1, 101)]
    L, delta, m, eps = 2.0, 3.0, 10_000, 0.01
    time, bound = freya_by_definition(taus, L, delta, m, eps)
    assert freya_page_time(taus, L, delta, m, eps) == pytest.approx(time, rel=1e-12)
    assert freya_lower_bound_time(taus, L, delta, m, eps) == pytest.approx(bound, rel=1e-12)
    # sqrt(m) = 100 >= n = 100: the large-scale regime, where Freya PAGE is optimal up to a constant.
    assert bound <= time <= 3 * bound
    # the published baselines, computed by hand for these taus
    assert hero_page_time(taus, L, delta, m, eps) == pytest.approx(1.0 * m + 1.0 * 600 * 100)
    assert soviet_page_time(taus, L, delta, m, eps) == pytest.approx(10.0 * 100 + 10.0 * 600 * 1)
    assert hero_gd_time(taus, L, delta, m, eps) == pytest.approx(1.0 * m * 600)
    assert soviet_gd_time(taus, L, delta, m, eps) == pytest.approx(10.0 * 100 * 600)


@settings(max_examples=300, deadline=None)
@given(
    taus=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=30),
    L=st.floats(1e-3, 1e3),
    delta=st.floats(1e-3, 1e3),
    m=st.integers(1, 10**6),
    eps=st.floats(1e-4, 1.0),
)
def test_freya_page_beats_hero_and_soviet_page_in_theory_for_any_taus(taus, L, delta, m, eps):
    """Freya PAGE <= Hero PAGE and <= Soviet PAGE, up to the factor 2 that its "+ j" terms cost.

    With j = 1, t(b) <= tau_1 (b + 1) <= 2 tau_1 b (Hero); with j = n, t(b) <= tau_n (b + n)/n <=
    2 tau_n ceil(b/n) (Soviet, whose every worker computes at least one term). The constant 2 is
    the published formulas' (they hold up to constants); both sides use them as printed.
    """
    args = (np.array(taus), L, delta, m, eps)
    freya = freya_page_time(*args)
    tolerance = 2 * (1 + 1e-9)
    assert freya == pytest.approx(freya_by_definition(taus, L, delta, m, eps)[0], rel=1e-9)
    for baseline in (hero_page_time, soviet_page_time):
        assert freya <= baseline(*args) * tolerance, baseline.__name__
    assert freya_lower_bound_time(*args) <= freya * (1 + 1e-9)


def test_freya_page_ignores_a_dead_worker_and_soviet_page_does_not():
    args = (np.array([1.0, 2.0, math.inf]), 1.0, 1.0, 100, 0.1)
    assert math.isinf(soviet_page_time(*args)) and math.isinf(soviet_gd_time(*args))
    assert freya_page_time(*args) == pytest.approx(freya_by_definition([1.0, 2.0], 1.0, 1.0, 100, 0.1)[0])


def test_communication_and_graph_rows():
    h, theta, d = np.array([1.0, 1.0]), np.array([0.01, 1.0]), 100
    # sorted by max(h, d theta) = (1, 100): j = 1 gives max(1, 1, s2/eps * 1) = 5 with s2/eps = 5
    assert sgd_comm_lower_bound(h, theta, d, 1.0, 1.0, 5.0, 1.0) == pytest.approx(5.0)
    # j = 2 needs 100 s a send; without noise the fastest worker alone gives 1
    assert sgd_comm_lower_bound(h, theta, d, 1.0, 1.0, 0.0, 1.0) == pytest.approx(1.0)
    rho = np.array([[0.0, 3.0], [2.0, 0.0]])
    assert decentralized_minibatch_time(h, rho, 1.0, 1.0, 4.0, 1.0) == pytest.approx(3.0 * 3.0)
    assert amelie_sgd_time(h, rho, 1.0, 1.0, 40.0, 1.0) == pytest.approx(20.0)


def test_theory_of_the_figure1_config_prints_freya_rows():
    result = run_cli(["theory", "jobs/freya_fig1_n1000.toml", "--set", "workers.n=100", "--set", "problem.dim=50",
                      "--sigma2", "0", "--json"])
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["freya_lower_bound"]["ratio"] == 1.0
    assert 1.0 <= rows["freya_page"]["ratio"] <= 3.0  # sqrt(m) = 100 >= n = 100
    assert rows["freya_page"]["time"] < rows["hero_page"]["time"]
    assert rows["freya_page"]["time"] <= 2 * rows["soviet_page"]["time"]
    assert rows["amelie_sgd"]["time"] is None  # no graph: the row does not apply


def test_theory_on_a_graph_prints_amelie():
    result = run_cli(["theory", "jobs/amelie_heterogeneous.toml", "--set", "workers.n=9", "--sigma2", "1", "--json"])
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["amelie_sgd"]["ratio"] == 1.0 and rows["graph_minibatch_sgd"]["ratio"] >= 1.0


def test_rennala_batch():
    assert rennala_batch(0.0, 0.1) == 1
    assert rennala_batch(1.0, 0.1) == 10
    assert rennala_batch(1.05, 0.1) == 11


@pytest.mark.parametrize("bad", [dict(eps=0.0), dict(sigma2=-1.0), dict(taus=[]), dict(taus=[1.0, math.nan])])
def test_bad_inputs_raise(bad):
    args = dict(taus=[1.0, 2.0], L=1.0, delta=1.0, sigma2=1.0, eps=0.1) | bad
    with pytest.raises(ValueError):
        rennala_sgd_time(**args)


def test_estimate_sigma2_of_additive_noise_is_d_s2():
    d, s = 50, 0.5
    problem = QuadraticProblem(dim=d, noise=s, noise_type="add")
    estimate = estimate_sigma2(problem, problem.x0(), np.random.default_rng(0), samples=400)
    assert estimate == pytest.approx(d * s**2, rel=0.1)


# ---------------------------------------------------------------- table and CLI


def test_table_uses_the_config():
    config = load_config(None, SMALL[1::2] + ["method.eps=0.02"], method="rennala_sgd", backend="sim")
    table = theory_table(config, sigma2=3.0)
    assert table["inputs"]["eps"] == 0.02 and table["inputs"]["eps_source"] == "method.eps"
    assert table["inputs"]["sigma2"] == 3.0 and table["inputs"]["n"] == 8
    assert {row["method"] for row in table["rows"]} == set(FORMULAS) == ROWS
    times = {row["method"]: row["time"] for row in table["rows"]}
    assert times["lower_bound"] == times["rennala_sgd"]
    assert table["rennala_S"] == 150


def test_cli_prints_an_aligned_table():
    result = CliRunner().invoke(cli, ["theory", *SMALL])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "n=8" in lines[0]
    rows = [line for line in lines if line.split(" ")[0] in ROWS]
    assert {line.split(" ")[0] for line in rows} == ROWS
    # the formula column starts at the same place in every row
    starts = {line.index(FORMULAS[line.split(" ")[0]].text) for line in rows}
    assert len(starts) == 1


def test_cli_json_has_every_row_and_strict_numbers():
    result = CliRunner().invoke(
        cli, ["theory", *SMALL, "--set", "workers.n=2", "--set", "workers.compute_times=[0.1, inf]", "--eps", "0.5", "--json"]
    )
    assert result.exit_code == 0, result.output

    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    table = json.loads(result.output, parse_constant=reject)
    rows = {row["method"]: row for row in table["rows"]}
    assert ROWS <= set(rows)  # and the rows of CONDITIONAL_FORMULAS for async_sgd, the default method
    assert table["inputs"]["eps"] == 0.5 and table["inputs"]["eps_source"] == "given"
    assert rows["minibatch_sgd"]["time"] == "inf"
    assert isinstance(rows["rennala_sgd"]["time"], float) and rows["lower_bound"]["ratio"] == 1.0
    assert table["rennala_m_star"] == 1


def test_cli_needs_no_stop_rule():
    result = run_cli(["theory", "--set", "workers.n=4", "--set", "problem.dim=10", "--sigma2", "1"])
    assert result.returncode == 0, result.stderr
    assert "rennala_sgd" in result.stdout


def test_cli_without_workers_n_exits_2_naming_the_key():
    result = run_cli(["theory", "--set", "stop.iterations=1"])
    assert result.returncode == 2
    assert "asyncopt: error: workers.n" in result.stderr
