"""Fuzzing the config reader and the data readers with seeded hostile inputs, in this process.

Over a thousand generated inputs each (random bytes, truncations and byte edits of valid files,
deep nesting, huge declared sizes, long tokens, hostile values): every call either succeeds or
raises the project's user error (exit status 2) with one line under 1000 characters; any other
exception, a traceback's worth of text or a hang fails the test. The counts (inputs, accepted,
refused) are printed, e.g. with `pytest -s tests/test_fuzz_readers.py`.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import zipfile

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from asyncopt_mpi.config import SECTIONS
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import UserError
from asyncopt_mpi.problems.data import load_dataset, save_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 24
MAX_LINE = 1000
DATA_LIMIT = 50 * 10**6  # problem.max_memory for the data readers: declared sizes beyond it are refused


class Tally:
    """Calls one reader on each input; counts what it accepts and refuses, fails on anything else."""

    def __init__(self, what: str):
        self.what, self.accepted, self.refused = what, 0, 0

    def check(self, call, describe: str) -> None:
        try:
            call()
        except UserError as exc:
            message = str(exc)
            assert exc.exit_code == 2, describe
            assert "\n" not in message and len(message) < MAX_LINE, f"{describe}: {len(message)} characters"
            self.refused += 1
        except Exception as exc:  # the failure names the input that produced it
            raise AssertionError(f"{describe}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        else:
            self.accepted += 1

    def report(self, minimum: int) -> None:
        total = self.accepted + self.refused
        print(f"\n{self.what}: {total} inputs, {self.accepted} accepted, {self.refused} refused")
        assert total >= minimum


# ---------------------------------------------------------------------------- configs

VALID = [open(os.path.join(ROOT, "jobs", name), encoding="utf-8").read()
         for name in ("demo.toml", "rennala_quadratic.toml", "trace_demo.toml", "amelie_heterogeneous.toml")]
KEYS = {section: [f.name for f in __import__("dataclasses").fields(kind) if f.name != "params"]
        for section, kind in SECTIONS.items() if section != "plugins"}  # plugins would import what they name
KEYS["method"] += ["assign", "tau_c", "L", "S", "K", "buffer"]
KEYS["problem"] += ["format", "zero_based", "classes", "test_data", "L"]
HOSTILE_VALUES = [
    "nan", "inf", "-inf", "-1", "0", "1", "9223372036854775807", "-9223372036854775808", "1e308", "-0.0", "true",
    '""', '"x"', '"' + "l" * 5000 + '"', '"\\u0000"', '"\U0001F600"', "[]", "[nan]", "[1, 2, 3]", "[[1, 2, 3, 4]]",
    "[[-1, 5, 1, 0]]", "{a = 1}", "1979-05-27", "07:32:00", '"{workers:>99}"', '"{method.__class__}"', '"{"',
    '"fixed"', '"trace"', '"edges"', '"mesh"', '"logistic"', '"sfw_asyn"', '"rennala_sgd"', "[" + "1, " * 3000 + "1]",
    "1" * 5000, "0x" + "f" * 40, "1." + "1" * 3000,
]


def _nested(rng: random.Random) -> str:
    depth = rng.choice([1, 5, 31, 32, 33, 100, 400, 1000, 3000, 20000])
    kind = rng.randrange(5)
    if kind == 0:
        return "a = " + "[" * depth + "]" * depth
    if kind == 1:
        return "a = " + "{b = " * depth + "1" + "}" * depth
    if kind == 2:
        return "a" + ".b" * depth + " = 1"
    if kind == 3:
        return "[" + ".".join(["t"] * depth) + "]\nx = 1"
    return "[method]\nlr = " + "[" * depth + "1" + "]" * depth  # unbalanced on purpose at times


def _typed(rng: random.Random) -> str:
    lines = []
    for section in rng.sample(sorted(KEYS), rng.randint(1, 3)):
        lines.append(f"[{section}]")
        for key in rng.sample(KEYS[section], min(len(KEYS[section]), rng.randint(1, 4))):
            lines.append(f"{key} = {rng.choice(HOSTILE_VALUES)}")
    if "[stop]" not in lines:
        lines += ["[stop]", "time = 1"]
    return "\n".join(lines)


def _mutated(rng: random.Random, text: bytes) -> bytes:
    data = bytearray(text)
    for _ in range(rng.randint(1, 12)):
        at = rng.randrange(len(data) + 1)
        choice = rng.randrange(4)
        if choice == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif choice == 1:
            data[at:at] = rng.choice([b"[", b"]", b"{", b"}", b'"', b"'", b"=", b"\n", b".", b"#", b"\\", b"\x00",
                                      b'"""', b"'''", b"nan", b"\xff", b"[[", b"{{", b"a.b.c"])
        elif choice == 2:
            del data[at:at + rng.randint(1, 20)]
        else:
            data[at:at] = data[max(0, at - 50):at]  # repeat a stretch
    return bytes(data)


def _config_inputs(rng: random.Random, count: int):
    for index in range(count):
        kind = index % 7
        valid = rng.choice(VALID).encode()
        if kind == 0:
            yield "random bytes", bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        elif kind == 1:
            yield "truncated", valid[: rng.randint(0, len(valid))]
        elif kind == 2:
            yield "mutated", _mutated(rng, valid)
        elif kind == 3:
            yield "nested", _nested(rng).encode()
        elif kind == 4:
            yield "typed values", _typed(rng).encode()
        elif kind == 5:
            token = rng.choice(["k" * 20_000, "1" * 20_000, '"' + "s" * 20_000 + '"', "\U0001F600" * 5_000])
            yield "long token", f"[method]\n{token} = {token}\n[stop]\ntime = 1\n".encode()
        else:
            braces = "".join(rng.choice(["{", "}", "{{", "}}", "workers", ":", "!r", ".", "[0]", "x", "/"])
                             for _ in range(rng.randint(1, 12)))
            yield "output.path", f'[output]\npath = "{braces}"\n[stop]\ntime = 1\n'.encode()


@pytest.mark.timeout(300)
def test_fuzzed_configs_load_or_are_one_short_user_error(tmp_path):
    rng = random.Random(SEED)
    tally = Tally("config reader")
    path = tmp_path / "fuzz.toml"
    for number, (kind, data) in enumerate(_config_inputs(rng, 1100)):
        path.write_bytes(data)
        backend = "sim" if number % 2 else "mpi"
        tally.check(lambda: load_config(str(path), backend=backend), f"config input {number} ({kind}): {data[:120]!r}")
    tally.report(1000)
    assert tally.accepted > 50 and tally.refused > 500  # both outcomes are exercised


# ---------------------------------------------------------------------------- data files

LABELS = ["1", "-1", "0", "2", "+1", "1.5", "nan", "inf", "1e400", "abc", "", "\x00" * 300, "9" * 5000, "\U0001F600"]
INDICES = ["1", "2", "0", "-1", "3", "2147483647", "2147483648", "9223372036854775808", "a", "", "1.5", "9" * 5000]
VALUES = ["1", "0.5", "-2", "nan", "inf", "", "x", "1e999", "0x1", "\x00"]


def _libsvm_text(rng: random.Random) -> bytes:
    lines, hostile = [], rng.choice([0.0, 0.0, 0.02, 0.3])  # the share of hostile tokens
    for _ in range(rng.randint(0, 30)):
        if rng.random() < hostile:
            lines.append(rng.choice(["", "# comment", "   ", "\t", "1 # tail", "\r"]))
            continue
        features = [f"{rng.choice(INDICES)}{rng.choice([':', ':', ':', '', '::'])}{rng.choice(VALUES)}"
                    if rng.random() < hostile else f"{i}:{rng.uniform(-2, 2):.3g}"
                    for i in sorted(rng.sample(range(1, 40), rng.randint(0, 6)))]
        label = rng.choice(LABELS) if rng.random() < hostile else rng.choice(["1", "-1"])
        lines.append(rng.choice([" ", "\t"]).join([label, *features]))
    text = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    if rng.random() < hostile:
        text += bytes(rng.randrange(256) for _ in range(rng.randint(1, 50)))  # not UTF-8 at times
    return text


def _valid_arrays(rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = rng.randint(1, 20), rng.randint(1, 8)
    X = np.round(np.random.default_rng(rng.randrange(2**32)).standard_normal((rows, cols)), 3)
    return X, np.array([rng.choice([-1.0, 1.0]) for _ in range(rows)])


def _npy_member(shape: str, descr: str = "<f8", payload: bytes = b"") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def _crafted_npz(rng: random.Random) -> bytes:
    shapes = ["(1000000, 1000000)", "(2147483648,)", "(-1, 3)", "(3,)", "(2, 2)", "()", "(0, 0)", "(1, 2, 3)",
              "(4294967296, 4294967296)", "'x'", "(1.5,)", "(" + "2, " * 40 + ")"]
    descrs = ["<f8", "|O", "|V8", "<U4", "|b1", "<c16", "<i8", "x", "[('a', '<f8')]"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key in rng.sample(["X", "y", "x", "data", "labels", "indices", "indptr", "shape", "k" * 300], rng.randint(1, 5)):
            payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 8, 16, 32])))
            archive.writestr(key + ".npy", _npy_member(rng.choice(shapes), rng.choice(descrs), payload))
    return buffer.getvalue()


def _npz_bytes(rng: random.Random) -> bytes:
    X, y = _valid_arrays(rng)
    buffer = io.BytesIO()
    if rng.random() < 0.3:
        X = sp.csr_matrix(X)
        np.savez_compressed(buffer, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape), y=y)
    else:
        np.savez(buffer, X=X, y=y)
    return buffer.getvalue()


def _idx_pair(rng: random.Random, folder) -> tuple[bytes, bytes]:
    images = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (rng.randint(1, 6), 3, 3), dtype=np.uint8)
    labels = np.arange(len(images), dtype=np.uint8)
    save_idx(str(folder / "i.idx"), images)
    save_idx(str(folder / "l.idx"), labels)
    return (folder / "i.idx").read_bytes(), (folder / "l.idx").read_bytes()


