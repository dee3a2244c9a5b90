"""Unbiased compressors of uploads (and of Shadowheart's broadcast): identity, RandK (Stich et al. 2018; Shadowheart, Tyurin, Pozzi, Ilin, Richtarik 2024), QSGD (Alistarh et al., NeurIPS 2017).

Every compressor C is unbiased, E[C(v)] = v, with variance parameter omega:
E||C(v) - v||^2 <= omega ||v||^2. A worker sends one float64 message carrying `copies`
independent compressions of one vector; the server adds `scale` times their sum into an
accumulator with `decode_add`, which allocates nothing of the vector's size.

Wire formats (all float64 words):

  identity  the vector itself (d words); the copies are all equal, so only one is sent.
  randk     [seed, v[idx_1] (K words), ..., v[idx_copies] (K words)]. The indices are not
            sent: both sides regenerate them from the seed with `randk_indices`. The seed
            is below 2**53, so it survives the trip through a float64 exactly. Where the seeds
            of many messages are known at once (a simulated round), `draw_ahead` draws their
            indices in one block (seeded_draws), the same numbers.
  randk_fast  randk's format and law; its indices come from fast_randk_indices, a cheaper map from the
            seed (an option: other random numbers than randk's, the default, for half the CPU of a message).
  quantize  per copy [norm, ceil(d/8) words holding the d signed int8 levels as raw bytes].
            Those words are bytes, not numbers: copy them, never compute with them.

Upload time is charged for `upload_floats`: the payload without RandK's seed word, as the
Shadowheart paper charges m K theta for m copies (seed 001, Shadowheart's time model), unless
the method charges the seed too (method.charge_seed). The seed still travels and counts in bytes.
Shadowheart's compressed broadcast (method.server_compressor) is one such message too, its
download time charged for the same `upload_floats` of one copy.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from . import seeded_draws
from .errors import ConfigError
from .inputs import shown

SEED_BOUND = 2**53  # every integer below this is exactly representable in float64
MAX_LEVELS = 127  # quantized levels are stored as int8
DECODE_CHUNK = 2**15  # elements per dense decode step: bounds the float temporary to 256 KiB


def _as_int(value: Any, key: str) -> int:
    """`value` as an int (integral floats from the wire are accepted), else ConfigError naming `key`."""
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{key} must be an integer, got {shown(value)}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ConfigError(f"{key} must be an integer, got {shown(value)}")


def _check_copies(copies: int) -> int:
    if type(copies) is int and copies >= 1:  # the common case first: this runs several times per message
        return copies
    if isinstance(copies, (bool, np.bool_)) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f"copies must be a positive integer, got {copies!r}")
    return int(copies)


def _check_payload(payload: np.ndarray, expected: int, name: str) -> np.ndarray:
    payload = np.ascontiguousarray(payload, dtype=np.float64)
    if payload.ndim != 1 or payload.size != expected:
        raise ValueError(f"{name} payload has {payload.size} floats, expected {expected}")
    return payload


def _add_scaled(accumulator: np.ndarray, factor: float, values: np.ndarray) -> None:
    """accumulator += factor * values, in chunks so the float temporary stays small."""
    if factor == 1.0 and values.dtype == np.float64:
        accumulator += values  # in place, no temporary at all
        return
    for start in range(0, accumulator.size, DECODE_CHUNK):
        stop = start + DECODE_CHUNK
        accumulator[start:stop] += factor * values[start:stop]


def draw_seed(rng: np.random.Generator) -> int:
    """A RandK message's seed, drawn from the sender's stream."""
    return int(rng.integers(SEED_BOUND))


def randk_indices(seed: int, dim: int, K: int, copies: int) -> np.ndarray:
    """The (copies, K) coordinates of a RandK message; each row is K distinct indices in [0, dim).

    Deterministic in (seed, dim, K, copies): the worker and the server both call it, so
    only the seed travels. Rows are uniform K-subsets (in random order), independent.
    """
    if not 1 <= K <= dim:
        raise ConfigError(f"method.K = {K} must be between 1 and the problem dimension {dim}")
    drawn = _drawn.pop((seed, dim, K, copies), None)
    if drawn is not None:
        return drawn
    return _draw_indices(np.random.Generator(np.random.PCG64(int(seed))), dim, K, copies)


_drawn: dict[tuple, np.ndarray] = {}  # (seed, dim, K, copies) -> randk_indices drawn ahead, taken once


def draw_ahead(seeds: list[int], dim: int, K: int, copies: list[int]) -> None:
    """Draw the randk_indices of many messages in one block; randk_indices then takes each message's instead of
    seeding a generator (half of a compressed event's CPU at d = 100). seeded_draws gives numpy's numbers; a
    message it cannot draw exactly (a draw Lemire rejects, a row that repeats an index and would be redrawn,
    the dense regime, a dimension of 2**32 or more) is left to randk_indices. Replaces the last block's draws.
    """
    _drawn.clear()
    if not (2 <= dim < 2**32 and 1 <= K and K * (K - 1) <= dim and seeded_draws.available()):
        return
    counts = np.array(copies, dtype=np.int64)
    most = int(counts.max())
    draws, rejected = seeded_draws.bounded_draws(np.array(seeds, dtype=np.uint64), dim, most * K)
    rows = draws.reshape(len(seeds), most, K)
    if K > 1:  # _draw_indices redraws a row that repeats an index: such messages are not drawn here
        ordered = np.sort(rows, axis=2)
        repeats = (ordered[:, :, 1:] == ordered[:, :, :-1]).any(axis=2) & (np.arange(most) < counts[:, None])
        rejected |= repeats.any(axis=1)
    for seed, count, row, skip in zip(seeds, copies, rows, rejected.tolist()):
        if not skip:
            _drawn[(seed, dim, K, count)] = row[:count]


_FAST_BITS = np.random.PCG64(0)
_FAST_GENERATOR = np.random.Generator(_FAST_BITS)
_GOLDEN = 0x9E3779B97F4A7C15  # odd: seed -> seed * _GOLDEN is one-to-one modulo 2**128


def fast_randk_indices(seed: int, dim: int, K: int, copies: int) -> np.ndarray:
    """randk_indices' rows from a cheaper seed -> generator map (compressor randk_fast): other numbers, the same law.

    One PCG64 of this process is set to the state seed * _GOLDEN (its stream increment fixed) instead of a
    new generator seeded through SeedSequence, which cost half of a compressed event at d = 100. Distinct
    seeds start at distinct points of one PCG64 stream of period 2**128.
    """
    if not 1 <= K <= dim:
        raise ConfigError(f"method.K = {K} must be between 1 and the problem dimension {dim}")
    _FAST_BITS.state = {"bit_generator": "PCG64", "state": {"state": (int(seed) * _GOLDEN) % 2**128, "inc": _GOLDEN},
                        "has_uint32": 0, "uinteger": 0}
    return _draw_indices(_FAST_GENERATOR, dim, K, copies)


def _draw_indices(generator: np.random.Generator, dim: int, K: int, copies: int) -> np.ndarray:
    """randk_indices' (copies, K) rows drawn from `generator`."""
    if K == 1:  # one index per copy cannot repeat: draw all copies at once
        if copies == 1:  # the scalar draw is the first of an array's (and costs a third of one)
            return np.array([[generator.integers(dim)]], dtype=np.int64)
        return generator.integers(dim, size=(copies, 1))
    if K * (K - 1) > dim:
        # Dense regime (a row of K uniform draws would often repeat): Generator.choice, O(K) per copy.
        indices = np.empty((copies, K), dtype=np.int64)
        for row in indices:
            row[:] = generator.choice(dim, K, replace=False)
        return indices
    # Sparse regime: draw every row with replacement and redraw the rows that repeat an index.
    # A redrawn row is uniform given that it is distinct, so every row is a uniform K-subset.
    # Vectorised over copies: choice() in a loop costs ~10 us per copy, and Shadowheart sends
    # up to ceil(d/K) copies per message (1e5 copies at d = 1e6, K = 10: 1 s against 20 ms).
    # Since K(K-1) <= dim, a row repeats with probability < 1/2, so few rounds are needed.
    indices = generator.integers(dim, size=(copies, K))
    rows = np.arange(copies)
    while rows.size:
        ordered = np.sort(indices[rows], axis=1)
        rows = rows[np.any(ordered[:, 1:] == ordered[:, :-1], axis=1)]
        indices[rows] = generator.integers(dim, size=(rows.size, K))
    return indices


_last_message: dict[tuple, np.ndarray] = {}  # (seed, dim, K, copies[, map]) -> its indices


def _message_indices(seed: int, dim: int, K: int, copies: int) -> np.ndarray:
    """randk_indices, remembered for the last message of this process (read-only).

    Where one process encodes a message and then decodes it (the simulator runs a worker's
    job and hands its payload to the method at once; Shadowheart's compressed broadcast), the
    decode finds the indices the encode drew instead of seeding a generator again (that was
    half of a compressed event's CPU). A function of its key, so the numbers are unchanged;
    one entry, at most a d-vector's worth of indices (copies <= ceil(d/K)).
    """
    key = (seed, dim, K, copies)
    indices = _last_message.get(key)
    if indices is None:
        indices = randk_indices(seed, dim, K, copies)
        indices.flags.writeable = False
        _last_message.clear()
        _last_message[key] = indices
    return indices


def _fast_message_indices(seed: int, dim: int, K: int, copies: int) -> np.ndarray:
    """_message_indices with fast_randk_indices (its own key in the same one-entry memo)."""
    key = (seed, dim, K, copies, "fast")
    indices = _last_message.get(key)
    if indices is None:
        indices = fast_randk_indices(seed, dim, K, copies)
        indices.flags.writeable = False
        _last_message.clear()
        _last_message[key] = indices
    return indices


class Compressor(ABC):
    """An unbiased compressor C with E||C(v) - v||^2 <= omega ||v||^2 and its float64 wire format."""

    name: str
    code: int  # sent on the wire as a float
    param: int  # K for randk, the levels s for quantize, 0 for identity
    seed_floats = 0  # words of the payload that carry a seed rather than the vector's values

    def __init__(self, param: int = 0):
        self.param = param

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.param == self.param

    def __hash__(self) -> int:
        return hash((self.code, self.param))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param={self.param})"

    @abstractmethod
    def omega(self, dim: int) -> float:
        """Variance parameter: E||C(v) - v||^2 <= omega ||v||^2 for v of size dim."""

    @abstractmethod
    def payload_floats(self, dim: int, copies: int = 1) -> int:
        """Float64 words of a message carrying `copies` independent compressions of one vector."""

    def upload_floats(self, dim: int, copies: int = 1, charge_seed: bool = False) -> int:
        """Float64 words the message's upload time is charged for: the payload less its seed, unless `charge_seed`."""
        return self.payload_floats(dim, copies) - (0 if charge_seed else self.seed_floats)

    @abstractmethod
    def encode(self, vector: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
        """The float64 payload (length payload_floats(vector.size, copies)) of `copies` compressions."""

    @abstractmethod
    def decode_add(self, accumulator: np.ndarray, payload: np.ndarray, copies: int, scale: float = 1.0) -> None:
        """accumulator += scale * (sum over the copies of C_j(vector)), in place."""


class Identity(Compressor):
    """No compression: omega = 0, the payload is the vector."""

    name = "identity"
    code = 0

    def __init__(self, param: int = 0):
        super().__init__(0)  # no parameter; callers may pass K or levels regardless

    def omega(self, dim: int) -> float:
        return 0.0

    def payload_floats(self, dim: int, copies: int = 1) -> int:
        return dim

    def encode(self, vector: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
        _check_copies(copies)
        return np.array(vector, dtype=np.float64, copy=True).ravel()

    def decode_add(self, accumulator: np.ndarray, payload: np.ndarray, copies: int, scale: float = 1.0) -> None:
        copies = _check_copies(copies)
        payload = _check_payload(payload, accumulator.size, self.name)
        _add_scaled(accumulator, scale * copies, payload)


class RandK(Compressor):
    """K coordinates uniformly without replacement, scaled by d/K: unbiased, omega = d/K - 1."""

    name = "randk"
    code = 1
    seed_floats = 1

    def omega(self, dim: int) -> float:
        self._check_dim(dim)
        return dim / self.param - 1.0

    def payload_floats(self, dim: int, copies: int = 1) -> int:
        self._check_dim(dim)
        return 1 + _check_copies(copies) * self.param

    def encode(self, vector: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
        return self.encode_seeded(vector, copies, draw_seed(rng))  # one seed per message picks every copy's indices

    def encode_seeded(self, vector: np.ndarray, copies: int, seed: int) -> np.ndarray:
        """encode with the message's seed drawn already (draw_seed)."""
        vector = np.asarray(vector, dtype=np.float64).ravel()
        copies = _check_copies(copies)
        indices = self._indices(seed, vector.size, self.param, copies)
        payload = np.empty(1 + copies * self.param)
        payload[0] = seed
        payload[1:] = vector[indices.ravel()]  # raw values; the d/K scale is applied when decoding
        return payload

    def decode_add(self, accumulator: np.ndarray, payload: np.ndarray, copies: int, scale: float = 1.0) -> None:
        dim, copies = accumulator.size, _check_copies(copies)
        payload = _check_payload(payload, self.payload_floats(dim, copies), self.name)
        indices = self._indices(int(payload[0]), dim, self.param, copies).ravel()
        values = (scale * dim / self.param) * payload[1:]
        if copies == 1:  # one row's indices are distinct: fancy-index += adds each once, as add.at would
            accumulator[indices] += values
        else:  # add.at: different copies may pick the same coordinate
            np.add.at(accumulator, indices, values)

    def draw_ahead(self, seeds: list[int], dim: int, copies: list[int]) -> None:
        """The indices of the messages of these seeds (and copies), drawn in one block (module draw_ahead)."""
        draw_ahead(seeds, dim, self.param, copies)

    def _check_dim(self, dim: int) -> None:
        if self.param > dim:
            raise ConfigError(f"method.K = {self.param} exceeds the problem dimension {dim}")

    @staticmethod
    def _indices(seed: int, dim: int, K: int, copies: int) -> np.ndarray:
        return _message_indices(seed, dim, K, copies)


class FastRandK(RandK):
    """RandK whose indices come from fast_randk_indices: the same compressor in law, a cheaper random stream."""

    name = "randk_fast"
    code = 3

    def draw_ahead(self, seeds: list[int], dim: int, copies: list[int]) -> None:
        """Nothing: this map costs little per message."""

    @staticmethod
    def _indices(seed: int, dim: int, K: int, copies: int) -> np.ndarray:
        return _fast_message_indices(seed, dim, K, copies)


class Quantize(Compressor):
    """QSGD with s levels: coordinate i becomes (||v||/s) sign(v_i) xi_i, xi_i rounded at random from s|v_i|/||v||."""

    name = "quantize"
    code = 2

    def omega(self, dim: int) -> float:
        s = self.param
        return min(dim / s**2, math.sqrt(dim) / s)  # Alistarh et al. 2017, Lemma 3.1

    def payload_floats(self, dim: int, copies: int = 1) -> int:
        return _check_copies(copies) * (1 + self._words(dim))

    @staticmethod
    def _words(dim: int) -> int:
        return -(-dim // 8)  # d int8 levels packed eight to a float64 word

    def encode(self, vector: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float64).ravel()
        copies, dim, s = _check_copies(copies), vector.size, self.param
        words = self._words(dim)
        payload = np.zeros(copies * (1 + words))  # zero padding bytes, zero levels for v = 0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0 or not math.isfinite(norm):
            # A non-finite norm is sent as is, so the server sees the divergence instead of zeros.
            payload[:: 1 + words] = norm
            return payload
        ratio = (np.abs(vector) / norm) * s  # in [0, s]; s / norm first could overflow for tiny norms
        lower = np.floor(ratio)
        fraction = ratio - lower
        sign = np.sign(vector)
        messages = payload.reshape(copies, 1 + words)
        messages[:, 0] = norm
        # Several copies' draws from one call: random((count, d)) gives the numbers of count calls random(d).
        block = max(1, DECODE_CHUNK // dim)
        for first in range(0, copies, block):
            rows = messages[first : first + block]
            level = lower + (rng.random((len(rows), dim)) < fraction)
            np.minimum(level, s, out=level)  # rounding could push |v_i|/||v|| a hair above 1
            rows[:, 1:].view(np.int8)[:, :dim] = sign * level
        return payload

    def decode_add(self, accumulator: np.ndarray, payload: np.ndarray, copies: int, scale: float = 1.0) -> None:
        dim, copies = accumulator.size, _check_copies(copies)
        payload = _check_payload(payload, self.payload_floats(dim, copies), self.name)
        words = self._words(dim)
        for copy in range(copies):
            start = copy * (1 + words)
            levels = payload[start + 1 : start + 1 + words].view(np.int8)[:dim]
            _add_scaled(accumulator, scale * payload[start] / self.param, levels)


COMPRESSORS: dict[str, type[Compressor]] = {cls.name: cls for cls in (Identity, RandK, Quantize, FastRandK)}
COMPRESSOR_CODES: dict[int, str] = {cls.code: cls.name for cls in COMPRESSORS.values()}


def make_compressor(name: str, param: int = 0, prefix: str = "") -> Compressor:
    """The compressor `name` with its parameter (K for randk, levels for quantize, ignored for identity).

    Errors name the keys method.{prefix}compressor, method.{prefix}K and method.{prefix}levels
    (prefix "server_" for the broadcast's compressor).
    """
    if name not in COMPRESSORS:
        raise ConfigError(f"method.{prefix}compressor: unknown compressor {shown(name)}; "
                          f"choose from {', '.join(COMPRESSORS)}")
    if name in ("randk", "randk_fast"):
        K = _as_int(param, f"method.{prefix}K")
        if K < 1:
            raise ConfigError(f"method.{prefix}K must be >= 1, got {K}")
        return COMPRESSORS[name](K)
    if name == "quantize":
        levels = _as_int(param, f"method.{prefix}levels")
        if not 1 <= levels <= MAX_LEVELS:
            raise ConfigError(f"method.{prefix}levels must be between 1 and {MAX_LEVELS}, got {levels}")
        return Quantize(levels)
    return Identity()


@functools.lru_cache(maxsize=16, typed=True)  # the simulator's workers ask once per compressed event
def compressor_from_code(code: int, param: int) -> Compressor:
    """The compressor a job names by its wire code and parameter (integral floats are accepted)."""
    number = _as_int(code, "method.compressor")
    if number not in COMPRESSOR_CODES:
        known = sorted(COMPRESSOR_CODES)
        raise ConfigError(f"method.compressor: unknown compressor code {shown(code)}; known codes {known}")
    return make_compressor(COMPRESSOR_CODES[number], param)
