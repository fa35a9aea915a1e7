"""Single-pass (online) softmax in the base-2 domain, exactly as the attention unit computes it.

Scores ``z`` are int16 in Q(F), F = score_frac_bits, already in the base-2 domain (the compiler
folds log2(e) and 1/sqrt(d) into the score requantization), so the row softmax is
``P[j] = 2^(z[j] - b) / S`` with ``b = max z`` and ``S = sum_j 2^(z[j] - b)``.

Pass 1 (ATTN_QK, while scores are produced, in blocks of ``array_cols`` keys in increasing key
order) keeps per row a running max ``b`` (int16) and running sum ``S`` (unsigned fixed point,
Q(E + SUM_GUARD_BITS)), then takes the reciprocal of S (:func:`online_softmax_stats`). Pass 2 (ATTN_AV, while multiplying
by V) forms each probability from the score and the row statistics (:func:`softmax_probs`).

Exponentials use the exp2 ROM ``T`` of :mod:`.exp` (E = exp_frac_bits): ``2^(-(n*2^F + f)/2^F)
= T[f] * 2^-(E + n)``, always applied as a multiply by T[f] followed by one rounding shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .exp import SHIFT_CLAMP, exp2_table, split_neg
from .fixedpoint import IntArray, IntLike, round_shift
from .params import Cfg, numerics_of
from .recip import reciprocal

#: Extra fraction bits of the running sum beyond exp_frac_bits. Without them a row of 1024 terms
#: that each round (or flush) by half an LSB of Q(E) loses up to 2^-7 of the sum; with 8 guard
#: bits the loss is below 2^-15. S is Q(E + 8), at most E + 8 + 16 = 40 bits for rows <= 65535.
SUM_GUARD_BITS = 8
#: Bytes per row of packed statistics.
STATS_BYTES = 8
_STATS_DTYPE = np.dtype([("b", "<i2"), ("mant", "<u2"), ("exp", "<i2"), ("pad", "<u2")])


@dataclass(frozen=True)
class SoftmaxStats:
    """Per-row statistics: running max ``b`` (int16, Q(F)) and ``1/S ~= mant * 2^-exp``.

    ``mant`` is in [2^15, 2^16); ``exp`` is such that the real value ``1/s`` (s = the sum in real
    units, s >= 1) is ``mant * 2^-exp``, so ``exp`` is in [16, 31] for rows up to 65535 keys ([16, 26] up to 1024).
    """

    b: IntArray
    mant: IntArray
    exp: IntArray


def online_softmax_stats(z: IntLike, cfg: Cfg, block: int = 1) -> SoftmaxStats:
    """Row statistics of scores ``z[m, n]`` (int16 in Q(F)), one pass over the keys.

    Keys arrive in blocks of ``block`` consecutive keys, in increasing key order, as the MAC
    array produces them (ATTN_QK uses ``block = array_cols``: one output tile of scores per
    step; the MoE gate uses the whole row). With E = exp_frac_bits, G = SUM_GUARD_BITS and T the
    exp2 ROM, ``e(a) = round_shift(T[a & (2^F-1)] << G, a >> F)`` is 2^(-a/2^F) in Q(E+G). Per
    row, S = 0 and for each block K:

    - ``b' = max(z[K])`` for the first block, else ``max(b, max(z[K]))``;
    - if ``b' > b`` (not the first block): ``S = round_shift(S * T[f], E + n)`` where
      ``(n, f)`` split ``b' - b`` (n clamped to 63): the old sum rescaled to the new max;
    - ``S = S + sum_{j in K} e(b' - z[j])`` (an exact integer sum: order inside a block does
      not matter), ``b = b'``.

    Finally ``(mant, e) = reciprocal(S)`` and ``exp = e - E - G``, so 1/s = mant * 2^-exp. All
    shifts round half up. S never exceeds n_keys * 2^(E+G) (< 2^(E+G+16)); the products S * T[f]
    are < 2^57. With ``block = 1`` this is the per-key online update of Edge-MoE.
    """
    num = numerics_of(cfg)
    z = np.asarray(z, dtype=np.int64)
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"online_softmax_stats: scores must be [m, n>=1], got shape {z.shape}")
    if block < 1:
        raise ValueError(f"online_softmax_stats: block must be >= 1, got {block}")
    e_bits, guard = num.exp_frac_bits, SUM_GUARD_BITS
    table = exp2_table(num)

    def term(a: IntArray) -> IntArray:
        n, f = split_neg(-a, num)
        return round_shift(table[f] << guard, np.minimum(n, SHIFT_CLAMP))

    b = z[:, :block].max(axis=1)
    s = term(b[:, None] - z[:, :block]).sum(axis=1)
    for j0 in range(block, z.shape[1], block):
        zk = z[:, j0 : j0 + block]
        b_new = np.maximum(b, zk.max(axis=1))
        n, f = split_neg(b - b_new, num)
        rescaled = round_shift(s * table[f], np.minimum(e_bits + n, SHIFT_CLAMP))
        s = np.where(b_new > b, rescaled, s) + term(b_new[:, None] - zk).sum(axis=1)
        b = b_new
    mant, e = reciprocal(s, num)
    return SoftmaxStats(b=b, mant=mant, exp=e - e_bits - guard)


def pack_stats(stats: SoftmaxStats) -> npt.NDArray[np.uint8]:
    """Statistics as bytes, ``[m, 8]`` uint8, one row per query, little endian:

    ======  =====  ==========================================
    bytes   type   field
    ======  =====  ==========================================
    0-1     int16  b, running max in Q(score_frac_bits)
    2-3     uint16 mant, reciprocal mantissa in [2^15, 2^16)
    4-5     int16  exp, reciprocal exponent (1/s = mant * 2^-exp)
    6-7     -      zero
    ======  =====  ==========================================
    """
    rec = np.zeros(len(stats.b), dtype=_STATS_DTYPE)
    rec["b"], rec["mant"], rec["exp"] = stats.b, stats.mant, stats.exp
    return rec.view(np.uint8).reshape(-1, STATS_BYTES)


def unpack_stats(raw: npt.ArrayLike) -> SoftmaxStats:
    """Inverse of :func:`pack_stats`: ``raw`` is ``[m, 8]`` uint8 (or ``m * 8`` bytes)."""
    data = np.ascontiguousarray(
        np.frombuffer(raw, np.uint8)
        if isinstance(raw, (bytes, bytearray))
        else np.asarray(raw, np.uint8)
    )
    if data.size % STATS_BYTES:
        raise ValueError(f"unpack_stats: {data.size} bytes is not a multiple of {STATS_BYTES}")
    rec = data.reshape(-1).view(_STATS_DTYPE)
    return SoftmaxStats(
        b=rec["b"].astype(np.int64),
        mant=rec["mant"].astype(np.int64),
        exp=rec["exp"].astype(np.int64),
    )


def softmax_probs(z: IntLike, stats: SoftmaxStats, cfg: Cfg, prob_bits: int = 16) -> IntArray:
    """Probabilities ``P[i, j]`` in Q(p), p = prob_bits - 1, from scores and row statistics.

    Steps: ``d = min(z[i, j] - b_i, 0)`` (scores above the stored max count as the max);
    (n, f) = split of -d; ``P = round_shift(T[f] * mant_i, E + n + exp_i - p)`` with the shift
    clamped to [0, 63]; then ``min(P, 2^p - 1)`` so P fits a signed prob_bits-bit multiplier
    operand (P <= 32767 for prob_bits = 16). This is what ATTN_AV multiplies V by.
    """
    num = numerics_of(cfg)
    z = np.asarray(z, dtype=np.int64)
    p = prob_bits - 1
    n, f = split_neg(np.minimum(z - stats.b[:, None], 0), num)
    shift = np.clip(num.exp_frac_bits + n + stats.exp[:, None] - p, 0, SHIFT_CLAMP)
    probs = round_shift(exp2_table(num)[f] * stats.mant[:, None], shift)
    return np.minimum(probs, (1 << p) - 1)


def softmax(z: IntLike, cfg: Cfg, prob_bits: int = 16, block: int = 1) -> IntArray:
    """Row softmax of ``z[m, n]`` in Q(prob_bits - 1): probs from the stats of the same scores."""
    return softmax_probs(z, online_softmax_stats(z, cfg, block), cfg, prob_bits)
