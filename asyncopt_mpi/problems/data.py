"""Where a problem's data comes from: LIBSVM/svmlight text, MNIST IDX, .npz and .h5 files, or a seeded synthetic set.

Nothing here downloads. Every problem with a file (missing, malformed, inconsistent)
raises DataError with one line naming the file and, for text, the line number (scikit-learn's
reason instead for a malformed text only it can hold within the budget). A FIFO, a
device or a folder is refused before anything is read (asyncopt_mpi.inputs), and a token of
the file that an error line quotes is cut to 200 characters.
Features come back as a float64 ndarray or a scipy.sparse CSR matrix; labels as a
1-D float64 array of the raw label values (problems map them to classes).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import logging
import math
import os
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ..inputs import check_input, clip, npy_header, open_input, shown
from ..memory import TEXT_EXPANSION, VECTORS_PER_RUN, budget, human, limit_text

Features = np.ndarray | sp.csr_matrix
log = logging.getLogger("asyncopt")

FORMATS = ("auto", "h5", "idx", "libsvm", "npz")

# CSR column indices are stored as int32 where possible; larger indices are a file error.
MAX_FEATURE_INDEX = 2**31 - 1


# ---------------------------------------------------------------------------- dispatch


def detect_format(path: str) -> str:
    """The format of a data file, from its first bytes: npz (zip), h5 (HDF5 signature), idx (0x0000,
    a type byte and a dimension count; also inside gzip) or libsvm (anything else).

    A file that cannot be read (or "IMAGES:LABELS") is judged by its name instead: .npz, .h5/.hdf5,
    -ubyte(.gz) for IDX, anything else libsvm. A name that merely contains "idx" says nothing.
    """
    first = path.partition(":")[0] if ":" in path and not os.path.exists(path) else path
    head = _head(first)
    if head is not None:
        return _format_of_head(head)
    name = os.path.basename(first).lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if name.endswith(("-ubyte", "-ubyte.gz")):
        return "idx"
    return "libsvm"


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _format_of_head(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "npz"
    if head.startswith(_HDF5_SIGNATURE):
        return "h5"
    if len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] in _IDX_TYPES and head[3] >= 1:
        return "idx"
    return "libsvm"


def _head(path: str) -> bytes | None:
    """The first 8 bytes of a file (of its content if gzip), or None when it cannot be read (its loader says why)."""
    try:
        with open_input(path, "data file", DataError) as handle:
            head = handle.read(8)
            if head[:2] != b"\x1f\x8b":
                return head
            handle.seek(0)
            with gzip.GzipFile(fileobj=handle) as stream:
                return stream.read(8)
    except (DataError, OSError, EOFError, zlib.error):
        return None


def load_dataset(
    path: str, fmt: str = "auto", n_features: int | None = None, max_memory: int = 0, zero_based: Any = "auto",
) -> tuple[Features, np.ndarray]:
    """Features X and raw labels y from a data file.

    `fmt` "auto" picks the format from the file's first bytes (see detect_format). For IDX,
    `path` is the images file (labels are found next to it) or "IMAGES:LABELS" (see
    load_idx_dataset). With `n_features`, X gets exactly that many columns: missing ones are
    zero, a file with more features is an error. Sizes the file declares (shapes, feature
    indices, inflated gzip) are checked against `max_memory` bytes (0: the default budget of
    asyncopt_mpi.memory) before anything that large is allocated.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; accepted: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    limit = budget(max_memory)
    if fmt == "libsvm":
        return load_libsvm(path, n_features, limit, zero_based)
    if fmt == "idx":
        X, y = load_idx_dataset(path, limit)
    elif fmt == "npz":
        X, y = load_npz(path, limit)
    else:
        X, y = load_h5(path, limit)
    _check_model_size(path, X.shape[1], limit)
    return _fit_columns(path, X, n_features), y


