"""Where a problem's data comes from: LIBSVM/svmlight text, MNIST IDX, .npz and .h5 files, or a seeded synthetic set.

Nothing here downloads. Every problem with a file (missing, malformed, inconsistent)
raises DataError with one line naming the file and, for text, the line number.
Features come back as a float64 ndarray or a scipy.sparse CSR matrix; labels as a
1-D float64 array of the raw label values (problems map them to classes).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import DataError

Features = np.ndarray | sp.csr_matrix

FORMATS = ("auto", "h5", "idx", "libsvm", "npz")

# CSR column indices are stored as int32 where possible; larger indices are a file error.
MAX_FEATURE_INDEX = 2**31 - 1


# ---------------------------------------------------------------------------- dispatch


def detect_format(path: str) -> str:
    """The format implied by a file name: npz, h5, idx (MNIST naming) or libsvm (anything else)."""
    name = os.path.basename(path).lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if "idx" in name or name.endswith(("-ubyte", "-ubyte.gz")):
        return "idx"
    return "libsvm"


def load_dataset(path: str, fmt: str = "auto", n_features: int | None = None) -> tuple[Features, np.ndarray]:
    """Features X and raw labels y from a data file.

    `fmt` "auto" picks the format from the name (see detect_format). For IDX, `path` is
    the images file (labels are found next to it) or "IMAGES:LABELS" (see load_idx_dataset).
    With `n_features`, X gets exactly that many columns: missing ones are zero, a file
    with more features is an error.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; accepted: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "libsvm":
        return load_libsvm(path, n_features)
    if fmt == "idx":
        X, y = load_idx_dataset(path)
    elif fmt == "npz":
        X, y = load_npz(path)
    else:
        X, y = load_h5(path)
    return _fit_columns(path, X, n_features), y


def _fit_columns(path: str, X: Features, n_features: int | None) -> Features:
    """Pad X with zero columns up to n_features; more columns than that is a DataError."""
    if n_features is None or X.shape[1] == n_features:
        return X
    if X.shape[1] > n_features:
        raise DataError(f"{path}: has {X.shape[1]} features, more than the expected {n_features}")
    if sp.issparse(X):
        return sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    return np.hstack([X, np.zeros((X.shape[0], n_features - X.shape[1]))])


def _read_bytes(path: str) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from None
    return raw


# ---------------------------------------------------------------------------- LIBSVM text