def _idx_header(rng: random.Random) -> bytes:
    ndim = rng.choice([0, 1, 2, 3, 4, 255])
    code = rng.choice([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF])
    dims = [rng.choice([0, 1, 3, 60000, 2**31, 2**32 - 1]) for _ in range(ndim)]
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 9, 27, 100])))
    return bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + body


def _h5_bytes(rng: random.Random, path) -> bytes:
    X, y = _valid_arrays(rng)
    with h5py.File(path, "w") as handle:
        choice = rng.randrange(5)
        if choice == 0:
            handle["X"], handle["y"] = X, y
        elif choice == 1:  # declared huge, never written: a tiny file
            handle.create_dataset("X", shape=(10**6, 10**6), dtype="f8", chunks=(1, 1))
            handle["y"] = y
        elif choice == 2:
            handle.create_group("X")
            handle["y"] = y
        elif choice == 3:
            handle["data"] = np.array([b"text"] * len(y))
            handle["labels"] = y
        else:
            handle["x"], handle["y"] = X[:, 0], y
    return path.read_bytes()


def _data_inputs(rng: random.Random, folder, count: int):
    """(kind, file name, bytes, format, extra files) for each input."""
    for index in range(count):
        kind = index % 10
        if kind == 0:
            yield "libsvm text", "d.svm", _libsvm_text(rng), "auto"
        elif kind == 1:
            text = _libsvm_text(rng)
            packed = gzip.compress(text)
            choice = rng.randrange(4)
            if choice == 1:
                packed = packed[: rng.randint(0, len(packed))]
            elif choice == 2:
                packed = packed[:-4] + rng.choice([2**32 - 1, 0, 10**9]).to_bytes(4, "little")
            elif choice == 3:
                packed = gzip.compress(b"1 " + b"1" * rng.choice([10, 10**6]) + b":1\n") + packed  # two members
            yield "libsvm gzip", "d.svm.gz", packed, "auto"
        elif kind == 2:
            yield "long token", "d.svm", rng.choice([b"\x00", b"1", b"a", b"1:"]) * rng.choice([10**4, 10**6]), "libsvm"
        elif kind == 3:
            valid = _npz_bytes(rng)
            yield "npz truncated", "d.npz", valid[: rng.randint(0, len(valid))], rng.choice(["auto", "npz"])
        elif kind == 4:
            yield "npz mutated", "d.npz", _mutated(rng, _npz_bytes(rng)), rng.choice(["auto", "npz"])
        elif kind == 5:
            yield "npz crafted headers", "d.npz", _crafted_npz(rng), "npz"
        elif kind == 6:
            images, labels = _idx_pair(rng, folder)
            edit = rng.randrange(3)
            if edit == 0:
                images = images[: rng.randint(0, len(images))]
            elif edit == 1:
                images = _mutated(rng, images)
            else:
                labels = _idx_header(rng)
            (folder / "labels.idx").write_bytes(labels)
            yield "idx", "images.idx", images, rng.choice(["auto", "idx"])
        elif kind == 7:
            (folder / "labels.idx").write_bytes(_idx_pair(rng, folder)[1])
            header = _idx_header(rng)
            yield "idx header", "images.idx", gzip.compress(header) if rng.random() < 0.3 else header, "idx"
        elif kind == 8:
            valid = _h5_bytes(rng, folder / "valid.h5")
            edited = rng.choice([valid, valid[: rng.randint(0, len(valid))], _mutated(rng, valid)])
            yield "h5", "d.h5", edited, rng.choice(["auto", "h5"])
        else:
            sample = rng.choice([_libsvm_text(rng), _npz_bytes(rng), b"\x89HDF\r\n\x1a\n", b"PK\x03\x04", b"\x00\x00\x08"])
            yield "random bytes", "d.bin", sample[:8] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))), "auto"


@pytest.mark.timeout(300)
def test_fuzzed_data_files_load_or_are_one_short_user_error(tmp_path):
    rng = random.Random(SEED)
    tally = Tally("data readers")
    for number, (kind, name, data, fmt) in enumerate(_data_inputs(rng, tmp_path, 1100)):
        path = tmp_path / name
        path.write_bytes(data)
        target = f"{path}:{tmp_path / 'labels.idx'}" if name == "images.idx" else str(path)
        tally.check(lambda: load_dataset(target, fmt, max_memory=DATA_LIMIT),
                    f"data input {number} ({kind}, {fmt}): {data[:80]!r}")
    tally.report(1000)
    assert tally.accepted > 50 and tally.refused > 500
