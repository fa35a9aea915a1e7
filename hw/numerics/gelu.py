"""GELU as ReLU minus a tabulated correction (the Edge-MoE scheme).

``GELU(x) = x * Phi(x) = ReLU(x) - delta(|x|)`` with ``delta(t) = t * (1 - Phi(t))``, an even,
small (max 0.17), smooth function that vanishes quickly: it is read from a table with step
``h = 2^-s`` (s = gelu_step_log2) on [0, gelu_table_max), linearly interpolated, and taken as 0
beyond the table (delta(6) < 1e-8).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from edgemoe.hw.config import NumericsConfig

from .fixedpoint import IntArray, IntLike, round_shift, saturate
from .params import Cfg, numerics_of

#: Largest supported input format Q(frac_bits) (the MATMUL gelu_frac field is 4 bits).
MAX_FRAC_BITS = 15


def _delta(t: float) -> float:
    return t * 0.5 * math.erfc(t / math.sqrt(2.0))


@cache
def _table(num: NumericsConfig) -> IntArray:
    step = 1.0 / (1 << num.gelu_step_log2)
    scale = 1 << num.gelu_table_frac_bits
    t = np.array(
        [math.floor(_delta(j * step) * scale + 0.5) for j in range(num.gelu_table_entries)],
        dtype=np.int64,
    )
    t.setflags(write=False)
    return t


def gelu_table(cfg: Cfg) -> IntArray:
    """The ROM: ``D[j] = floor(delta(j * 2^-s) * 2^G + 1/2)`` for j in 0..gelu_table_entries-1.

    s = gelu_step_log2, G = gelu_table_frac_bits; entries are unsigned and below 0.17 * 2^G.
    The last entry is only an interpolation end point. Read-only.
    """
    return _table(numerics_of(cfg))


def gelu(x: IntLike, frac_bits: int, out_bits: int, cfg: Cfg) -> IntArray:
    """GELU of ``x`` in Q(frac_bits) (0..15), returned in Q(frac_bits), saturated to out_bits.

    With s = gelu_step_log2, G = gelu_table_frac_bits, N = gelu_table_entries, D the table:

    1. ``t = |x|``; ``L = max(frac_bits - s, 0)`` (fraction bits below the table step).
    2. ``j = (t << s) >> frac_bits`` (table index), ``r = t & (2^L - 1)`` (interpolation weight).
    3. If ``j >= N - 1``: ``delta = 0``; else ``delta = D[j] * 2^L + (D[j+1] - D[j]) * r`` in
       Q(G + L) (exact: no rounding yet).
    4. ``y = round_shift((max(x, 0) << (G - s)) - delta, G + L - frac_bits)`` (one rounding,
       half up), then ``saturate(y, out_bits)``. (G + L - frac_bits is G - s, or G - frac_bits
       when frac_bits < s: the index step is then coarser than the table step, r = 0.)

    Error against the exact GELU of the same input: interpolation (< 1.1e-4 for s = 5) plus
    table rounding (2^-(G+1)) plus output rounding (2^-(frac_bits+1)); measured in docs/numerics.md.
    """
    num = numerics_of(cfg)
    if not 0 <= frac_bits <= MAX_FRAC_BITS:
        raise ValueError(f"gelu: frac_bits {frac_bits} outside [0, {MAX_FRAC_BITS}]")
    s, g = num.gelu_step_log2, num.gelu_table_frac_bits
    table = _table(num)
    x = np.asarray(x, dtype=np.int64)
    t = np.abs(x)
    low = max(frac_bits - s, 0)
    j = (t << s) >> frac_bits
    r = t & ((1 << low) - 1)
    inside = j < len(table) - 1
    jj = np.where(inside, j, 0)
    delta = np.where(inside, (table[jj] << low) + (table[jj + 1] - table[jj]) * r, 0)
    shift = g + low - frac_bits
    y = round_shift((np.maximum(x, 0) << shift) - delta, shift)
    return saturate(y, out_bits)
