"""Tests for the data loaders: round trips, and a DataError naming file and line for every malformed input."""

from __future__ import annotations

import gzip
import os
import tempfile

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncopt_mpi.errors import DataError
from asyncopt_mpi.problems.data import (
    detect_format,
    load_dataset,
    load_idx,
    load_idx_dataset,
    load_libsvm,
    save_idx,
    save_libsvm,
    save_npz,
    synthetic_classification,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 5))
    X[rng.random((7, 5)) < 0.4] = 0.0
    X[3] = 0.0  # a row without features
    return X, np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0])


def as_dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else X


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["d.txt", "d.svm.gz"])
@pytest.mark.parametrize("sparse", [False, True])
def test_libsvm_round_trip(tmp_path, sample, name, sparse):
    X, y = sample
    path = str(tmp_path / name)
    save_libsvm(path, sp.csr_matrix(X) if sparse else X, y)
    X2, y2 = load_dataset(path)
    assert sp.isspmatrix_csr(X2) and X2.dtype == np.float64
    np.testing.assert_array_equal(as_dense(X2)[:, : X.shape[1]], X)  # exact: floats are written round-trip
    np.testing.assert_array_equal(y2, y)


def test_libsvm_columns_follow_n_features(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1 2:0.5\n-1 1:1 3:2\n")
    assert load_libsvm(str(path))[0].shape == (2, 3)
    X, _ = load_libsvm(str(path), n_features=10)
    assert X.shape == (2, 10)
    np.testing.assert_array_equal(X.toarray()[:, :3], [[0, 0.5, 0], [1, 0, 2]])


def test_libsvm_comments_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes(b"# header\r\n\r\n+1 1:0.5 4:2 # trailing\r\n  \n0 2:-1e-3\r\n")
    X, y = load_libsvm(str(path))
    np.testing.assert_array_equal(y, [1, 0])
    np.testing.assert_array_equal(X.toarray(), [[0.5, 0, 0, 2], [0, -1e-3, 0, 0]])


@pytest.mark.parametrize("sparse", [False, True])
def test_npz_round_trip(tmp_path, sample, sparse):
    X, y = sample
    path = str(tmp_path / "d.npz")
    save_npz(path, sp.csr_matrix(X) if sparse else X, y)
    X2, y2 = load_dataset(path)
    assert sp.issparse(X2) == sparse
    np.testing.assert_array_equal(as_dense(X2), X)
    np.testing.assert_array_equal(y2, y)
    assert as_dense(load_dataset(path, n_features=8)[0]).shape == (7, 8)


@pytest.mark.parametrize("keys", [("X", "y"), ("x", "y"), ("data", "labels")])
def test_npz_accepts_each_key_pair(tmp_path, sample, keys):
    X, y = sample
    path = str(tmp_path / "d.npz")
    np.savez(path, **{keys[0]: X.astype(np.float32), keys[1]: y.astype(np.int8).reshape(-1, 1)})
    X2, y2 = load_dataset(path)
    np.testing.assert_allclose(X2, X, rtol=1e-7)
    np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize("sparse", [False, True])
def test_h5_round_trip(tmp_path, sample, sparse):
    X, y = sample
    path = str(tmp_path / "d.h5")
    with h5py.File(path, "w") as handle:
        if sparse:
            csr = sp.csr_matrix(X)
            for key in ("data", "indices", "indptr"):
                handle[key] = getattr(csr, key)
            handle["shape"] = np.array(csr.shape)
        else:
            handle["X"] = X
        handle["y"] = y
    X2, y2 = load_dataset(path)
    np.testing.assert_array_equal(as_dense(X2), X)
    np.testing.assert_array_equal(y2, y)


def write_mnist(folder, n=5, gz=False, images_name="train-images-idx3-ubyte", labels_name="train-labels-idx1-ubyte"):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    save_idx(os.path.join(folder, images_name + suffix), images)
    save_idx(os.path.join(folder, labels_name + suffix), labels)
    return os.path.join(folder, images_name + suffix), os.path.join(folder, labels_name + suffix), images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dataset_finds_labels_by_mnist_naming(tmp_path, gz):
    images_path, _, images, labels = write_mnist(str(tmp_path), gz=gz)
    X, y = load_dataset(images_path)
    assert X.shape == (5, 12) and X.min() >= 0 and X.max() <= 1
    np.testing.assert_allclose(X * 255, images.reshape(5, -1))
    np.testing.assert_array_equal(y, labels)


def test_idx_dataset_with_explicit_label_path(tmp_path):
    images_path, labels_path, images, labels = write_mnist(
        str(tmp_path), images_name="pics.idx3-ubyte", labels_name="targets.idx1-ubyte"
    )
    X, y = load_idx_dataset(f"{images_path}:{labels_path}")
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(DataError, match="pics.idx3-ubyte: cannot find its labels file"):
        load_idx_dataset(images_path)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_supports_every_type(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = str(tmp_path / "a.idx")
    save_idx(path, array)
    loaded = load_idx(path)
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_detect_format():
    assert detect_format("a/b.npz") == "npz"
    assert detect_format("b.H5") == "h5" and detect_format("b.hdf5") == "h5"
    assert detect_format("t10k-images-idx3-ubyte.gz") == "idx"
    assert detect_format("x-ubyte") == "idx"
    assert detect_format("idx/a9a") == "libsvm"  # only the file name counts
    assert detect_format("a9a.txt.gz") == "libsvm"


def test_synthetic_classification_is_seeded_and_labelled():
    X, y = synthetic_classification(200, 10, classes=2, seed=3)
    X2, y2 = synthetic_classification(200, 10, classes=2, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert np.mean(np.sum(X**2, axis=1)) == pytest.approx(1.0, rel=0.1)
    _, y3 = synthetic_classification(200, 10, classes=4, seed=3)
    assert set(np.unique(y3)) == {0.0, 1.0, 2.0, 3.0}


# ---------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("1 1:2\n-1 x3:1\n", ":2:", "feature index 'x3' is not an integer (expected idx:value with idx >= 1)"),
        ("1 1:2 3:abc\n", ":1:", "feature value 'abc' is not a number"),
        ("1 1:2\n\nabc 1:2\n", ":3:", "label 'abc' is not a number"),
        ("1 3:1 2:1\n", ":1:", "feature index 2 follows 3 (indices must increase)"),
        ("1 2:1 2:1\n", ":1:", "feature index 2 follows 2"),
        ("1 1:1\n1 0:1\n1 -1:1\n", ":3:", "feature index -1 is not >= 0"),  # an index 0: read as zero-based
        ("1 -4:1\n", ":1:", "feature index -4 is not >= 1"),
        ("1 1:2 3\n", ":1:", "feature '3' is not idx:value"),
        ("1 1:2 3:\n", ":1:", "feature '3:' is not idx:value"),
        ("1 1:2:3 4\n", ":1:", "feature '1:2:3' is not idx:value"),
        ("1 1:nan\n", ":1:", "feature value 'nan' is not a finite number"),
        ("inf 1:1\n", ":1:", "label 'inf' is not a finite number"),
        ("1 99999999999999999999:1\n", ":1:", "out of range"),
        ("1 1:1.5e3 2.0:1\n", ":1:", "feature index '2.0' is not an integer"),
    ],
)
def test_malformed_libsvm_names_file_and_line(tmp_path, text, where, what):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        load_dataset(str(path))
    message = str(error.value)
    assert message.startswith(str(path) + where)
    assert what in message
    assert "\n" not in message


def test_libsvm_index_beyond_n_features(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 1:1\n1 5:1\n")
    with pytest.raises(DataError, match=r"bad.txt:2: feature index 5 exceeds the number of features 4"):
        load_libsvm(str(path), n_features=4)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# only a comment\n"])
def test_empty_libsvm(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"empty.txt: no samples found"):
        load_dataset(str(path))


def test_binary_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(DataError, match="blob.txt: not a text file"):
        load_dataset(str(path))
    gz = tmp_path / "broken.txt.gz"
    gz.write_bytes(gzip.compress(b"1 1:1\n")[:-6])
    with pytest.raises(DataError, match="broken.txt.gz: not a valid gzip file"):
        load_dataset(str(gz))


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes() + array.tobytes()


def test_truncated_idx(tmp_path):
    path = tmp_path / "t-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08)[:-5])
    with pytest.raises(DataError, match=r"t-images-idx3-ubyte: file truncated: expected 12 bytes of data, found 7"):
        load_idx(str(path))


def test_idx_header_cut_short(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08)[:9])
    with pytest.raises(DataError, match=r"short.idx: file truncated: dimension 1 size missing"):
        load_idx(str(path))
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=r"short.idx: file truncated: magic number"):
        load_idx(str(path))


