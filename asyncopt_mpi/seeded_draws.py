"""numpy's `Generator(PCG64(seed)).integers(dim, size=count)` for many seeds at once: RandK's indices in blocks.

A RandK message's indices are drawn from a generator seeded with the message's seed (compression.randk_indices);
seeding one through SeedSequence costs about half of a compressed event in the simulator. Here the same steps
run on arrays of seeds: SeedSequence's hash mixing of the seed's 32-bit words into a pool of four and the four
64-bit words it generates (numpy/random/bit_generator.pyx), PCG64's seeding and 128-bit LCG steps with their
XSL-RR output (pcg64.h; 128-bit numbers as two uint64 limbs), and Generator.integers' bounded draw for
dim < 2**32 (Lemire's multiply-shift on 32-bit halves of the outputs, low half first: random_bounded_uint64_fill
and buffered_bounded_lemire_uint32 in distributions.c). A draw Lemire would reject (probability below dim / 2**32)
is not redone here: its seed is flagged, and the caller draws that seed with numpy itself.

numpy does not promise these streams across versions: `available()` compares this map with numpy's on a few
hundred seeds once per process, and callers use numpy's per-seed path when they differ.
"""

from __future__ import annotations

import functools

import numpy as np

_M32 = 0xFFFFFFFF
# SeedSequence's constants (pool of 4 uint32 words).
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT = np.uint32(0xCA01F9DD), np.uint32(0x4973F715), np.uint32(16)
_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341  # PCG64's 128-bit multiplier
_ONE, _32, _58, _63, _64 = (np.uint64(value) for value in (1, 32, 58, 63, 64))
_LOW32 = np.uint64(_M32)