def _check_model_size(path: str, n_features: int, limit: int, subject: str = "") -> None:
    """A model with one coordinate per feature must fit: the run keeps VECTORS_PER_RUN vectors of it."""
    need = 8 * VECTORS_PER_RUN * n_features
    if need > limit:
        subject = subject or f"{path}: {n_features} features make"
        raise DataError(
            f"{subject} a model of {n_features} coordinates whose vectors need about {human(need)}, "
            f"more than {limit_text(limit)}"
        )


def _fit_columns(path: str, X: Features, n_features: int | None) -> Features:
    """Pad X with zero columns up to n_features; more columns than that is a DataError."""
    if n_features is None or X.shape[1] == n_features:
        return X
    if X.shape[1] > n_features:
        raise DataError(f"{path}: has {X.shape[1]} features, more than the expected {n_features}")
    if sp.issparse(X):
        return sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    return np.hstack([X, np.zeros((X.shape[0], n_features - X.shape[1]))])


def _open_data(path: str) -> BinaryIO:
    """The file opened for reading (a gzip stream when it starts with the gzip magic bytes)."""
    handle = open_input(path, "data file", DataError)
    try:
        gzipped = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
    except OSError as exc:
        handle.close()
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    return gzip.GzipFile(fileobj=handle, mode="rb") if gzipped else handle  # type: ignore[return-value]


def _read_stream(path: str, stream: BinaryIO, count: int) -> bytes:
    """Up to `count` bytes of the (possibly gzip) stream; a damaged gzip stream is a DataError."""
    try:
        return stream.read(count)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({clip(str(exc))})") from None


MAX_DEFLATE_RATIO = 1032  # deflate's largest inflation: 258 bytes from each 2 bits, a zero-length distance aside


def _gzip_size(stream: BinaryIO) -> int | None:
    """The inflated size a gzip file's trailer records (modulo 4 GiB), or None for a plain file.

    A quick first check only: a larger or multi-member file is still caught by the capped read.
    A size deflate cannot reach from this many bytes (at most about 1032:1) is no trailer (a
    truncated file's last bytes): None then, and the capped read tells what is wrong.
    """
    if not isinstance(stream, gzip.GzipFile):
        return None
    raw = stream.fileobj
    try:
        compressed = raw.seek(0, os.SEEK_END)
        raw.seek(-4, os.SEEK_END)
        size = int.from_bytes(raw.read(4), "little")
        raw.seek(0)
    except OSError:
        return None
    return size if size <= MAX_DEFLATE_RATIO * compressed else None