@pytest.mark.parametrize("magic", [b"\x00\x01\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04"])
def test_idx_wrong_magic(tmp_path, magic):
    path = tmp_path / "m.idx"
    path.write_bytes(magic + np.array([1], ">u4").tobytes() + b"\x00")
    with pytest.raises(DataError, match=r"m.idx: bad magic number 0x"):
        load_idx(str(path))


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8), 0x08) + b"\x00\x00")
    with pytest.raises(DataError, match=r"long.idx: 2 bytes after the data"):
        load_idx(str(path))


def test_idx_image_and_label_counts_must_match(tmp_path):
    save_idx(str(tmp_path / "a-images-idx3-ubyte"), np.zeros((3, 2, 2), np.uint8))
    save_idx(str(tmp_path / "a-labels-idx1-ubyte"), np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3 images but .*a-labels-idx1-ubyte has 4 labels"):
        load_dataset(str(tmp_path / "a-images-idx3-ubyte"))


def test_npz_with_wrong_keys(tmp_path):
    path = str(tmp_path / "w.npz")
    np.savez(path, features=np.zeros((2, 2)), target=np.zeros(2))
    with pytest.raises(DataError) as error:
        load_dataset(path)
    message = str(error.value)
    assert message.startswith(path) and "keys: features, target" in message and "X and y" in message


@pytest.mark.parametrize(
    "arrays, what",
    [
        ({"X": np.zeros((3, 2)), "y": np.zeros(2)}, "3 samples in the features but 2 labels"),
        ({"X": np.zeros(3), "y": np.zeros(3)}, "'X' must be 2-D"),
        ({"X": np.array([["a", "b"]]), "y": np.zeros(1)}, "'X' has dtype <U1, expected numbers"),
        ({"X": np.full((1, 1), np.nan), "y": np.zeros(1)}, "'X' contains nan or inf"),
        ({"data": np.ones(2), "indices": np.array([0, 5]), "indptr": np.array([0, 1, 2]),
          "shape": np.array([2, 3]), "y": np.zeros(2)}, "CSR arrays"),
    ],
)
def test_inconsistent_npz(tmp_path, arrays, what):
    path = str(tmp_path / "i.npz")
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=f"^{path}: .*" + what.replace("(", r"\(")):
        load_dataset(path)


