"""Scalar Python-int transcriptions of the documented integer steps of edgemoe.hw.numerics.

They follow the docstrings line by line, one element at a time, with no NumPy in the arithmetic,
so the vectorised implementation is checked against an independent reading of its specification.
"""

from __future__ import annotations

from edgemoe.hw.config import NumericsConfig
from edgemoe.hw.numerics.exp import exp2_table
from edgemoe.hw.numerics.gelu import gelu_table
from edgemoe.hw.numerics.recip import recip_seed_table, rsqrt_seed_table

M = 24  # recip.WORK_BITS
GUARD = 8  # softmax.SUM_GUARD_BITS


def rs(x: int, s: int) -> int:
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def _norm(x: int, k: int) -> int:
    return x >> (k - M) if k >= M else x << (M - k)


def _mant(y: int) -> int:
    return min(max(rs(y, M - 16), 1 << 15), (1 << 16) - 1)


def reciprocal(x: int, num: NumericsConfig) -> tuple[int, int]:
    t_bits = num.recip_table_bits
    k = x.bit_length() - 1
    u = _norm(x, k)
    y = int(recip_seed_table(num)[(u >> (M - t_bits)) & ((1 << t_bits) - 1)]) << (M - 16)
    for _ in range(1 if t_bits >= 8 else 2):
        t = (u * y) >> M
        y = (y * ((2 << M) - t)) >> M
    return _mant(y), k + 16


def rsqrt(x: int, num: NumericsConfig) -> tuple[int, int]:
    t_bits = num.recip_table_bits
    k = x.bit_length() - 1
    p = k & 1
    u = _norm(x, k)
    w = u << p
    idx = (p << (t_bits - 1)) | ((u >> (M - t_bits + 1)) & ((1 << (t_bits - 1)) - 1))
    y = int(rsqrt_seed_table(num)[idx]) << (M - 16)
    for _ in range(1 if t_bits >= 8 else 2):
        y2 = (y * y) >> M
        t = (w * y2) >> M
        y = (y * ((3 << M) - t)) >> (M + 1)
    return _mant(y), (k - p) // 2 + 16


def softmax_row(
    row: list[int], num: NumericsConfig, prob_bits: int = 16, block: int = 1
) -> tuple[int, int, int, list[int]]:
    """(b, mant, exp, probs) of one row of scores, keys consumed ``block`` at a time."""
    f_bits, e_bits = num.score_frac_bits, num.exp_frac_bits
    table = [int(v) for v in exp2_table(num)]

    def split(a: int) -> tuple[int, int]:
        return min(a >> f_bits, 63), a & ((1 << f_bits) - 1)

    b, s = None, 0
    for j0 in range(0, len(row), block):
        keys = row[j0 : j0 + block]
        b_new = max(keys) if b is None else max(b, max(keys))
        if b is not None and b_new > b:
            n, f = split(b_new - b)
            s = rs(s * table[f], min(e_bits + n, 63))
        for z in keys:
            n, f = split(b_new - z)
            s += rs(table[f] << GUARD, n)
        b = b_new
    mant, e = reciprocal(s, num)
    exp = e - e_bits - GUARD
    p = prob_bits - 1
    probs = []
    for z in row:
        a = b - z
        n, f = a >> f_bits, a & ((1 << f_bits) - 1)
        shift = min(max(e_bits + n + exp - p, 0), 63)
        probs.append(min(rs(table[f] * mant, shift), (1 << p) - 1))
    return b, mant, exp, probs


def gelu(x: int, frac_bits: int, out_bits: int, num: NumericsConfig) -> int:
    s, g = num.gelu_step_log2, num.gelu_table_frac_bits
    table = [int(v) for v in gelu_table(num)]
    t = abs(x)
    low = max(frac_bits - s, 0)
    j = (t << s) >> frac_bits
    r = t & ((1 << low) - 1)
    delta = 0 if j >= len(table) - 1 else (table[j] << low) + (table[j + 1] - table[j]) * r
    shift = g + low - frac_bits
    y = rs((max(x, 0) << shift) - delta, shift)
    return max(-(1 << (out_bits - 1)), min((1 << (out_bits - 1)) - 1, y))


def layernorm_row(
    x: list[int],
    gamma_q: list[int],
    beta_q: list[int],
    eps_q: int,
    mult: int,
    shift: int,
    out_bits: int,
    num: NumericsConfig,
) -> list[int]:
    d = len(x)
    s1 = sum(x)
    s2 = sum(v * v for v in x)
    v = d * s2 - s1 * s1 + eps_q
    r, e = rsqrt(v, num)
    out = []
    for xi, g, bt in zip(x, gamma_q, beta_q):
        n = rs((d * xi - s1) * r, e - num.norm_frac_bits)
        y = rs((n * g + bt) * mult, shift)
        out.append(max(-(1 << (out_bits - 1)), min((1 << (out_bits - 1)) - 1, y)))
    return out