def _read_bytes(path: str, limit: int, expansion: int = 1, what: str = "data") -> bytes:
    """The file's content (gunzipped when it starts with the gzip magic bytes), at most limit/expansion bytes.

    `expansion` is the memory the caller needs per byte read; a larger file (or one that
    inflates to more) is refused before it is read (or while it is inflated, never beyond the cap).
    """
    cap = max(1, limit // expansion)
    if os.path.isfile(path) and os.path.getsize(path) > cap:
        raise DataError(
            f"{path}: {human(os.path.getsize(path))} of {what} needs about {human(os.path.getsize(path) * expansion)} "
            f"of memory, more than {limit_text(limit)}"
        )
    handle = _open_data(path)
    with handle:
        inflated = _gzip_size(handle)
        if inflated is not None and inflated > cap:
            raise DataError(
                f"{path}: inflates to {human(inflated)} (gzip) of {what}, which needs about "
                f"{human(inflated * expansion)} of memory, more than {limit_text(limit)}"
            )
        raw = _read_stream(path, handle, cap + 1)
        if len(raw) > cap:
            raise DataError(
                f"{path}: inflates to more than {human(cap)} (gzip) of {what}, which needs more than "
                f"{human(cap * expansion)} of memory; {limit_text(limit)}"
            )
    return raw


# ---------------------------------------------------------------------------- LIBSVM text


# Peak memory per byte of text with scikit-learn's reader (the `sklearn` extra; the text, its arrays
# and the CSR built from them): 3.7, peak RSS growth over file bytes on a 13.4 MB file of 960,000
# nonzeros (scikit-learn 1.9.1), where the built-in reader peaked at 15.7 (TEXT_EXPANSION = 16).
SKLEARN_TEXT_EXPANSION = 4
# Importing scikit-learn costs about 1.5 s of CPU and 100 MB per process (it loads scipy.stats and
# pandas) and parses only a little faster (0.046 against 0.064 s of CPU per MB), so it pays in
# memory only, from about 8 MB of text on (12 bytes per byte saved): it reads text from this size
# on, and text too large for the built-in reader within the budget.
SKLEARN_FROM_BYTES = 16 * 2**20


def load_libsvm(
    path: str, n_features: int | None = None, limit: int | None = None, zero_based: Any = "auto",
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Read LIBSVM/svmlight text ("label idx:value ...", increasing indices) into CSR.

    Indices are 1-based (LIBSVM) or 0-based (scikit-learn's dump_svmlight_file default):
    `zero_based` True/False, or "auto"/None: 0-based when an index 0 occurs (as scikit-learn's
    loader decides); the choice is logged as one line. '#' starts a comment, blank lines are
    skipped, gzip is detected from the content.
    Columns: n_features if given (an index beyond it is an error), else the largest index.
    `limit` (bytes; None: the default budget) bounds the text read and the model the largest index implies.
    Reader: scikit-learn's load_svmlight_file where it is installed and the text is at least
    SKLEARN_FROM_BYTES or too large for the built-in reader, which reads the rest and every text
    scikit-learn refuses or reads otherwise: the same matrix, labels and one-line errors either way.
    """
    limit = budget() if limit is None else limit
    sklearn_installed = importlib.util.find_spec("sklearn") is not None
    raw = _read_bytes(path, limit, SKLEARN_TEXT_EXPANSION if sklearn_installed else TEXT_EXPANSION, "LIBSVM text")
    built_in_fits = len(raw) * TEXT_EXPANSION <= limit
    read = None
    if sklearn_installed and (len(raw) >= SKLEARN_FROM_BYTES or not built_in_fits):
        try:
            read = _parse_with_sklearn(path, raw, n_features, limit, zero_based)
        except _ReadOtherwise as why:
            if not built_in_fits:
                raise DataError(f"{path}: {why} (scikit-learn's reader; {human(len(raw))} of text is more than "
                                "the built-in reader, which names the line, can hold)") from None
    X, labels, zero = read or _parse_libsvm(path, raw, n_features, limit, zero_based)
    if zero_based in (None, "auto"):
        log.info("%s: LIBSVM feature indices read as %s (%s; problem.zero_based = auto)", path,
                 "zero-based" if zero else "one-based", "an index 0 occurs" if zero else "no index 0 occurs")
    return X, labels


class _ReadOtherwise(Exception):
    """scikit-learn's reader refused a text or would read it otherwise than the built-in one; the message says why."""


def _parse_with_sklearn(
    path: str, raw: bytes, n_features: int | None, limit: int, zero_based: Any,
) -> tuple[sp.csr_matrix, np.ndarray, bool]:
    """X, labels and whether indices are 0-based, from scikit-learn's load_svmlight_file (see load_libsvm)."""
    if not raw.isascii():
        _decoded(path, raw)  # the built-in reader's UTF-8 check (scikit-learn reads bytes)
    try:
        from sklearn.datasets import load_svmlight_file  # here: about 1.5 s to import

        # Raw indices (zero_based=True): the base is chosen below, by the project's rule.
        X, labels, query_ids = load_svmlight_file(io.BytesIO(raw), zero_based=True, query_id=True)
    except ImportError as exc:
        raise _ReadOtherwise(f"scikit-learn cannot be imported ({clip(str(exc))})") from None
    except (ValueError, OverflowError) as exc:
        raise _ReadOtherwise(clip(str(exc))) from None
    if query_ids.size:
        raise _ReadOtherwise("a qid: feature, which scikit-learn skips")
    if X.shape[0] == 0:
        raise _ReadOtherwise("no samples found")
    if not (np.isfinite(labels).all() and np.isfinite(X.data).all()):
        raise _ReadOtherwise("a label or feature value is not a finite number")
    indices = X.indices.astype(np.int64)
    zero = _zero_based(indices, zero_based)
    if not zero and np.any(indices == 0):
        raise _ReadOtherwise("feature index 0 in indices read as 1-based")
    indices = indices + 1 if zero else indices  # 1-based from here on, as in _parse_libsvm
    largest_index = int(indices.max(initial=0))
    if largest_index > (MAX_FEATURE_INDEX if n_features is None else n_features):
        raise _ReadOtherwise(f"feature index {largest_index} is beyond the number of features")
    if n_features is None:
        try:
            _check_model_size(path, largest_index, limit, f"feature index {largest_index} makes")
        except DataError as exc:
            raise _ReadOtherwise(str(exc)) from None
    n_cols = n_features if n_features is not None else largest_index
    indptr = X.indptr.astype(np.int64)  # as _parse_libsvm builds it, so that both give one index dtype
    return sp.csr_matrix((X.data, indices - 1, indptr), shape=(X.shape[0], n_cols)), labels, zero


def _decoded(path: str, raw: bytes) -> str:
    """LIBSVM text as a string; bytes that are not UTF-8 are a DataError."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None


def _parse_libsvm(
    path: str, raw: bytes, n_features: int | None, limit: int, zero_based: Any,
) -> tuple[sp.csr_matrix, np.ndarray, bool]:
    """The built-in reader: X, labels and whether indices are 0-based (see load_libsvm)."""
    text = _decoded(path, raw)

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
            raise DataError(f"{path}:{lineno}: feature {shown(bad[0])} is not idx:value")
        parts = " ".join(features).replace(":", " ").split()  # idx, value, idx, value, ...
        line_numbers.append(lineno)
        label_tokens.append(tokens[0])
        index_tokens.extend(parts[0::2])
        value_tokens.extend(parts[1::2])
        counts.append(len(features))
    if not line_numbers:
        raise DataError(f"{path}: no samples found")

    rows = np.repeat(np.arange(len(counts)), counts)  # row of each feature token
    labels = _to_numbers(path, label_tokens, line_numbers, None, float, "label {} is not a number")
    indices = _to_numbers(
        path, index_tokens, line_numbers, rows, int,
        "feature index {} is not an integer (expected idx:value with idx >= 1)",
    )
    values = _to_numbers(path, value_tokens, line_numbers, rows, float, "feature value {} is not a number")

    def fail(positions: np.ndarray, message: Callable[[int], str], per_row: bool = False) -> None:
        if positions.size:
            first = int(positions[0])
            lineno = line_numbers[first if per_row else rows[first]]
            raise DataError(f"{path}:{lineno}: {message(first)}")

    fail(np.flatnonzero(~np.isfinite(labels)), lambda i: f"label {shown(label_tokens[i])} is not a finite number", True)
    fail(np.flatnonzero(~np.isfinite(values)),
         lambda i: f"feature value {shown(value_tokens[i])} is not a finite number")
    zero = _zero_based(indices, zero_based)
    first = 0 if zero else 1
    fail(np.flatnonzero(indices < first), lambda i: (
        f"feature index {indices[i]} is not >= {first} (indices read as {first}-based; "
        f"set problem.zero_based = {'false' if zero else 'true'} if they are not)"
    ))
    indices = indices + 1 if zero else indices  # 1-based from here on
    largest_index = MAX_FEATURE_INDEX if n_features is None else n_features
    fail(np.flatnonzero(indices > largest_index), lambda i: (
        f"feature index {indices[i]} exceeds the number of features {largest_index}"
    ))
    if n_features is None and indices.size:
        at = int(np.argmax(indices))
        subject = f"{path}:{line_numbers[rows[at]]}: feature index {indices[at]} makes"
        _check_model_size(path, int(indices[at]), limit, subject)
    same_row = rows[1:] == rows[:-1]
    fail(
        np.flatnonzero(same_row & (indices[1:] <= indices[:-1])) + 1,
        lambda i: f"feature index {indices[i]} follows {indices[i - 1]} (indices must increase)",
    )

    n_cols = n_features if n_features is not None else int(indices.max(initial=0))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    X = sp.csr_matrix((values, indices - 1, indptr), shape=(len(counts), n_cols))
    return X, labels, zero


def _zero_based(indices: np.ndarray, zero_based: Any) -> bool:
    """Whether a LIBSVM file's indices start at 0 (see load_libsvm; load_libsvm logs the choice "auto" made)."""
    if zero_based in (None, "auto"):
        return bool(np.any(indices == 0))
    if zero_based in (True, "true"):
        return True
    if zero_based in (False, "false"):
        return False
    raise DataError(f"problem.zero_based: {shown(zero_based)} is not accepted; accepted: auto, true, false")


def _to_numbers(
    path: str,
    tokens: list[str],
    line_numbers: list[int],
    rows: np.ndarray | None,
    kind: type,
    message: str,
) -> np.ndarray:
    """Convert tokens in bulk; on failure find the first bad token and report its line (`message` formats it)."""
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
            raise DataError(f"{path}:{lineno}: {message.format(shown(token))}") from None
        if kind is int and abs(number) > MAX_FEATURE_INDEX:
            raise DataError(
                f"{path}:{lineno}: feature index {shown(token)} is out of range (1 to {MAX_FEATURE_INDEX})"
            )
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


class _Sizes:
    """Adds up the memory the arrays read from one file need and refuses one that would exceed the limit."""

    def __init__(self, path: str, limit: int):
        self.path, self.limit, self.total = path, limit, 0

    def admit(self, key: str, shape: tuple[int, ...], itemsize: int) -> None:
        elements = math.prod(int(n) for n in shape)
        need = elements * (itemsize + 8)  # as stored, plus its float64 copy
        self.total += need
        if self.total > self.limit:
            raise DataError(
                f"{self.path}: {key!r} declares shape {clip(str(tuple(int(n) for n in shape)))} "
                f"({human(elements * itemsize)} as stored, about {human(self.total)} in memory with the arrays before it), more than "
                f"{limit_text(self.limit)}"
            )


def _npy_header(archive: Any, key: str) -> tuple[tuple[int, ...], int]:
    """Shape and item size of an .npz member, read from its header without reading its data."""
    member = key + ".npy" if key + ".npy" in archive.zip.namelist() else key
    if not member.endswith(".npy"):
        return (archive.zip.getinfo(member).file_size,), 1  # a raw member is read as bytes
    with archive.zip.open(member) as stream:
        shape, dtype = npy_header(stream)
    return shape, dtype.itemsize


def load_npz(path: str, limit: int | None = None) -> tuple[Features, np.ndarray]:
    """X, y from a .npz: dense arrays (X/y, x/y, data/labels) or CSR parts data/indices/indptr/shape + y.

    Every array's declared shape is checked against `limit` bytes (None: the default budget)
    from its header before it is read.
    """
    sizes = _Sizes(path, budget() if limit is None else limit)
    with open_input(path, "data file", DataError) as handle:
        try:
            with np.load(handle, allow_pickle=False) as archive:
                if not hasattr(archive, "keys"):
                    raise DataError(f"{path}: a single .npy array, not an .npz archive; accepted: {_ACCEPTED}")

                def read(key: str) -> np.ndarray:
                    sizes.admit(key, *_npy_header(archive, key))
                    return archive[key]

                return _features_and_labels(path, list(archive.keys()), read)
        except DataError:
            raise
        except Exception as exc:  # a corrupt archive can fail in zipfile, zlib or numpy's header parser
            raise DataError(f"{path}: not a valid .npz file ({type(exc).__name__}: {clip(str(exc))})") from None


def load_h5(path: str, limit: int | None = None) -> tuple[Features, np.ndarray]:
    """X, y from datasets at the root of an HDF5 file (same keys as load_npz; shapes checked against `limit`)."""
    import h5py  # only needed for this format

    check_input(path, "data file", DataError)
    sizes = _Sizes(path, budget() if limit is None else limit)
    try:
        handle = h5py.File(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({clip(str(exc))})") from None

    def read(key: str) -> np.ndarray:
        node = handle[key]
        if not isinstance(node, h5py.Dataset):
            raise DataError(f"{path}: {key!r} is a group, expected a dataset")
        sizes.admit(key, node.shape or (), node.dtype.itemsize)
        return node[()]

    # A damaged file can fail anywhere inside HDF5 (h5py raises OSError, RuntimeError, ...).
    with handle:
        try:
            return _features_and_labels(path, list(handle.keys()), read)
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path}: cannot read the arrays ({type(exc).__name__}: {clip(str(exc))})") from None


def _features_and_labels(path: str, keys: list[str], read: Callable[[str], Any]) -> tuple[Features, np.ndarray]:
    """Pick the accepted key set, read it and check shapes (shared by npz and h5)."""
    label_key = next((k for k in ("y", "labels") if k in keys), None)
    if all(k in keys for k in _CSR_KEYS) and label_key is not None:
        try:
            shape = tuple(int(s) for s in np.asarray(read("shape")).ravel())
            if len(shape) != 2 or min(shape) < 0:
                raise ValueError(f"'shape' must be 2 sizes >= 0, got {clip(str(shape))}")
            X = sp.csr_matrix(
                (_numeric(path, "data", read("data")), np.asarray(read("indices")), np.asarray(read("indptr"))),
                shape=shape,
            )
            X.check_format(full_check=True)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{path}: the CSR arrays data, indices, indptr, shape do not fit ({clip(str(exc))})"
            ) from None
    else:
        pair = next(((xk, yk) for xk, yk in _PAIRS if xk in keys and yk in keys), None)
        if pair is None:
            found = clip(", ".join(sorted(keys))) or "none"
            raise DataError(f"{path}: no feature/label arrays found (keys: {found}); accepted: {_ACCEPTED}")
        X = _numeric(path, pair[0], read(pair[0]))
        if X.ndim != 2:
            raise DataError(f"{path}: {pair[0]!r} must be 2-D (samples x features), got shape {clip(str(X.shape))}")
        label_key = pair[1]
    y = _numeric(path, label_key, read(label_key))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"{path}: {label_key!r} must be 1-D (one label per sample), got shape {clip(str(y.shape))}")
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
# The header's dimension count is a byte (up to 255); numpy arrays have at most 32 (numpy 1) or 64.
MAX_IDX_DIMENSIONS = 32


def load_idx(path: str, limit: int | None = None) -> np.ndarray:
    """An array from an IDX file (MNIST format; plain or gzip), in native byte order.

    Header: two zero bytes, a type byte, the number of dimensions, then one big-endian
    uint32 size per dimension; the data must fill the rest of the file exactly. The declared
    shape is checked against `limit` bytes (None: the default budget) before the data is read
    or inflated.
    """
    limit = budget() if limit is None else limit
    with _open_data(path) as stream:
        magic = _read_stream(path, stream, 4)
        if len(magic) < 4:
            raise DataError(f"{path}: file truncated: magic number needs 4 bytes, found {len(magic)}")
        if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
            types = ", ".join(f"0x{t:02X}" for t in _IDX_TYPES)
            raise DataError(
                f"{path}: bad magic number 0x{magic.hex().upper()}; expected 0x0000 then a type byte "
                f"({types}) and the number of dimensions"
            )
        ndim = magic[3]
        if ndim > MAX_IDX_DIMENSIONS:
            raise DataError(f"{path}: the IDX header declares {ndim} dimensions, more than the "
                            f"{MAX_IDX_DIMENSIONS} an array may have")
        sizes = _read_stream(path, stream, 4 * ndim)
        if len(sizes) < 4 * ndim:
            raise DataError(f"{path}: file truncated: dimension {len(sizes) // 4} size missing from the header")
        shape = tuple(int(n) for n in np.frombuffer(sizes, dtype=">u4", count=ndim))
        dtype = np.dtype(_IDX_TYPES[magic[2]])
        expected = math.prod(shape) * dtype.itemsize
        _Sizes(path, limit).admit("the IDX header", shape, dtype.itemsize)
        raw = _read_stream(path, stream, expected + 1)
        found = len(raw)
        if found < expected:
            raise DataError(f"{path}: file truncated: expected {expected} bytes of data, found {found}")
        if found > expected:
            extra = 1 + sum(len(chunk) for chunk in _chunks(path, stream, limit))
            raise DataError(f"{path}: {extra} bytes after the data the header {clip(str(shape))} describes")
    try:
        array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape)).reshape(shape)
    except ValueError:  # e.g. (0, 2**32 - 1, 2**32 - 1): no bytes, but numpy cannot index that shape
        raise DataError(f"{path}: the IDX header's shape {clip(str(shape))} cannot be an array") from None
    return array.astype(dtype.newbyteorder("="))