def load_libsvm(path: str, n_features: int | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Read LIBSVM/svmlight text ("label idx:value ...", 1-based increasing indices) into CSR.

    '#' starts a comment, blank lines are skipped, gzip is detected from the content.
    Columns: n_features if given (an index beyond it is an error), else the largest index.
    """
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None

    # One pass over lines collects tokens as strings; numbers are converted in bulk below.
    line_numbers: list[int] = []
    label_tokens: list[str] = []
    index_tokens: list[str] = []
    value_tokens: list[str] = []
    counts: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        features = tokens[1:]
        bad = [t for t in features if t.count(":") != 1 or t[0] == ":" or t[-1] == ":"]
        if bad:
            raise DataError(f"{path}:{lineno}: feature {bad[0]!r} is not idx:value")
        parts = " ".join(features).replace(":", " ").split()  # idx, value, idx, value, ...
        line_numbers.append(lineno)
        label_tokens.append(tokens[0])
        index_tokens.extend(parts[0::2])
        value_tokens.extend(parts[1::2])
        counts.append(len(features))
    if not line_numbers:
        raise DataError(f"{path}: no samples found")

    rows = np.repeat(np.arange(len(counts)), counts)  # row of each feature token
    labels = _to_numbers(path, label_tokens, line_numbers, None, float, "label {!r} is not a number")
    indices = _to_numbers(
        path, index_tokens, line_numbers, rows, int,
        "feature index {!r} is not an integer (expected idx:value with idx >= 1)",
    )
    values = _to_numbers(path, value_tokens, line_numbers, rows, float, "feature value {!r} is not a number")

    def fail(positions: np.ndarray, message: Callable[[int], str], per_row: bool = False) -> None:
        if positions.size:
            first = int(positions[0])
            lineno = line_numbers[first if per_row else rows[first]]
            raise DataError(f"{path}:{lineno}: {message(first)}")

    fail(np.flatnonzero(~np.isfinite(labels)), lambda i: f"label {label_tokens[i]!r} is not a finite number", True)
    fail(np.flatnonzero(~np.isfinite(values)), lambda i: f"feature value {value_tokens[i]!r} is not a finite number")
    fail(np.flatnonzero(indices < 1), lambda i: f"feature index {indices[i]} is not >= 1 (indices are 1-based)")
    limit = MAX_FEATURE_INDEX if n_features is None else n_features
    fail(np.flatnonzero(indices > limit), lambda i: (
        f"feature index {indices[i]} exceeds the number of features {limit}"
    ))
    same_row = rows[1:] == rows[:-1]
    fail(
        np.flatnonzero(same_row & (indices[1:] <= indices[:-1])) + 1,
        lambda i: f"feature index {indices[i]} follows {indices[i - 1]} (indices must increase)",
    )

    n_cols = n_features if n_features is not None else int(indices.max(initial=0))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    X = sp.csr_matrix((values, indices - 1, indptr), shape=(len(counts), n_cols))
    return X, labels


def _to_numbers(
    path: str,
    tokens: list[str],
    line_numbers: list[int],
    rows: np.ndarray | None,
    kind: type,
    message: str,
) -> np.ndarray:
    """Convert tokens in bulk; on failure find the first bad token and report its line."""
    dtype = np.float64 if kind is float else np.int64
    try:
        return np.array(tokens, dtype=dtype)
    except (ValueError, OverflowError):
        pass
    # Slow path only to name the culprit (or accept what numpy's bulk cast refused).
    out = np.empty(len(tokens), dtype=dtype)
    for i, token in enumerate(tokens):
        lineno = line_numbers[i if rows is None else rows[i]]
        try:
            number = kind(token)
        except ValueError:
            raise DataError(f"{path}:{lineno}: {message.format(token)}") from None
        if kind is int and abs(number) > MAX_FEATURE_INDEX:
            raise DataError(f"{path}:{lineno}: feature index {token!r} is out of range (1 to {MAX_FEATURE_INDEX})")
        out[i] = number
    return out


def save_libsvm(path: str, X: Features, y: np.ndarray) -> None:
    """Write X, y as LIBSVM text (nonzeros only, exact round trip; gzip if path ends in .gz)."""
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()  # canonical rows: increasing indices, as the format requires
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    lines = []
    for i in range(X.shape[0]):
        start, end = X.indptr[i], X.indptr[i + 1]
        pairs = (f"{j + 1}:{_number(v)}" for j, v in zip(X.indices[start:end], X.data[start:end]) if v != 0)
        lines.append(" ".join([_number(y[i]), *pairs]))
    text = "\n".join(lines) + "\n"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write(text)


def _number(value: float) -> str:
    """Shortest text that reads back to the same float ("1" for whole numbers)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


# ---------------------------------------------------------------------------- npz / h5

_PAIRS = (("X", "y"), ("x", "y"), ("data", "labels"))
_CSR_KEYS = ("data", "indices", "indptr", "shape")
_ACCEPTED = "X and y, x and y, data and labels, or a CSR matrix as data, indices, indptr, shape plus y"


def load_npz(path: str) -> tuple[Features, np.ndarray]:
    """X, y from a .npz: dense arrays (X/y, x/y, data/labels) or CSR parts data/indices/indptr/shape + y."""
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return _features_and_labels(path, list(archive.keys()), lambda key: archive[key])
    except DataError:
        raise
    except Exception as exc:  # a corrupt archive can fail in zipfile, zlib or numpy's header parser
        raise DataError(f"{path}: not a valid .npz file ({type(exc).__name__}: {exc})") from None


def load_h5(path: str) -> tuple[Features, np.ndarray]:
    """X, y from datasets at the root of an HDF5 file (same keys as load_npz)."""
    import h5py  # only needed for this format

    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None

    def read(key: str) -> np.ndarray:
        node = handle[key]
        if not isinstance(node, h5py.Dataset):
            raise DataError(f"{path}: {key!r} is a group, expected a dataset")
        return node[()]

    # A damaged file can fail anywhere inside HDF5 (h5py raises OSError, RuntimeError, ...).
    with handle:
        try:
            return _features_and_labels(path, list(handle.keys()), read)
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path}: cannot read the arrays ({type(exc).__name__}: {exc})") from None


def _features_and_labels(path: str, keys: list[str], read: Callable[[str], Any]) -> tuple[Features, np.ndarray]:
    """Pick the accepted key set, read it and check shapes (shared by npz and h5)."""
    label_key = next((k for k in ("y", "labels") if k in keys), None)
    if all(k in keys for k in _CSR_KEYS) and label_key is not None:
        try:
            shape = tuple(int(s) for s in np.asarray(read("shape")).ravel())
            if len(shape) != 2 or min(shape) < 0:
                raise ValueError(f"'shape' must be 2 sizes >= 0, got {shape}")
            X = sp.csr_matrix(
                (_numeric(path, "data", read("data")), np.asarray(read("indices")), np.asarray(read("indptr"))),
                shape=shape,
            )
            X.check_format(full_check=True)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{path}: the CSR arrays data, indices, indptr, shape do not fit ({exc})") from None
    else:
        pair = next(((xk, yk) for xk, yk in _PAIRS if xk in keys and yk in keys), None)
        if pair is None:
            found = ", ".join(sorted(keys)) or "none"
            raise DataError(f"{path}: no feature/label arrays found (keys: {found}); accepted: {_ACCEPTED}")
        X = _numeric(path, pair[0], read(pair[0]))
        if X.ndim != 2:
            raise DataError(f"{path}: {pair[0]!r} must be 2-D (samples x features), got shape {X.shape}")
        label_key = pair[1]
    y = _numeric(path, label_key, read(label_key))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"{path}: {label_key!r} must be 1-D (one label per sample), got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{path}: {X.shape[0]} samples in the features but {y.shape[0]} labels")
    return X, y