def _hash_constants(start: int, mult: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """SeedSequence's running hash constant around each of `count` hash calls (it does not depend on the data):
    (the one each call xors with, the one it then multiplies by), as (count, 1) uint32 columns."""
    values = [start]
    for _ in range(count):
        values.append((values[-1] * mult) & _M32)
    return (np.array(values[:-1], dtype=np.uint32)[:, None], np.array(values[1:], dtype=np.uint32)[:, None])


_MIX_XOR, _MIX_MULT = _hash_constants(_INIT_A, _MULT_A, 16)  # mix_entropy's 4 + 4 * 3 hashmix calls
_STATE_XOR, _STATE_MULT = _hash_constants(_INIT_B, _MULT_B, 8)  # generate_state(4, uint64): 8 words


def _hashed(values: np.ndarray, xor: np.ndarray, mult: np.ndarray) -> np.ndarray:
    values = (values ^ xor) * mult
    return values ^ (values >> _XSHIFT)


def _seed_words(seeds: np.ndarray) -> np.ndarray:
    """SeedSequence(seed).generate_state(4, np.uint64) of each seed (below 2**64): a (4, len(seeds)) uint64 array."""
    entropy = np.zeros((4, len(seeds)), dtype=np.uint32)
    # The seed's 32-bit words, low first; absent high words hash as the zeros mix_entropy pads with.
    entropy[0], entropy[1] = seeds & _LOW32, seeds >> _32
    pool = _hashed(entropy, _MIX_XOR[:4], _MIX_MULT[:4])
    call = 4
    for source in range(4):  # pool[target] = mix(pool[target], hashmix(pool[source])) for every other target
        targets = [target for target in range(4) if target != source]
        hashed = _hashed(pool[source], _MIX_XOR[call:call + 3], _MIX_MULT[call:call + 3])
        mixed = _MIX_MULT_L * pool[targets] - _MIX_MULT_R * hashed
        pool[targets] = mixed ^ (mixed >> _XSHIFT)
        call += 3
    words = _hashed(pool[[0, 1, 2, 3, 0, 1, 2, 3]], _STATE_XOR, _STATE_MULT).astype(np.uint64)
    return words[0::2] | (words[1::2] << _32)  # little-endian pairs of 32-bit words


def _mul_high(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The high 64 bits of the 128-bit products a * b (uint64), from 32-bit halves."""
    a0, a1 = a & _LOW32, a >> _32
    b0, b1 = b & _LOW32, b >> _32
    low_low, low_high, high_low = a0 * b0, a0 * b1, a1 * b0
    middle = (low_low >> _32) + (low_high & _LOW32) + (high_low & _LOW32)
    return a1 * b1 + (low_high >> _32) + (high_low >> _32) + (middle >> _32)


def _times(a_hi, a_lo, b_hi, b_lo):
    """(a * b) mod 2**128 in (high, low) limbs."""
    return _mul_high(a_lo, b_lo) + a_hi * b_lo + a_lo * b_hi, a_lo * b_lo


def _add(a_hi, a_lo, b_hi, b_lo):
    low = a_lo + b_lo
    return a_hi + b_hi + (low < a_lo).astype(np.uint64), low


@functools.lru_cache(maxsize=8)
def _jumps(outputs: int) -> tuple[np.ndarray, ...]:
    """Limbs of M**(k + 1) and of 1 + M + ... + M**k for k = 1 .. outputs (M: PCG64's multiplier), so that
    the state of the k-th output is M**(k + 1) (inc + seed) + (1 + ... + M**k) inc (mod 2**128)."""
    powers, sums, power, total = [], [], _MULTIPLIER, 1
    for _ in range(outputs):
        total = (total + power) % 2**128
        power = power * _MULTIPLIER % 2**128
        powers.append(power)
        sums.append(total)
    return tuple(np.array([value >> 64 if high else value & (2**64 - 1) for value in values], dtype=np.uint64)
                 for values in (powers, sums) for high in (True, False))


def bounded_draws(seeds: np.ndarray, dim: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(draws, rejected): row i = Generator(PCG64(int(seeds[i]))).integers(dim, size=count) for 2 <= dim < 2**32,
    except where rejected[i] is True (a draw Lemire rejects: draw that seed with numpy). Seeds below 2**64."""
    if not 2 <= dim < 2**32:
        raise ValueError(f"bounded_draws needs 2 <= dim < 2**32, got {dim}")
    seed_hi, seed_lo, inc_hi, inc_lo = _seed_words(np.asarray(seeds, dtype=np.uint64))[:, :, None]
    # pcg_setseq_128_srandom_r: inc = (initseq << 1) | 1; state = inc (one step from 0); += initstate; then
    # one step before each output. All outputs at once, from the powers of the multiplier.
    inc_hi, inc_lo = (inc_hi << _ONE) | (inc_lo >> _63), (inc_lo << _ONE) | _ONE
    start_hi, start_lo = _add(inc_hi, inc_lo, seed_hi, seed_lo)
    power_hi, power_lo, sum_hi, sum_lo = _jumps(-(-count // 2))
    hi, lo = _add(*_times(start_hi, start_lo, power_hi, power_lo), *_times(inc_hi, inc_lo, sum_hi, sum_lo))
    # XSL-RR output: (high ^ low) rotated right by the state's top 6 bits.
    value, rotation = hi ^ lo, hi >> _58
    output = (value >> rotation) | (value << ((_64 - rotation) & _63))
    # Each 64-bit output gives two 32-bit draws, its low half first.
    halves = np.stack([output & _LOW32, output >> _32], axis=2).reshape(len(output), -1)[:, :count]
    scaled = halves * np.uint64(dim)
    threshold = np.uint64((2**32 - dim) % dim)  # (UINT32_MAX - rng) % rng_excl, rng_excl = dim
    rejected = ((scaled & _LOW32) < threshold).any(axis=1)
    return (scaled >> _32).astype(np.int64), rejected


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether bounded_draws gives numpy's numbers in this process (checked once, on a few hundred seeds)."""
    rng = np.random.default_rng(20261206)
    seeds = np.concatenate([[0, 1, 2**32 - 1, 2**32, 2**53 - 1], rng.integers(2**53, size=120),
                            rng.integers(2**32, size=60)]).astype(np.uint64)
    for dim, count in ((2, 3), (7, 1), (100, 16), (1000, 5), (2**31 + 11, 4)):
        try:
            draws, rejected = bounded_draws(seeds, dim, count)
        except (ArithmeticError, ValueError, TypeError):
            return False
        for seed, row, skip in zip(seeds.tolist(), draws, rejected.tolist()):
            expected = np.random.Generator(np.random.PCG64(seed)).integers(dim, size=count)
            if not skip and not np.array_equal(row, expected):
                return False
    return True