def test_h5_with_wrong_keys(tmp_path):
    path = str(tmp_path / "w.h5")
    with h5py.File(path, "w") as handle:
        handle["features"] = np.zeros((2, 2))
    with pytest.raises(DataError, match=r"w.h5: no feature/label arrays found \(keys: features\)"):
        load_dataset(path)


@pytest.mark.parametrize("name", ["junk.npz", "junk.h5"])
def test_corrupt_binary_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not an archive")
    with pytest.raises(DataError, match=name):
        load_dataset(str(path))


@pytest.mark.parametrize("name", ["none.txt", "none.npz", "none.h5", "none-images-idx3-ubyte", "a.idx:b.idx"])
def test_missing_files(tmp_path, name):
    path = str(tmp_path / name)
    with pytest.raises(DataError, match="data file not found: "):
        load_dataset(path)


# ---------------------------------------------------------------------------- property


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(),
    st.text(alphabet=" \t\n#:.-+0123456789eEnaif", max_size=80),
    st.binary(max_size=60),
))
def test_any_text_file_loads_or_raises_data_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "any.txt")
        with open(path, "wb") as handle:
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
        try:
            X, y = load_dataset(path)
        except DataError as error:
            assert str(error).startswith(path) and "\n" not in str(error)
        else:
            assert sp.isspmatrix_csr(X) and X.shape[0] == y.shape[0] > 0
            assert np.all(np.isfinite(X.data)) and np.all(np.isfinite(y))
