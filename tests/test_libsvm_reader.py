"""The LIBSVM reader: the built-in one and scikit-learn's (the `sklearn` extra) give the same matrix, labels and
one-line errors, and the memory guard budgets each by what it was measured to need."""

from __future__ import annotations

import gzip
import importlib.util
import logging
import subprocess
import sys

import numpy as np
import pytest

from asyncopt_mpi.errors import DataError
from asyncopt_mpi.memory import TEXT_EXPANSION
from asyncopt_mpi.problems import data
from asyncopt_mpi.problems.data import load_libsvm

SKLEARN = importlib.util.find_spec("sklearn") is not None
needs_sklearn = pytest.mark.skipif(not SKLEARN, reason="scikit-learn is not installed (pip install asyncopt-mpi[sklearn])")
READERS = ["built-in", pytest.param("sklearn", marks=needs_sklearn)]


@pytest.fixture
def reader(request, monkeypatch) -> str:
    """Which reader load_libsvm uses, set by the text size from which scikit-learn reads."""
    monkeypatch.setattr(data, "SKLEARN_FROM_BYTES", 0 if request.param == "sklearn" else 2**62)
    return request.param


# (text, zero_based setting, n_features, the dense matrix, the labels)
SAME = {
    "one-based, comments, empty lines, CRLF": (
        "# a header comment\n\n1 1:1.5 3:-2e-3  # a comment\r\n\n-1 2:4\t4:0.25\n0\n   \n+1 4:1e3 # end\n",
        "auto", None, [[1.5, 0, -0.002, 0], [0, 4, 0, 0.25], [0, 0, 0, 0], [0, 0, 0, 1000]], [1, -1, 0, 1],
    ),
    "zero-based, found by an index 0": (
        "1 0:1.5 2:1\n0 1:2 3:0.5\n# only a comment\n1 0:0.5 3:1\n", "auto", None,
        [[1.5, 0, 1, 0], [0, 2, 0, 0.5], [0.5, 0, 0, 1]], [1, 0, 1],
    ),
    "zero-based by setting, no index 0": ("2 1:1\n3 2:2\n", True, None, [[0, 1, 0], [0, 0, 2]], [2, 3]),
    "one-based, padded to n_features": ("1 2:1\n0 1:3\n", False, 4, [[0, 1, 0, 0], [3, 0, 0, 0]], [1, 0]),
}


@pytest.mark.parametrize("reader", READERS, indirect=True)
@pytest.mark.parametrize("case", SAME)
def test_both_readers_give_the_same_matrix_and_say_the_index_base_once(tmp_path, reader, case, caplog):
    text, zero_based, n_features, dense, labels = SAME[case]
    path = tmp_path / "data.svm"
    path.write_bytes(text.encode())
    with caplog.at_level(logging.INFO, logger="asyncopt"):
        X, y = load_libsvm(str(path), n_features=n_features, zero_based=zero_based)
    assert X.format == "csr" and X.dtype == np.float64 and X.indices.dtype == np.int32 and X.has_sorted_indices
    np.testing.assert_array_equal(X.toarray(), np.array(dense, dtype=float))
    assert y.dtype == np.float64 and y.tolist() == labels
    assert len([r for r in caplog.records if "feature indices read as" in r.getMessage()]) == (zero_based == "auto")


@pytest.mark.parametrize("reader", READERS, indirect=True)
def test_both_readers_read_gzip_by_its_content(tmp_path, reader):
    path = tmp_path / "data.txt"  # no .gz in the name: the content says gzip
    path.write_bytes(gzip.compress(b"1 1:2 3:1\n-1 2:5\n"))
    X, y = load_libsvm(str(path))
    np.testing.assert_array_equal(X.toarray(), [[2, 0, 1], [0, 5, 0]])
    assert y.tolist() == [1, -1]


