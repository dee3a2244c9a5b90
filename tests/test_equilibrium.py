"""Tests for Shadowheart's equilibrium time t*, its round plan and the communication rows of the theory table.

Source: Tyurin, Pozzi, Ilin & Richtarik 2024 (arXiv 2402.04785), Definition 4.2, Algorithm 1 and
Table 1 (seed 001 lines 1095-1200).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from asyncopt_mpi.cli import cli
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.theory import (
    FORMULAS,
    Inputs,
    equilibrium_time,
    equilibrium_time_equal,
    format_table,
    minibatch_sgd_comm_time,
    minibatch_sgd_time,
    qsgd_time,
    shadowheart_plan,
    shadowheart_time,
    theory_table,
)
from asyncopt_mpi.theory.shadowheart import _equilibrium
from full_suite import count

SMALL = ["workers.n=8", "stop.iterations=1", "problem.dim=20", "problem.noise=0.1"]
COMM = ["workers.comm=sqrt", "workers.comm_scale=0.01"]
TOL = 1e-9
# Examples per property: make test draws 100 (the same ones every run), make test-full 300.
EXAMPLES = count("ASYNCOPT_EQUILIBRIUM_EXAMPLES", 100, 300)

seconds = st.floats(1e-3, 1e3)
workers = st.lists(st.tuples(seconds, seconds), min_size=1, max_size=25)
wide = st.one_of(st.just(0.0), st.just(math.inf), st.floats(1e-9, 1e9))
wide_workers = st.lists(st.tuples(wide, wide), min_size=1, max_size=25)
omegas = st.sampled_from([0.0, 0.5, 9.0, 999.0])
ratios = st.sampled_from([0.0, 1.0, 1e3, 1e6])


def by_definition(omega, r, h, t):
    """Definition 4.2 written out: a brentq solve of s = RHS(s) for EVERY prefix, then the min over j."""
    pairs = sorted((max(hi, ti), hi, ti) for hi, ti in zip(h, t) if math.isfinite(hi) and math.isfinite(ti))
    if not pairs:
        return math.inf
    best = math.inf
    for j in range(1, len(pairs) + 1):
        hs = np.array([p[1] for p in pairs[:j]])
        ts = np.array([p[2] for p in pairs[:j]])
        alpha, beta = 2 * ts * omega + 2 * hs * r, 4 * ts * omega * hs * r
        if (alpha == 0).any():
            s = 0.0
        else:
            def rhs(s, alpha=alpha, beta=beta):
                return 1.0 / np.sum(1.0 / (alpha + beta / s))

            # RHS decreases to RHS(inf) = [sum 1/alpha]^-1 =: lo, so s - RHS(s) <= 0 at lo and
            # >= 0 at RHS(lo) >= lo.
            lo = 1.0 / np.sum(1.0 / alpha)
            hi = rhs(lo)
            s = lo if hi <= lo else brentq(lambda s: s - rhs(s), lo, hi, xtol=1e-300, rtol=1e-15)
        best = min(best, max(pairs[j - 1][0], s))
    return best


# ---------------------------------------------------------------- t*


@pytest.mark.parametrize("n", [1, 2, 10, 1000])
def test_equal_workers_match_the_closed_form(n):
    # One test per n over the whole grid: 100 cases a test cost pytest's set-up more than the numbers.
    for omega in (0.0, 0.3, 9.0, 999.0, 1e6 - 1):
        for r in (0.0, 1.0, 1e3, 1e6):
            for h, t in ((1.0, 1.0), (0.01, 2.0), (3.0, 1e-6), (0.0, 0.5), (0.2, 0.0)):
                expected = equilibrium_time_equal(omega, r, h, t, n)
                got = equilibrium_time(omega, r, np.full(n, h), np.full(n, t))
                assert got == pytest.approx(expected, rel=TOL, abs=0.0), (omega, r, h, t)


def test_closed_form_by_hand():
    # n = 4, t = 1, h = 2, omega = 3, r = 5: a = (3 + 10)/4, s = a + sqrt(a^2 + 4*1*2*3*5/4)
    a = 13 / 4
    assert equilibrium_time_equal(3.0, 5.0, 2.0, 1.0, 4) == pytest.approx(a + math.sqrt(a * a + 30))
    assert equilibrium_time_equal(0.0, 0.0, 2.0, 1.0, 4) == 2.0  # s = 0, the round is max(h, t)
    assert equilibrium_time_equal(1.0, 1.0, math.inf, 1.0, 3) == math.inf


@settings(max_examples=EXAMPLES, deadline=None)
@given(pool=st.one_of(workers, wide_workers), omega=omegas, r=ratios)
def test_bisection_over_prefixes_equals_solving_every_prefix(pool, omega, r):
    h, t = (np.array(v) for v in zip(*pool))
    assert equilibrium_time(omega, r, h, t) == pytest.approx(by_definition(omega, r, h, t), rel=1e-9)


@pytest.mark.parametrize("omega, r", [(9.0, 10.0), (0.0, 10.0), (9.0, 0.0), (0.0, 0.0)])
def test_one_worker_is_max_of_h_t_and_its_s(omega, r):
    h, t = 0.7, 0.2
    a = t * omega + h * r
    s = a + math.sqrt(a * a + 4 * t * h * omega * r)
    assert equilibrium_time(omega, r, [h], [t]) == pytest.approx(max(h, t, s), rel=TOL)


def test_degenerate_noise_and_compression():
    h, t = np.array([1.0, 2.0, 4.0]), np.array([3.0, 0.5, 1.0])
    # exact gradients, no compression: one round of the fastest worker (by max(h, t)) suffices
    assert equilibrium_time(0.0, 0.0, h, t) == 2.0
    # omega = 0: s_j = [sum 1/(2 h_i r)]^-1; the prefixes in order of max(h, t) are {2}, {2, 1}, {2, 1, 4}
    r = 10.0
    s = [1 / (1 / (2 * 2 * r)), 1 / (1 / 40 + 1 / 20), 1 / (1 / 40 + 1 / 20 + 1 / 80)]
    assert equilibrium_time(0.0, r, h, t) == pytest.approx(min(max(c, sj) for c, sj in zip([2, 3, 4], s)))
    # r = 0: s_j = [sum 1/(2 t_i omega)]^-1
    omega = 5.0
    s = [1 / (1 / 5), 1 / (1 / 5 + 1 / 30), 1 / (1 / 5 + 1 / 30 + 1 / 10)]
    assert equilibrium_time(omega, 0.0, h, t) == pytest.approx(min(max(c, sj) for c, sj in zip([2, 3, 4], s)))
    # an instant, free worker makes t* = 0
    assert equilibrium_time(7.0, 7.0, [0.0, 1.0], [0.0, 1.0]) == 0.0


@pytest.mark.parametrize("bad", [("h", math.inf), ("t", math.inf)])
def test_an_infinite_worker_is_never_used(bad):
    h, t = [0.5, 1.0, 2.0], [0.3, 0.1, 1.0]
    base = equilibrium_time(99.0, 100.0, h, t)
    extra = {"h": h + [0.01], "t": t + [0.01]}
    extra[bad[0]][-1] = bad[1]
    assert equilibrium_time(99.0, 100.0, extra["h"], extra["t"]) == base
    # the dead worker is the fastest by the other number and would otherwise change t*
    assert equilibrium_time(99.0, 100.0, h + [0.01], t + [0.01]) < base
    assert equilibrium_time(99.0, 100.0, [math.inf, 1.0], [1.0, math.inf]) == math.inf
    assert equilibrium_time(0.0, 0.0, [math.inf], [math.inf]) == math.inf


def test_a_worker_too_slow_to_matter():
    omega, r, d, K = 9.0, 100.0, 10, 1
    h, t = np.array([1.0, 1.2, 0.8]), np.array([0.5, 0.4, 0.9])
    base = equilibrium_time(omega, r, h, t)
    h_slow, t_slow = np.append(h, 1e6), np.append(t, 0.5)
    t_star = equilibrium_time(omega, r, h_slow, t_slow)
    assert t_star == base
    plan = shadowheart_plan(t_star, omega, r, h_slow, t_slow, d, K)
    assert plan["b"][-1] == 0 and not plan["active"][-1] and plan["w"][-1] == 0.0
    assert plan["active"][:3].all() and plan["n_active"] == 3


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    pool=workers,
    omega=omegas,
    r=ratios,
    which=st.integers(0, 10**6),
    factor=st.floats(0.0, 1.0),
    field=st.sampled_from(["h", "t", "both"]),
)
def test_a_faster_worker_never_increases_t_star(pool, omega, r, which, factor, field):
    h, t = (np.array(v) for v in zip(*pool))
    before = equilibrium_time(omega, r, h, t)
    i = which % h.size
    if field in ("h", "both"):
        h = h.copy()
        h[i] *= factor
    if field in ("t", "both"):
        t = t.copy()
        t[i] *= factor
    assert equilibrium_time(omega, r, h, t) <= before * (1 + 1e-9)


def test_adding_workers_never_increases_t_star():
    rng = np.random.default_rng(0)
    h, t = rng.uniform(0.1, 1, 50), rng.uniform(0.1, 1, 50)
    values = [equilibrium_time(99.0, 1e3, h[:k], t[:k]) for k in range(1, 51)]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("profile", ["uniform", "sqrt"])
def test_ten_thousand_workers_is_fast(profile):
    n = 10_000
    rng = np.random.default_rng(1)
    if profile == "uniform":  # Shadowheart, Table 1 (b): h_i, theta_i ~ U(0.1, 1), d = 10^6
        h, t = rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, n)
    else:  # tau_i = sqrt(i), theta_i = sqrt(i)/d^(3/4) with d = 10^4
        h = np.sqrt(np.arange(1, n + 1.0))
        t = h / 1e3
    start = time.process_time()  # CPU time: on a loaded machine the wall clock also counts other processes
    values = [equilibrium_time(1e6 - 1, r, h, t) for r in (1.0, 1e3, 1e6)]
    elapsed = (time.process_time() - start) / 3
    print(f"equilibrium_time, n = {n}, {profile}: {elapsed * 1e3:.1f} ms per call")
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert elapsed < 10.0


# ---------------------------------------------------------------- the round plan


@settings(max_examples=EXAMPLES, deadline=None)
@given(pool=workers, omega=omegas, r=ratios, d=st.integers(1, 1000), K=st.integers(1, 1000))
def test_plan_fits_in_one_round(pool, omega, r, d, K):
    assume(K <= d)
    h, t = (np.array(v) for v in zip(*pool))
    t_star = equilibrium_time(omega, r, h, t)
    assume(0 < t_star < math.inf)
    plan = shadowheart_plan(t_star, omega, r, h, t, d, K)
    b, m, active, w = plan["b"], plan["m"], plan["active"], plan["w"]
    assert (b * h <= t_star * (1 + TOL)).all()
    assert (m * t <= t_star * (1 + TOL)).all()
    assert (m <= math.ceil(d / K)).all() and (m >= 0).all() and (b >= 0).all()
    assert (active == ((b >= 1) & (m >= 1))).all() and active.any()
    assert (w[~active] == 0).all() and (w[active] > 0).all()
    # the j* workers of the prefix that attains t* have max(h, t) <= t*, so they are all active
    _, j_star = _equilibrium(omega, r, h, t)
    assert plan["n_active"] == active.sum() >= j_star >= 1


def test_plan_by_hand():
    h, t = np.array([1.0, 0.5, 3.0]), np.array([0.25, 2.0, 0.1])
    plan = shadowheart_plan(2.0, 4.0, 10.0, h, t, dim=100, K=20)
    assert plan["b"].tolist() == [2, 4, 0]
    assert plan["m"].tolist() == [5, 1, 5]  # 8 copies of worker 0 capped at ceil(100/20) = 5
    assert plan["active"].tolist() == [True, True, False]
    assert plan["w"] == pytest.approx([1 / (8 + 40 + 50), 1 / (16 + 40 + 10), 0.0])


def test_plan_floors_forgive_floating_noise():
    t_star = 3.0 - 1e-15
    plan = shadowheart_plan(t_star, 1.0, 1.0, [1.0], [1.0], dim=10, K=1)
    assert plan["b"][0] == 3 and plan["m"][0] == 3


def test_plan_without_noise_or_compression_weighs_workers_equally():
    plan = shadowheart_plan(2.0, 0.0, 0.0, [1.0, 0.5, 5.0], [0.1, 1.0, 0.1], dim=10, K=10)
    assert plan["w"].tolist() == [1.0, 1.0, 0.0]
    assert plan["m"].tolist() == [1, 1, 1]


def test_plan_with_dead_worker_and_bad_inputs():
    plan = shadowheart_plan(1.0, 1.0, 1.0, [0.5, math.inf, 0.5], [0.5, 0.5, math.inf], dim=4, K=2)
    assert plan["active"].tolist() == [True, False, False]
    for bad in (dict(t_star=0.0), dict(t_star=math.inf), dict(h=[0.0, 1.0]), dict(K=5), dict(K=0)):
        args = dict(t_star=1.0, omega=1.0, sigma2_over_eps=1.0, h=[0.5, 1.0], t=[0.5, 1.0], dim=4, K=2) | bad
        with pytest.raises(ValueError):
            shadowheart_plan(**args)


@pytest.mark.parametrize(
    "bad",
    [dict(omega=-1.0), dict(omega=math.nan), dict(sigma2_over_eps=math.inf), dict(h=[]), dict(h=[1.0, math.nan]),
     dict(t=[1.0]), dict(t=[1.0, -1.0])],
)
def test_equilibrium_bad_inputs_raise(bad):
    args = dict(omega=1.0, sigma2_over_eps=1.0, h=[1.0, 2.0], t=[1.0, 2.0]) | bad
    with pytest.raises(ValueError):
        equilibrium_time(**args)


# ---------------------------------------------------------------- time complexities with communication


def test_comm_formulas_by_hand():
    h, theta = np.array([1.0, 2.0]), np.array([0.01, 0.002])
    L, delta, sigma2, eps, d, K = 2.0, 3.0, 0.5, 0.1, 100, 4
    LD = L * delta / eps
    assert minibatch_sgd_comm_time(h, theta, d, L, delta, sigma2, eps) == pytest.approx(2.0 * LD * (1 + 5 / 2))
    omega = 24.0
    assert qsgd_time(h, theta, d, K, L, delta, sigma2, eps) == pytest.approx(
        2.0 * LD * ((omega / 2 + 1) + 25 * 5 / 2)
    )
    t_star = equilibrium_time(omega, 5.0, h, K * theta)
    assert shadowheart_time(h, theta, d, K, L, delta, sigma2, eps) == pytest.approx(t_star * LD)
    # without communication the minibatch row keeps its compute-only value
    assert minibatch_sgd_comm_time(h, [0.0, 0.0], d, L, delta, sigma2, eps) == minibatch_sgd_time(
        h, L, delta, sigma2, eps
    )
    # a worker that cannot send stops minibatch SGD and QSGD but not Shadowheart
    dead = np.array([0.01, math.inf])
    assert math.isinf(minibatch_sgd_comm_time(h, dead, d, L, delta, sigma2, eps))
    assert math.isinf(qsgd_time(h, dead, d, K, L, delta, sigma2, eps))
    assert shadowheart_time(h, dead, d, K, L, delta, sigma2, eps) == pytest.approx(
        equilibrium_time(omega, 5.0, [1.0], [K * 0.01]) * LD
    )
    assert shadowheart_time(h, theta, d, K, 0.0, delta, sigma2, eps) == 0.0


def equal_regime(h, t, d, n, r):
    """Table 1, equal performance column of Shadowheart SGD (K = 1, t = theta).

    max{h, t, dt/n, sqrt(d t h r/n), h r/n} with r = sigma2/eps.
    """
    return max(h, t, d * t / n, math.sqrt(d * t * h * r / n), h * r / n)


@pytest.mark.parametrize("d", [10**4, 10**6])
@pytest.mark.parametrize("comm", ["fast", "medium", "slow"])
@pytest.mark.parametrize("n", [10, 1000])
@pytest.mark.parametrize("r", [1.0, 1e3, 1e6])
def test_paper_equal_regime_within_a_constant(d, comm, n, r):
    h = 1.0
    theta = {"fast": 1 / d, "medium": d**-0.75, "slow": d**-0.5}[comm]
    eps, L, delta = 1e-2, 1.0, 1.0
    time_ = shadowheart_time(np.full(n, h), np.full(n, theta), d, 1, L, delta, r * eps, eps)
    ratio = time_ / (equal_regime(h, theta, d, n, r) * L * delta / eps)
    assert 1 / 4 <= ratio <= 4, ratio


@settings(max_examples=EXAMPLES, deadline=None)
@given(h=seconds, t=seconds, d=st.integers(2, 10**6), n=st.integers(1, 10**4), r=st.floats(0, 1e6))
def test_equal_regime_constant_holds_everywhere(h, t, d, n, r):
    # t* = max(h, t, s), s = a + sqrt(a^2 + 4 t h omega r/n), a = (t omega + h r)/n, omega = d - 1 >= d/2:
    # s >= 2a >= max(dt/n, 2hr/n) and s >= 2 sqrt(t h omega r/n) >= sqrt(2 d t h r/n), so the ratio is >= 1;
    # a <= 2M and t h omega r/n <= M^2 for M the regime's max, so s <= (2 + 2 sqrt 2) M.
    ratio = equilibrium_time(d - 1.0, r, np.full(n, h), np.full(n, t)) / equal_regime(h, t, d, n, r)
    assert 1 - 1e-9 <= ratio <= 2 + 2 * math.sqrt(2) + 1e-9


# ---------------------------------------------------------------- the table


def test_inputs_default_to_no_communication():
    q = Inputs(taus=np.array([1.0, 2.0]), L=1.0, delta=1.0, sigma2=1.0, eps=0.1)
    assert q.theta.tolist() == [0.0, 0.0] and q.dim == 0 and q.K == 1
    assert math.isnan(FORMULAS["qsgd"].time(q)) and math.isnan(FORMULAS["shadowheart_sgd"].time(q))
    assert FORMULAS["minibatch_sgd"].time(q) == minibatch_sgd_time(q.taus, 1.0, 1.0, 1.0, 0.1)


def test_table_with_communication_has_the_comm_rows():
    config = load_config(None, SMALL + COMM, method="rennala_sgd", backend="sim")
    table = theory_table(config, eps=0.01, sigma2=2.0)
    rows = {row["method"]: row["time"] for row in table["rows"]}
    assert {"shadowheart_sgd", "qsgd", "minibatch_sgd"} <= set(rows)
    h = np.full(8, 0.01) * np.sqrt(np.arange(1, 9))
    theta = 0.01 * np.sqrt(np.arange(1, 9))
    q = table["inputs"]
    assert q["dim"] == 20 and q["K"] == 1 and q["theta_max"] == pytest.approx(theta[-1])
    LD = q["L"] * q["delta"]
    assert rows["shadowheart_sgd"] == pytest.approx(shadowheart_time(h, theta, 20, 1, q["L"], q["delta"], 2.0, 0.01))
    assert rows["qsgd"] == pytest.approx(qsgd_time(h, theta, 20, 1, q["L"], q["delta"], 2.0, 0.01))
    assert rows["minibatch_sgd"] == pytest.approx(max(h.max(), 20 * theta.max()) * LD / 0.01 * (1 + 2.0 / (8 * 0.01)))
    sh = table["shadowheart"]
    assert sh["t_star"] == pytest.approx(equilibrium_time(19.0, 200.0, h, theta))
    assert sh["omega"] == 19.0 and sh["sigma2_over_eps"] == pytest.approx(200.0)
    assert 1 <= sh["active"] <= 8
    text = format_table(table)
    assert f"t*={sh['t_star']:.4g} s" in text and f"{sh['active']} of 8 workers active" in text


def test_table_without_communication_keeps_its_numbers_and_header():
    config = load_config(None, SMALL, method="rennala_sgd", backend="sim")
    table = theory_table(config, sigma2=3.0)
    rows = {row["method"]: row["time"] for row in table["rows"]}
    h = np.full(8, 0.01) * np.sqrt(np.arange(1, 9))
    assert rows["minibatch_sgd"] == minibatch_sgd_time(h, table["inputs"]["L"], table["inputs"]["delta"], 3.0, 1e-3)
    assert "shadowheart:" not in format_table(table)


def test_table_reads_K_from_the_method():
    config = load_config(None, SMALL + COMM, method="rennala_sgd", backend="sim")
    config.method.params["K"] = 5  # methods with RandK (qsgd, shadowheart_sgd) declare K
    table = theory_table(config, eps=0.01, sigma2=2.0)
    assert table["inputs"]["K"] == 5 and table["shadowheart"]["omega"] == 3.0
    config.method.params["K"] = 21
    with pytest.raises(ConfigError, match="method.K"):
        theory_table(config, eps=0.01, sigma2=2.0)


def test_cli_prints_t_star_with_comm():
    args = ["theory", *sum((["--set", s] for s in SMALL + COMM), [])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "shadowheart: t*=" in result.output and "workers active" in result.output
    rows = [line.split(" ")[0] for line in result.output.splitlines()]
    assert "shadowheart_sgd" in rows and "qsgd" in rows