def _numeric(path: str, key: str, array: Any) -> np.ndarray:
    """array as finite float64, or a DataError naming the key."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key!r} has dtype {array.dtype}, expected numbers")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise DataError(f"{path}: {key!r} contains nan or inf")
    return array


def save_npz(path: str, X: Features, y: np.ndarray) -> None:
    """Write X (dense, or sparse as CSR parts) and y to a compressed .npz at exactly `path`."""
    y = np.asarray(y, dtype=np.float64).ravel()
    with open(path, "wb") as handle:  # a file object keeps numpy from appending ".npz"
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            np.savez_compressed(
                handle, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape), y=y
            )
        else:
            np.savez_compressed(handle, X=np.asarray(X, dtype=np.float64), y=y)


# ---------------------------------------------------------------------------- MNIST IDX

# IDX type byte -> big-endian numpy dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path: str) -> np.ndarray:
    """An array from an IDX file (MNIST format; plain or gzip), in native byte order.

    Header: two zero bytes, a type byte, the number of dimensions, then one big-endian
    uint32 size per dimension; the data must fill the rest of the file exactly.
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: file truncated: magic number needs 4 bytes, found {len(raw)}")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        types = ", ".join(f"0x{t:02X}" for t in _IDX_TYPES)
        raise DataError(
            f"{path}: bad magic number 0x{raw[:4].hex().upper()}; expected 0x0000 then a type byte "
            f"({types}) and the number of dimensions"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        missing = (len(raw) - 4) // 4
        raise DataError(f"{path}: file truncated: dimension {missing} size missing from the header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise DataError(f"{path}: file truncated: expected {expected} bytes of data, found {found}")
    if found > expected:
        raise DataError(f"{path}: {found - expected} bytes after the data the header {shape} describes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def idx_label_path(images: str) -> str:
    """The MNIST labels file next to an images file: "images" -> "labels", "idx3" -> "idx1" in the name."""
    folder, name = os.path.split(images)
    if "images" not in name:
        raise DataError(
            f"{images}: cannot find its labels file: the name has no 'images' to replace by 'labels'; "
            "give data as 'IMAGES:LABELS'"
        )
    return os.path.join(folder, name.replace("images", "labels").replace("idx3", "idx1"))


def load_idx_dataset(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Images flattened to rows (unsigned bytes scaled to [0, 1]) and labels from IDX files.

    `path` is "IMAGES:LABELS" (two paths joined by a colon), or the images file alone, in
    which case the labels file is found by the MNIST naming rule (idx_label_path), e.g.
    train-images-idx3-ubyte -> train-labels-idx1-ubyte (with or without .gz).
    """
    if ":" in path and not os.path.exists(path):
        images, _, labels = path.partition(":")
    else:
        images, labels = path, idx_label_path(path)
    X = load_idx(images)
    y = load_idx(labels)
    if X.ndim < 2:
        raise DataError(f"{images}: images must have at least 2 dimensions, got shape {X.shape}")
    if y.ndim != 1:
        raise DataError(f"{labels}: labels must be 1-D, got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{images}: {X.shape[0]} images but {labels} has {y.shape[0]} labels")
    rows = X.reshape(X.shape[0], -1).astype(np.float64)
    if X.dtype == np.uint8:
        rows /= 255.0  # pixel intensities; other types are left as stored
    return rows, y.astype(np.float64)


def save_idx(path: str, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip if path ends in .gz); the inverse of load_idx."""
    array = np.asarray(array)
    code = next((c for c, t in _IDX_TYPES.items() if np.dtype(t).newbyteorder("=") == array.dtype), None)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_IDX_TYPES[code]).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)


# ---------------------------------------------------------------------------- synthetic


def synthetic_classification(
    n_samples: int, n_features: int, classes: int = 2, seed: int = 0, flip: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, well-conditioned classification set from a random linear teacher.

    Rows are N(0, I/n_features), so ||a_i|| ~ 1 and X^T X / n ~ I / n_features (well
    conditioned when n_samples >> n_features). The teacher is W ~ N(0, I); labels are
    sign(a^T w) in {-1, +1} (two classes) or argmax(a^T W) in 0..classes-1, and a
    fraction `flip` of them is changed to another class, which keeps the set non-separable
    so the loss has a finite minimiser.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) / np.sqrt(n_features)
    flipped = rng.random(n_samples) < flip
    if classes == 2:
        y = np.where(X @ rng.standard_normal(n_features) >= 0, 1.0, -1.0)
        y[flipped] *= -1
        return X, y
    y = np.argmax(X @ rng.standard_normal((n_features, classes)), axis=1)
    # Adding 1..classes-1 modulo classes moves a label to a uniformly random other class.
    y[flipped] = (y[flipped] + rng.integers(1, classes, size=int(flipped.sum()))) % classes
    return X, y.astype(np.float64)
