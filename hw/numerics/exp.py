"""Base-2 exponential of non-positive fixed-point numbers by table lookup and shift.

Scores live in the base-2 domain (log2(e) is folded into the score scale by the compiler), so
``exp(s)`` becomes ``2^d``, and ``2^d`` with ``d = -(n + f / 2^F)`` is ``2^-n * 2^(-f / 2^F)``:
an exact table lookup on the F fraction bits and a rounding right shift by the integer part n.
No interpolation is needed because the table has one entry per representable fraction.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from edgemoe.hw.config import NumericsConfig

from .fixedpoint import IntArray, IntLike, round_shift
from .params import Cfg, numerics_of

#: Shift amounts are clamped to this; every shifted operand is < 2^62, so a clamped shift gives 0
#: (the hardware may instead flush to 0 once the shift exceeds the operand width).
SHIFT_CLAMP = 63


@cache
def _table(num: NumericsConfig) -> IntArray:
    f_bits, e_bits = num.score_frac_bits, num.exp_frac_bits
    t = np.array(
        [math.floor(2.0 ** (-f / (1 << f_bits)) * (1 << e_bits) + 0.5) for f in range(1 << f_bits)],
        dtype=np.int64,
    )
    t.setflags(write=False)
    return t


def exp2_table(cfg: Cfg) -> IntArray:
    """The ROM: ``T[f] = floor(2^(-f / 2^F) * 2^E + 1/2)`` for f in 0..2^F-1.

    F = score_frac_bits, E = exp_frac_bits. Entries are unsigned, E+1 bits wide
    (T[0] = 2^E, all others in (2^(E-1), 2^E)). Read-only.
    """
    return _table(numerics_of(cfg))


def split_neg(d: IntLike, cfg: Cfg) -> tuple[IntArray, IntArray]:
    """Split ``d <= 0`` in Q(F) into (n, f) with ``-d = n * 2^F + f``: n = -d >> F, f = -d & (2^F-1)."""
    f_bits = numerics_of(cfg).score_frac_bits
    t = -np.asarray(d, dtype=np.int64)
    return t >> f_bits, t & ((1 << f_bits) - 1)


def exp2_neg(d: IntLike, cfg: Cfg, frac_bits: int | None = None) -> IntArray:
    """``2^(d / 2^F)`` for integer ``d <= 0`` in Q(F), as an unsigned integer in Q(frac_bits).

    F = score_frac_bits; frac_bits defaults to E = exp_frac_bits and must be >= E.
    Steps: (n, f) = :func:`split_neg` (d); v = T[f] << (frac_bits - E) (the table of
    :func:`exp2_table`); result = round_shift(v, n) (round half up), with n clamped to 63, which
    flushes to 0 every n >= frac_bits + 2.

    Error (measured exhaustively, see docs/numerics.md): at most 1 unit of Q(frac_bits)
    absolutely (0.5 from the table scaled by 2^-n, 0.5 from the shift); relative error at most
    2^-E for d > -2^F (n = 0, pure table rounding), and (2^n + 1) * 2^-frac_bits in general.
    """
    num = numerics_of(cfg)
    guard = num.exp_frac_bits if frac_bits is None else frac_bits
    guard -= num.exp_frac_bits
    if guard < 0:
        raise ValueError(f"exp2_neg: frac_bits {frac_bits} < exp_frac_bits {num.exp_frac_bits}")
    d = np.asarray(d, dtype=np.int64)
    if np.any(d > 0):
        raise ValueError("exp2_neg: the exponent d must be <= 0")
    n, f = split_neg(d, num)
    return round_shift(_table(num)[f] << guard, np.minimum(n, SHIFT_CLAMP))
