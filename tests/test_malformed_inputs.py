"""Property tests: generated malformed configs and data files end in one clean error, never a crash or hang."""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncopt_mpi.config import SECTIONS
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError, DataError
from asyncopt_mpi.problems import make_problem
from asyncopt_mpi.problems.data import load_dataset, save_idx

KEYS = {
    "problem": ["name", "dim", "samples", "noise", "noise_type", "data", "seed", "L", "lam", "l2", "classes", "bias"],
    "method": ["name", "lr", "batch", "assign", "R", "S", "sigma2", "eps", "max_delay", "delay_adaptive"],
    "workers": ["n", "compute", "compute_scale", "compute_times", "comm", "data_split", "dead_after", "slowdown", "seed"],
    "stop": ["time", "iterations", "gradients", "target", "grace"],
    "output": ["path", "snapshot_every"],
    "bogus": ["x"],
}
scalars = st.one_of(
    st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.sampled_from(["quadratic", "logistic", "async_sgd", "rennala_sgd", "sqrt", "iid", "by_label", "", "x"]),
    st.text(max_size=8),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.lists(st.lists(scalars, max_size=4), max_size=3))


@st.composite
def overrides(draw) -> list[str]:
    items = []
    for _ in range(draw(st.integers(1, 6))):
        section = draw(st.sampled_from(sorted(KEYS)))
        key = draw(st.sampled_from(KEYS[section]))
        items.append(f"{section}.{key}={_toml(draw(values))}")
    return items


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else "-inf" if value == -float("inf") else repr(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if value.isprintable() else "x"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides())
def test_generated_configs_load_or_raise_one_config_error(items):
    try:
        config = load_config(None, items + ["stop.time=1"], backend="sim")
    except ConfigError as error:
        text = str(error)
        assert text and "\n" not in text and "Traceback" not in text
        return
    assert set(SECTIONS) >= {"problem", "method", "workers", "stop", "output"}
    assert config.stop.time is not None and config.stop.time >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides())
def test_generated_configs_build_a_problem_or_raise_a_user_error(items):
    try:
        config = load_config(None, items + ["stop.time=1", "problem.dim=5", "problem.samples=20"], backend="sim")
        make_problem(config.problem)
    except (ConfigError, DataError) as error:
        assert "\n" not in str(error)


def _write(folder: str, name: str, content: bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def _valid_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.arange(12.0).reshape(4, 3), y=np.array([0, 1, 0, 1]))
    return buffer.getvalue()


def _valid_idx(folder: str) -> bytes:
    path = os.path.join(folder, "valid-images-idx3-ubyte")
    save_idx(path, np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))
    with open(path, "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("kind", ["npz", "idx", "h5"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_binary_files_raise_data_error(kind, data):
    with tempfile.TemporaryDirectory() as folder:
        if kind == "npz":
            original = _valid_npz()
        elif kind == "idx":
            original = _valid_idx(folder)
        else:
            import h5py

            reference = os.path.join(folder, "ref.h5")
            with h5py.File(reference, "w") as handle:
                handle["X"] = np.ones((3, 2))
                handle["y"] = np.array([0.0, 1.0, 1.0])
            with open(reference, "rb") as handle:
                original = handle.read()
        # Truncate, flip bytes, or append garbage.
        cut = data.draw(st.integers(0, len(original)))
        content = bytearray(original[:cut])
        for _ in range(data.draw(st.integers(0, 4))):
            if content:
                position = data.draw(st.integers(0, len(content) - 1))
                content[position] = data.draw(st.integers(0, 255))
        content += data.draw(st.binary(max_size=16))
        name = {"npz": "data.npz", "idx": "train-images-idx3-ubyte", "h5": "data.h5"}[kind]
        path = _write(folder, name, bytes(content))
        if kind == "idx":
            save_idx(os.path.join(folder, "train-labels-idx1-ubyte"), np.array([0, 1], dtype=np.uint8))
        try:
            X, y = load_dataset(path)
        except DataError as error:
            assert name in str(error) and "\n" not in str(error)
        else:
            assert X.shape[0] == y.shape[0] > 0
