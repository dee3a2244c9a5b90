"""Tests for the compute and communication time models (asyncopt_mpi.timing.TimingModel)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asyncopt_mpi.config import WorkersConfig
from asyncopt_mpi.errors import ConfigError
from asyncopt_mpi.timing import TimingModel

RANDOM_MODELS = ("uniform", "exponential", "poisson", "normal", "geometric")
SCALE = 0.01


def draws(model: TimingModel, worker: int, n_grads: int, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([model.compute_time(worker, n_grads, rng) for _ in range(count)])


def assert_mean_close(sample: np.ndarray, expected: float, n_se: float = 5.0) -> None:
    """Sample mean within n_se standard errors of the expected value (seeded, so deterministic)."""
    standard_error = sample.std(ddof=1) / math.sqrt(sample.size)
    assert standard_error > 0
    assert abs(sample.mean() - expected) <= n_se * standard_error, (sample.mean(), expected, standard_error)


# ----- deterministic models ----------------------------------------------------------------


@pytest.mark.parametrize("config", [
    WorkersConfig(compute="fixed", compute_scale=SCALE),  # default profile is sqrt
    WorkersConfig(compute="sqrt", compute_scale=SCALE, compute_profile="linear"),  # sqrt forces the profile
])
def test_fixed_and_sqrt_give_scale_sqrt_i_per_gradient(config):
    n = 5
    model = TimingModel(config, n)
    rng = np.random.default_rng(0)
    for worker in range(n):
        s_i = SCALE * math.sqrt(worker + 1)
        for n_grads in (1, 3, 10):
            assert model.compute_time(worker, n_grads, rng) == pytest.approx(s_i * n_grads, rel=1e-12)
    np.testing.assert_allclose(model.expected_compute(), SCALE * np.sqrt(np.arange(1, n + 1)), rtol=1e-12)


@pytest.mark.parametrize("profile, factor", [
    ("equal", lambda i: 1.0),
    ("linear", lambda i: float(i)),
    ("sqrt", math.sqrt),
])
def test_profiles(profile, factor):
    n = 4
    model = TimingModel(WorkersConfig(compute="fixed", compute_profile=profile, compute_scale=0.2), n)
    expected = np.array([0.2 * factor(i) for i in range(1, n + 1)])
    np.testing.assert_allclose(model.expected_compute(), expected, rtol=1e-12)
    rng = np.random.default_rng(0)
    for worker in range(n):
        assert model.compute_time(worker, 2, rng) == pytest.approx(2 * expected[worker], rel=1e-12)


@pytest.mark.parametrize("compute", ["fixed", "sqrt"])
def test_compute_times_override_the_profile(compute):
    times = [0.3, 0.05, 0.7]
    model = TimingModel(WorkersConfig(compute=compute, compute_scale=SCALE, compute_times=times), 3)
    np.testing.assert_allclose(model.expected_compute(), times)
    rng = np.random.default_rng(0)
    for worker, s in enumerate(times):
        assert model.compute_time(worker, 4, rng) == pytest.approx(4 * s, rel=1e-12)


def test_compute_times_of_wrong_length_raise():
    with pytest.raises(ConfigError) as info:
        TimingModel(WorkersConfig(compute_times=[0.1, 0.2]), 3)
    assert "workers.compute_times" in str(info.value)
    assert info.value.exit_code == 2


def test_zero_gradients_take_no_time():
    for compute in ("fixed",) + RANDOM_MODELS:
        model = TimingModel(WorkersConfig(compute=compute, compute_scale=SCALE), 2)
        assert model.compute_time(1, 0, np.random.default_rng(0)) == 0.0


def test_infinite_compute_time_entry_gives_inf():
    for compute in ("fixed",) + RANDOM_MODELS:
        model = TimingModel(WorkersConfig(compute=compute, compute_scale=SCALE, compute_times=[0.02, math.inf]), 2)
        rng = np.random.default_rng(0)
        assert model.compute_time(1, 1, rng) == math.inf, compute
        assert model.compute_time(1, 5, rng) == math.inf, compute
        assert math.isfinite(model.compute_time(0, 5, rng)), compute


# ----- random models -----------------------------------------------------------------------


@pytest.mark.parametrize("compute", RANDOM_MODELS)
def test_random_model_mean_per_gradient_matches_expected_compute(compute):
    model = TimingModel(WorkersConfig(compute=compute, compute_scale=SCALE, compute_p=0.3), 3)
    expected = model.expected_compute()
    assert expected.shape == (3,)
    assert np.all(expected > 0)
    for worker in (0, 2):
        sample = draws(model, worker, 1, 8000, seed=worker)
        assert np.all(sample >= 0)
        assert np.unique(sample).size > 1  # really random
        assert_mean_close(sample, expected[worker])


@pytest.mark.parametrize("compute", RANDOM_MODELS)
def test_random_model_with_compute_times(compute):
    times = [0.05, 0.2]
    model = TimingModel(WorkersConfig(compute=compute, compute_scale=SCALE, compute_times=times), 2)
    expected = model.expected_compute()
    if compute != "normal":  # normal adds one unit and folds, so its mean is not s_i
        np.testing.assert_allclose(expected, times)
    assert expected[1] > expected[0]
    sample = draws(model, 1, 1, 8000, seed=7)
    assert np.all(sample >= 0)
    assert_mean_close(sample, expected[1])


@pytest.mark.parametrize("compute", RANDOM_MODELS)
def test_job_of_b_gradients_has_b_times_the_mean(compute):
    b = 6
    model = TimingModel(WorkersConfig(compute=compute, compute_scale=SCALE), 2)
    one = model.expected_compute()[1]
    sample = draws(model, 1, b, 6000, seed=11)
    assert np.all(sample >= 0)
    assert_mean_close(sample, b * one)


def test_random_draws_are_reproducible_with_the_same_seed():
    model = TimingModel(WorkersConfig(compute="exponential", compute_scale=SCALE), 2)
    np.testing.assert_array_equal(draws(model, 1, 3, 50, seed=5), draws(model, 1, 3, 50, seed=5))
    assert not np.array_equal(draws(model, 1, 3, 50, seed=5), draws(model, 1, 3, 50, seed=6))


def test_uniform_stays_within_its_support():
    model = TimingModel(WorkersConfig(compute="uniform", compute_scale=SCALE, compute_profile="equal"), 1)
    sample = draws(model, 0, 1, 2000)
    assert sample.min() >= 0 and sample.max() <= 2 * SCALE


def test_poisson_counts_in_units_of_compute_scale():
    unit = 0.004
    model = TimingModel(WorkersConfig(compute="poisson", compute_scale=unit, compute_times=[0.03]), 1)
    sample = draws(model, 0, 2, 500)
    np.testing.assert_allclose(sample / unit, np.round(sample / unit), atol=1e-9)


def test_normal_is_at_least_one_unit_per_gradient():
    model = TimingModel(WorkersConfig(compute="normal", compute_scale=SCALE), 2)
    sample = draws(model, 1, 3, 2000)
    assert sample.min() >= 3 * SCALE


def test_normal_with_a_zero_compute_time_matches_expected_compute():
    model = TimingModel(WorkersConfig(compute="normal", compute_scale=SCALE, compute_times=[0.0, 0.02]), 2)
    sample = draws(model, 0, 1, 200)
    assert sample.mean() == pytest.approx(model.expected_compute()[0], rel=1e-9)


@pytest.mark.parametrize("compute", ["poisson", "normal"])
def test_unit_based_models_need_positive_compute_scale(compute):
    with pytest.raises(ConfigError) as info:
        TimingModel(WorkersConfig(compute=compute, compute_scale=0.0, compute_times=[0.1, 0.2]), 2)
    assert info.value.exit_code == 2
    assert "compute_scale" in str(info.value)
    assert compute in str(info.value)


def test_expected_compute_returns_a_copy():
    model = TimingModel(WorkersConfig(compute="fixed", compute_scale=SCALE), 2)
    model.expected_compute()[:] = 123.0
    assert model.expected_compute()[0] == pytest.approx(SCALE)


# ----- communication -----------------------------------------------------------------------


def test_comm_none_is_free_even_with_a_scale():
    model = TimingModel(WorkersConfig(comm="none", comm_scale=0.5, comm_times=[1.0, 2.0]), 2)
    assert model.comm_time(0, 1000) == 0.0
    assert model.comm_time(1, 1000) == 0.0


def test_comm_fixed_uses_comm_scale_per_float():
    model = TimingModel(WorkersConfig(comm="fixed", comm_scale=1e-6), 3)
    for worker in range(3):
        assert model.comm_time(worker, 500) == pytest.approx(500e-6, rel=1e-12)
        assert model.comm_time(worker, 0) == 0.0


def test_comm_fixed_with_comm_times_is_per_worker():
    model = TimingModel(WorkersConfig(comm="fixed", comm_scale=1e-6, comm_times=[1e-3, 2e-3]), 2)
    assert model.comm_time(0, 10) == pytest.approx(1e-2, rel=1e-12)
    assert model.comm_time(1, 10) == pytest.approx(2e-2, rel=1e-12)


def test_comm_sqrt():
    model = TimingModel(WorkersConfig(comm="sqrt", comm_scale=1e-4), 4)
    for worker in range(4):
        assert model.comm_time(worker, 100) == pytest.approx(1e-4 * math.sqrt(worker + 1) * 100, rel=1e-12)


def test_comm_times_of_wrong_length_raise():
    with pytest.raises(ConfigError) as info:
        TimingModel(WorkersConfig(comm="fixed", comm_times=[0.1]), 2)
    assert "workers.comm_times" in str(info.value)


def test_comm_does_not_depend_on_compute_model():
    a = TimingModel(WorkersConfig(compute="exponential", comm="sqrt", comm_scale=1e-3), 2)
    b = TimingModel(WorkersConfig(compute="fixed", comm="sqrt", comm_scale=1e-3), 2)
    assert a.comm_time(1, 7, np.random.default_rng(0)) == b.comm_time(1, 7)


def test_uniform_range_redraws_compute_and_communication_every_job():
    # Shadowheart's "adding more workers": tau, theta ~ U(0.1, 1) per job, the same law for every worker.
    config = WorkersConfig(compute="uniform_range", compute_range=[0.1, 1.0], comm="uniform_range",
                           comm_range=[0.1, 1.0])
    model = TimingModel(config, 3)
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(model.expected_compute(), 0.55)
    np.testing.assert_allclose(model.comm_per_float, 0.55)
    compute = np.array([model.compute_time(2, 4, rng) for _ in range(4000)])
    assert compute.min() >= 0.4 and compute.max() <= 4.0  # 4 gradients of one tau each
    assert_mean_close(compute, 4 * 0.55)
    assert np.std(compute) == pytest.approx(4 * 0.9 / math.sqrt(12), rel=0.1)  # one draw per job, not per gradient
    comm = np.array([model.comm_time(0, 10, rng) for _ in range(4000)])
    assert comm.min() >= 1.0 and comm.max() <= 10.0 and len(set(comm.tolist())) == 4000
    assert_mean_close(comm, 10 * 0.55)
    jobs = np.array([model.job_time(1, 1, 1, 0.0, rng) for _ in range(4000)])
    assert 0.2 <= jobs.min() and jobs.max() <= 2.0 and jobs.std() > 0.2  # compute and comm both random


def test_uniform_range_needs_its_bounds():
    from asyncopt_mpi.validate import load_config

    for key in ("compute", "comm"):
        with pytest.raises(ConfigError, match=f"workers.{key}_range"):
            load_config(None, [f'workers.{key}="uniform_range"', f"workers.{key}_range=[1.0, 0.5]", "stop.time=1"],
                        backend="sim")


def test_the_shadowheart_more_workers_config_runs_with_random_rounds(tmp_path):
    from asyncopt_mpi.validate import load_config
    from asyncopt_mpi.runtime.session import run_sim

    path = tmp_path / "sh.h5"
    config = load_config("jobs/shadowheart_more_workers.toml", ["workers.n=8", "problem.dim=50", "stop.time=1000"],
                         backend="sim", output=str(path))
    assert run_sim(config) == 0
    import h5py

    with h5py.File(path, "r") as handle:
        rounds = np.diff(handle["trace/time"][:])
        busy = handle["workers/busy_time"][:] / np.maximum(handle["workers/jobs"][:], 1)
    assert len(rounds) > 5 and rounds.std() > 0  # round lengths vary: times are redrawn
    assert np.all(busy > 0) and busy.std() > 0