def _chunks(path: str, stream: BinaryIO, limit: int, size: int = 2**20):
    """The rest of a stream in chunks, never more than `limit` bytes in all."""
    total = 0
    while total < limit:
        chunk = _read_stream(path, stream, min(size, limit - total))
        if not chunk:
            return
        total += len(chunk)
        yield chunk


def idx_label_path(images: str) -> str:
    """The MNIST labels file next to an images file: "images" -> "labels", "idx3" -> "idx1" in the name."""
    folder, name = os.path.split(images)
    if "images" not in name:
        raise DataError(
            f"{images}: cannot find its labels file: the name has no 'images' to replace by 'labels'; "
            "give data as 'IMAGES:LABELS'"
        )
    return os.path.join(folder, name.replace("images", "labels").replace("idx3", "idx1"))


def load_idx_dataset(path: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images flattened to rows (unsigned bytes scaled to [0, 1]) and labels from IDX files.

    `path` is "IMAGES:LABELS" (two paths joined by a colon), or the images file alone, in
    which case the labels file is found by the MNIST naming rule (idx_label_path), e.g.
    train-images-idx3-ubyte -> train-labels-idx1-ubyte (with or without .gz). No images,
    or pixels that are nan or inf, are a DataError.
    """
    if ":" in path and not os.path.exists(path):
        images, _, labels = path.partition(":")
    else:
        images, labels = path, idx_label_path(path)
    X = load_idx(images, limit)
    y = load_idx(labels, limit)
    if X.ndim < 2:
        raise DataError(f"{images}: images must have at least 2 dimensions, got shape {clip(str(X.shape))}")
    if y.ndim != 1:
        raise DataError(f"{labels}: labels must be 1-D, got shape {clip(str(y.shape))}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{images}: {X.shape[0]} images but {labels} has {y.shape[0]} labels")
    if X.shape[0] == 0 or X[0].size == 0:
        raise DataError(
            f"{images}: no images (shape {clip(str(X.shape))}); a data set needs at least one image of one pixel"
        )
    rows = X.reshape(X.shape[0], -1).astype(np.float64)
    if not np.isfinite(rows).all():
        raise DataError(f"{images}: pixel values contain nan or inf")
    if not np.isfinite(y).all():
        raise DataError(f"{labels}: labels contain nan or inf")
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
