"""Reciprocal and reciprocal square root of positive integers, in a floating form.

Both return ``(mant, exp)`` meaning ``mant * 2^-exp`` with a 16-bit mantissa
``mant`` in [2^15, 2^16). The hardware steps:

1. Leading-one position ``k = msb_index(x)`` (a priority encoder; here a 6-step binary search).
2. Normalise to ``u = x * 2^(WORK_BITS - k)`` in Q(WORK_BITS), u in [1, 2): a barrel shift
   (right shifts truncate).
3. Seed ``y0`` from a ROM of ``2^recip_table_bits`` uint16 entries in Q16 indexed by the top
   fraction bits of u; each entry is the value that minimises the relative error over its interval.
4. :func:`newton_steps` Newton iterations in Q(WORK_BITS) with truncating shifts.
5. Round to 16 bits (``round_shift(y, WORK_BITS - 16)``) and clamp to [2^15, 2^16 - 1]
   (the clamp only acts on a power of two input of the reciprocal, costing 2^-16).

Inputs must be in [1, 2^62). Errors are measured in docs/numerics.md and asserted in the tests.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from .fixedpoint import IntArray, IntLike, round_shift
from .params import Cfg, numerics_of

#: Fraction bits of the normalised operand and of the Newton iterates (multipliers are 26x25).
WORK_BITS = 24
#: Mantissa bits of the result.
MANT_BITS = 16
#: Inputs must be below this.
MAX_INPUT = 1 << 62


def newton_steps(table_bits: int) -> int:
    """Newton iterations after the seed: 1 for tables of >= 8 index bits, else 2.

    A seed from T index bits is good to about 2^-(T+1); each step squares the error, so one step
    reaches the 16-bit mantissa for T >= 8 and two steps do for T >= 4.
    """
    return 1 if table_bits >= 8 else 2


def msb_index(x: IntLike) -> IntArray:
    """Position of the leading one of ``x >= 1`` (``bit_length(x) - 1``), by binary search."""
    x = np.asarray(x, dtype=np.int64)
    k = np.zeros_like(x)
    for s in (32, 16, 8, 4, 2, 1):
        k += s * ((x >> (k + s)) != 0)
    return k


def _normalise(x: IntArray, k: IntArray) -> IntArray:
    """``x`` scaled so its leading one lands on bit WORK_BITS (right shifts truncate)."""
    return np.where(
        k >= WORK_BITS, x >> np.maximum(k - WORK_BITS, 0), x << np.maximum(WORK_BITS - k, 0)
    )


@cache
def _recip_table(table_bits: int) -> IntArray:
    # Interval i is [1 + i/2^T, 1 + (i+1)/2^T); the best seed 2/(a+b) = 2^(T+1)/(2^(T+1)+2i+1).
    t = np.array(
        [
            ((1 << (MANT_BITS + 1 + table_bits)) + ((1 << (table_bits + 1)) + 2 * i + 1) // 2)
            // ((1 << (table_bits + 1)) + 2 * i + 1)
            for i in range(1 << table_bits)
        ],
        dtype=np.int64,
    )
    t.setflags(write=False)
    return t


@cache
def _rsqrt_table(table_bits: int) -> IntArray:
    half = 1 << (table_bits - 1)
    entries = []
    for parity in (0, 1):
        for j in range(half):
            a = (1 + j / half) * (1 << parity)
            b = (1 + (j + 1) / half) * (1 << parity)
            # The best seed for 1/sqrt over [a, b) is 2 / (sqrt(a) + sqrt(b)).
            entries.append(math.floor((1 << (MANT_BITS + 1)) / (math.sqrt(a) + math.sqrt(b)) + 0.5))
    t = np.array(entries, dtype=np.int64)
    t.setflags(write=False)
    return t


def recip_seed_table(cfg: Cfg) -> IntArray:
    """Reciprocal seed ROM: entry i is round(2^16 * 2 / (a + b)) for u in [a, b) = [1 + i/2^T,
    1 + (i+1)/2^T), T = recip_table_bits. All entries are in (2^15, 2^16). Read-only."""
    return _recip_table(numerics_of(cfg).recip_table_bits)


def rsqrt_seed_table(cfg: Cfg) -> IntArray:
    """Reciprocal-square-root seed ROM (2^T entries, T = recip_table_bits): the index is the
    parity of k (msb) followed by the top T-1 fraction bits of u; the operand is w = u * 2^parity
    in [1, 4) and the entry is round(2^16 * 2 / (sqrt(a) + sqrt(b))) for w in [a, b). Read-only."""
    return _rsqrt_table(numerics_of(cfg).recip_table_bits)


def _check(x: IntLike, what: str) -> IntArray:
    x = np.asarray(x, dtype=np.int64)
    if x.size and (x.min() < 1 or x.max() >= MAX_INPUT):
        raise ValueError(f"{what}: inputs must be integers in [1, 2^62)")
    return x


def _mantissa(y: IntArray) -> IntArray:
    return np.clip(
        round_shift(y, WORK_BITS - MANT_BITS), 1 << (MANT_BITS - 1), (1 << MANT_BITS) - 1
    )


def reciprocal(x: IntLike, cfg: Cfg) -> tuple[IntArray, IntArray]:
    """``1/x ~= mant * 2^-exp`` for integers x in [1, 2^62); mant in [2^15, 2^16).

    Steps (M = WORK_BITS = 24, T = recip_table_bits): k = msb_index(x); u = x normalised to
    Q(M) in [2^M, 2^(M+1)); y = R[(u >> (M - T)) & (2^T - 1)] << (M - 16); then newton_steps(T)
    times: t = (u * y) >> M; y = (y * ((2 << M) - t)) >> M. Finally mant = clamp(round_shift(y,
    M - 16), 2^15, 2^16 - 1) and exp = k + 16.
    Max relative error (measured over all x < 2^16 and random x < 2^62): below 2^-15.
    """
    num = numerics_of(cfg)
    x = _check(x, "reciprocal")
    t_bits = num.recip_table_bits
    k = msb_index(x)
    u = _normalise(x, k)
    y = _recip_table(t_bits)[(u >> (WORK_BITS - t_bits)) & ((1 << t_bits) - 1)]
    y = y << (WORK_BITS - MANT_BITS)
    for _ in range(newton_steps(t_bits)):
        t = (u * y) >> WORK_BITS
        y = (y * ((2 << WORK_BITS) - t)) >> WORK_BITS
    return _mantissa(y), k + MANT_BITS


def rsqrt(x: IntLike, cfg: Cfg) -> tuple[IntArray, IntArray]:
    """``1/sqrt(x) ~= mant * 2^-exp`` for integers x in [1, 2^62); mant in [2^15, 2^16).

    Steps (M = WORK_BITS = 24, T = recip_table_bits): k = msb_index(x); p = k & 1;
    u = x normalised to Q(M); w = u << p (w in [1, 4), x = w * 2^(k - p)); index =
    (p << (T - 1)) | ((u >> (M - T + 1)) & (2^(T-1) - 1)); y = Rs[index] << (M - 16); then
    newton_steps(T) times: y2 = (y * y) >> M; t = (w * y2) >> M; y = (y * ((3 << M) - t)) >> (M + 1).
    Finally mant = clamp(round_shift(y, M - 16), 2^15, 2^16 - 1) and exp = (k - p) / 2 + 16.
    Max relative error (measured over all x < 2^16 and random x < 2^62): below 2^-15.
    """
    num = numerics_of(cfg)
    x = _check(x, "rsqrt")
    t_bits = num.recip_table_bits
    k = msb_index(x)
    p = k & 1
    u = _normalise(x, k)
    w = u << p
    index = (p << (t_bits - 1)) | ((u >> (WORK_BITS - t_bits + 1)) & ((1 << (t_bits - 1)) - 1))
    y = _rsqrt_table(t_bits)[index] << (WORK_BITS - MANT_BITS)
    for _ in range(newton_steps(t_bits)):
        y2 = (y * y) >> WORK_BITS
        t = (w * y2) >> WORK_BITS
        y = (y * ((3 << WORK_BITS) - t)) >> (WORK_BITS + 1)
    return _mantissa(y), ((k - p) >> 1) + MANT_BITS
