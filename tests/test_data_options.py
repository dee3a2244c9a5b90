"""Data conveniences: zero-based svmlight files (scikit-learn's default) and problem.scale."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from asyncopt_mpi.errors import ConfigError, DataError
from asyncopt_mpi.problems.data import load_dataset
from asyncopt_mpi.problems.scaling import scale_features

from conftest import attrs, run_cli

# What sklearn.datasets.dump_svmlight_file(X, y, f) writes by default (zero_based=True), by hand.
ZERO_BASED = "1 0:1.5 2:1\n0 1:2 3:0.5\n1 0:0.5 3:1\n0 2:1\n"
DENSE = np.array([[1.5, 0, 1, 0], [0, 2, 0, 0.5], [0.5, 0, 0, 1], [0, 0, 1, 0]])


def dense(X) -> np.ndarray:
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def test_a_zero_based_file_loads_and_says_so(tmp_path, caplog):
    path = tmp_path / "sk.svm"
    path.write_text(ZERO_BASED)
    with caplog.at_level(logging.INFO, logger="asyncopt"):
        X, y = load_dataset(str(path))
    np.testing.assert_array_equal(dense(X), DENSE)
    assert y.tolist() == [1, 0, 1, 0]
    assert "read as zero-based (an index 0 occurs" in caplog.text


def test_a_one_based_file_stays_one_based_and_the_choice_can_be_forced(tmp_path, caplog):
    path = tmp_path / "libsvm.txt"
    path.write_text("1 1:1.5 3:1\n0 2:2 4:0.5\n")
    with caplog.at_level(logging.INFO, logger="asyncopt"):
        X, _ = load_dataset(str(path))
    assert X.shape == (2, 4) and "read as one-based (no index 0 occurs" in caplog.text
    X, _ = load_dataset(str(path), zero_based=True)  # the same text read as 0-based has a fifth column
    assert X.shape == (2, 5) and dense(X)[0, 1] == 1.5
    zero = tmp_path / "zero.svm"
    zero.write_text(ZERO_BASED)
    with pytest.raises(DataError, match=r"zero.svm:1: feature index 0 is not >= 1 .*problem.zero_based = true"):
        load_dataset(str(zero), zero_based=False)


def test_a_zero_based_file_runs_and_the_cli_says_which_was_assumed(tmp_path):
    data, output = tmp_path / "sk.svm", tmp_path / "run.h5"
    data.write_text(ZERO_BASED * 10)
    done = run_cli(["run", "--backend", "sim", "--output", str(output), "--set", "problem.name=logistic",
                    "--set", f"problem.data={data}", "--set", "problem.scale=standard", "--set", "workers.n=2",
                    "--set", "stop.iterations=20"])
    assert done.returncode == 0, done.stderr
    assert "LIBSVM feature indices read as zero-based" in done.stderr
    assert "problem.scale = standard" in done.stderr
    assert 'scale = "standard"' in attrs(output)["config"]
    done = run_cli(["run", "--backend", "sim", "--output", str(tmp_path / "x.h5"), "--set", "problem.name=logistic",
                    "--set", f"problem.data={data}", "--set", "problem.zero_based=maybe", "--set", "workers.n=2",
                    "--set", "stop.iterations=5"])
    assert done.returncode == 2 and "problem.zero_based" in done.stderr and "Traceback" not in done.stderr


def test_scalings():
    X = np.array([[1.0, -4.0, 0.0], [3.0, 2.0, 0.0]])
    maxabs = scale_features(X, "maxabs")
    np.testing.assert_allclose(maxabs, [[1 / 3, -1.0, 0.0], [1.0, 0.5, 0.0]])
    standard = scale_features(X, "standard")
    np.testing.assert_allclose(standard.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(standard.std(axis=0), [1.0, 1.0, 0.0])  # a constant column stays
    import scipy.sparse as sp

    sparse = scale_features(sp.csr_matrix(X), "standard")
    assert sp.issparse(sparse)
    np.testing.assert_allclose(dense(sparse).std(axis=0), [1.0, 1.0, 0.0])  # divided, not centred
    with pytest.raises(ConfigError, match="problem.scale"):
        scale_features(X, "minmax")