# (bytes, zero_based setting, the error after "PATH")
MALFORMED = {
    "a value that is no number": (b"1 1:1\n\n1 2:x\n", "auto", ":3: feature value 'x' is not a number"),
    "indices that do not increase": (b"1 3:1 2:1\n", "auto", ":1: feature index 2 follows 3 (indices must increase)"),
    "a query id": (b"1 qid:3 1:1\n", "auto", ":1: feature index 'qid' is not an integer"),
    "a label that is not finite": (b"1 1:1\nnan 1:1\n", "auto", ":2: label 'nan' is not a finite number"),
    "a value that is not finite": (b"1 1:inf\n", "auto", ":1: feature value 'inf' is not a finite number"),
    "an index 0 read as one-based": (b"1 1:1\n1 0:1\n", False, ":2: feature index 0 is not >= 1"),
    "a negative index": (b"1 1:1\n1 -1:1\n", "auto", ":2: feature index -1 is not >= 1"),
    "an index beyond int32": (b"1 4294967296:1\n", "auto", ":1: feature index 4294967296 exceeds the number of features 2147483647"),
    "a token without a colon": (b"1 1:1 7\n", "auto", ":1: feature '7' is not idx:value"),
    "bytes that are not UTF-8": (b"1 1:1 # caf\xe9\n", "auto", ": not a text file (byte 11 is not UTF-8)"),
    "comments only": (b"# nothing\n\n", "auto", ": no samples found"),
}


@pytest.mark.parametrize("reader", READERS, indirect=True)
@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_file_gives_the_same_one_line_error_with_either_reader(tmp_path, reader, case):
    raw, zero_based, error = MALFORMED[case]
    path = tmp_path / "bad.svm"
    path.write_bytes(raw)
    with pytest.raises(DataError) as caught:
        load_libsvm(str(path), zero_based=zero_based)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}{error}"), message


def text_of(rows: int) -> bytes:
    return b"".join(b"%d 1:0.5 2:-1.25 7:3\n" % (i % 2) for i in range(rows))


def test_the_guard_refuses_text_that_needs_more_than_the_budget_with_the_installed_reader(tmp_path):
    path = tmp_path / "data.svm"
    path.write_bytes(text_of(200))
    size = path.stat().st_size
    with pytest.raises(DataError, match=r"of LIBSVM text needs about .* of memory, more than"):
        load_libsvm(str(path), limit=size * data.SKLEARN_TEXT_EXPANSION - 1)


@pytest.mark.skipif(SKLEARN, reason="scikit-learn is installed: it reads what the built-in reader cannot hold")
def test_without_sklearn_the_guard_budgets_the_built_in_readers_need(tmp_path):
    path = tmp_path / "data.svm"
    path.write_bytes(text_of(200))
    with pytest.raises(DataError, match=r"needs about .* of memory"):
        load_libsvm(str(path), limit=path.stat().st_size * TEXT_EXPANSION - 1)


@needs_sklearn
def test_sklearn_reads_text_the_built_in_reader_cannot_hold_and_names_why_it_refuses_one(tmp_path):
    """Budgeted at SKLEARN_TEXT_EXPANSION bytes per byte (3.7 measured) instead of the built-in's 16, whatever
    SKLEARN_FROM_BYTES says; a malformed text of that size gets scikit-learn's reason in one line."""
    assert data.SKLEARN_TEXT_EXPANSION < TEXT_EXPANSION
    path = tmp_path / "data.svm"
    path.write_bytes(text_of(200))
    limit = path.stat().st_size * TEXT_EXPANSION - 1
    X, y = load_libsvm(str(path), limit=limit)
    assert X.shape == (200, 7) and X.nnz == 600 and y.sum() == 100
    path.write_bytes(text_of(200) + b"1 2:1 1:1\n")
    with pytest.raises(DataError) as caught:
        load_libsvm(str(path), limit=limit)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and "sorted and unique" in message
    assert "scikit-learn's reader" in message and "more than the built-in reader" in message


@needs_sklearn
@pytest.mark.timeout(120)
def test_sklearn_is_imported_only_for_text_from_sklearn_from_bytes_on(tmp_path):
    """Importing scikit-learn costs about 1.5 s per process: text below SKLEARN_FROM_BYTES (here set to 1,000
    bytes, 16 MiB by default) is read by the built-in reader, text from there on by scikit-learn's."""
    small, large = tmp_path / "small.svm", tmp_path / "large.svm"
    small.write_bytes(text_of(10))  # 200 bytes
    large.write_bytes(text_of(50))  # 1,000 bytes
    script = ("import sys\nfrom asyncopt_mpi.problems import data\ndata.SKLEARN_FROM_BYTES = 1000\n"
              f"print(data.load_libsvm({str(small)!r})[0].shape[0], 'sklearn' in sys.modules)\n"
              f"print(data.load_libsvm({str(large)!r})[0].shape[0], 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["10", "False", "50", "True"]
