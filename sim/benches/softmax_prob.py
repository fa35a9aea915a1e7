"""cocotb bench of ``em_softmax_prob``: every probability equals ``numerics.softmax.softmax_probs``
bit for bit (and is 0 in a lane without a key).

A vector is LANES scores of one query row with that row's statistics (b, mant, exp). The
reference is :func:`edgemoe.hw.numerics.softmax.softmax_probs` applied to the vectors as the rows
of a matrix, with ``prob_bits`` = the config's act_width, as the golden model's ATTN_AV calls it.

Coverage: real rows (the score patterns of the stats bench, widths around LANES and up to 256,
statistics from ``online_softmax_stats`` with ``block = array_cols``) cut into LANES-key vectors
with the tail of a partial vector masked and filled with garbage, streamed at full throughput
(which also asserts the latency); every exp2 table entry; the shift E + n + exp - p on both
sides of its clamps at 0 and 63 and of the product's width; exp, mant, b and scores at their
extremes, scores above the stored max; and random vectors with random masks under idle cycles
and back-pressure. Outputs are checked in order. LANES and PROB_BITS are read back from the port
widths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.hw.numerics.softmax import SoftmaxStats, online_softmax_stats, softmax_probs

from .common import bench_config
from .softmax_common import (
    INT16_MAX,
    INT16_MIN,
    StreamTB,
    pack,
    score_patterns,
    unpack,
)

SCORE_WIDTH = 16
#: em_softmax_prob's register stages: ROM word, product, rounded probability.
LATENCY = 3
RANDOM_VECTORS = 1500


@dataclass
class Vectors:
    """Inputs: ``score`` and ``mask`` of shape (N, LANES); ``b``, ``mant``, ``exp`` of shape (N,)."""

    score: np.ndarray
    mask: np.ndarray
    b: np.ndarray
    mant: np.ndarray
    exp: np.ndarray

    @staticmethod
    def concat(parts: list[Vectors]) -> Vectors:
        return Vectors(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Vectors))
        )


class TB(StreamTB):
    """One ``em_softmax_prob`` instance: scores and row statistics in, probabilities out."""

    def __init__(self, dut: SimHandleBase) -> None:
        super().__init__(dut, ("score", "mask", "b", "mant", "exp"), ("prob",))
        self.cfg = bench_config("softmax_prob")
        self.lanes = len(dut.in_mask)
        self.prob_bits = len(dut.out_prob) // self.lanes
        assert len(dut.in_score) == SCORE_WIDTH * self.lanes, "in_score is not LANES int16 lanes"
        assert self.prob_bits == self.cfg.act_width, "PROB_BITS is not the config's act_width"
        self.log.info("LANES=%d PROB_BITS=%d config %s", self.lanes, self.prob_bits, self.cfg.name)

    async def check(self, v: Vectors, idle: float = 0.0, stall: float = 0.0) -> None:
        """Stream the vectors and compare every lane with the reference."""
        stats = SoftmaxStats(b=v.b, mant=v.mant, exp=v.exp)
        want = softmax_probs(v.score, stats, self.cfg, self.prob_bits) * v.mask
        words = [
            (pack(s, SCORE_WIDTH), pack(m, 1), b & 0xFFFF, mant, e & 0xFFFF)
            for s, m, b, mant, e in zip(
                v.score.tolist(), v.mask.tolist(), v.b.tolist(), v.mant.tolist(), v.exp.tolist()
            )
        ]
        res = await self.stream(words, len(words), idle, stall)
        got = np.array([unpack(o[0], self.prob_bits, self.lanes) for o in res.outputs])
        bad = np.argwhere(got != want)
        if len(bad):
            n, lane = (int(i) for i in bad[0])
            raise AssertionError(
                f"{len(bad)} wrong lanes in {len(np.unique(bad[:, 0]))} vectors; first: vector "
                f"{n} lane {lane}: z={int(v.score[n, lane])} mask={int(v.mask[n, lane])} "
                f"b={int(v.b[n])} mant={int(v.mant[n])} exp={int(v.exp[n])}: got "
                f"{int(got[n, lane])}, want {int(want[n, lane])}"
            )
        if idle == 0.0 and stall == 0.0:
            # Full throughput: one result per cycle once the pipeline has filled.
            assert res.cycles == len(words) + LATENCY, f"{len(words)} vectors took {res.cycles}"


# --------------------------------------------------------------------------- vectors
def row_vectors(tb: TB) -> Vectors:
    """Real rows and their statistics, cut into LANES-key vectors (tails masked, garbage)."""
    rng = np.random.default_rng(random.getrandbits(32))
    c = tb.lanes
    parts = []
    for make in score_patterns(tb.cfg).values():
        for n in sorted({1, c - 1, c, c + 1, 3 * c + 1, 129, 256}):
            z = make(rng, 3, n)
            stats = online_softmax_stats(z, tb.cfg, block=tb.cfg.array_cols)
            chunks = -(-n // c)
            padded = rng.integers(INT16_MIN, INT16_MAX + 1, (3, chunks * c))
            padded[:, :n] = z
            mask = np.zeros((3, chunks * c), dtype=np.int64)
            mask[:, :n] = 1
            parts.append(
                Vectors(
                    padded.reshape(-1, c),
                    mask.reshape(-1, c),
                    np.repeat(stats.b, chunks),
                    np.repeat(stats.mant, chunks),
                    np.repeat(stats.exp, chunks),
                )
            )
    return Vectors.concat(parts)


def _vectors(tb: TB, a: np.ndarray, b: np.ndarray, mant: np.ndarray, exp: np.ndarray) -> Vectors:
    """Vectors with scores b - a (``a`` lanes per vector row-major, padded to whole vectors)."""
    flat = np.asarray(a, dtype=np.int64).ravel()
    n = -(-len(flat) // tb.lanes)
    a = np.concatenate([flat, np.zeros(n * tb.lanes - len(flat), dtype=np.int64)])
    a = a.reshape(n, tb.lanes)
    b = np.resize(np.asarray(b, dtype=np.int64), n)
    score = np.clip(b[:, None] - a, INT16_MIN, INT16_MAX)
    return Vectors(
        score,
        np.ones_like(score),
        b,
        np.resize(np.asarray(mant, dtype=np.int64), n),
        np.resize(np.asarray(exp, dtype=np.int64), n),
    )


def edge_vectors(tb: TB) -> Vectors:
    """Every table entry, the shift at and around its clamps, and operands at their extremes."""
    num = tb.cfg.numerics
    f_bits, e_bits, p = num.score_frac_bits, num.exp_frac_bits, tb.prob_bits - 1
    rng = np.random.default_rng(random.getrandbits(32))
    parts = [
        # Every f with n = 0 and a typical row (exp = 16: one key of weight 1).
        _vectors(tb, np.arange(1 << f_bits), 100, 1 << 15, 16),
    ]
    # shift = E + n + exp - p for n in {0, 1, 5}: around 0, the product width (16 + E + 1) and 63.
    width = 16 + e_bits + 1
    for shift in (-3, -1, 0, 1, 2, width - 1, width, width + 1, 62, 63, 64, 100):
        for n in (0, 1, 5):
            a = (n << f_bits) + rng.integers(0, 1 << f_bits, tb.lanes)
            exp = shift - e_bits - n + p
            for mant in (1 << 15, (1 << 16) - 1, 1, 0):
                parts.append(_vectors(tb, a, int(rng.integers(-5000, 5000)), mant, exp))
    # exp at the int16 rails, mant extremes, the widest score differences, scores above b.
    for exp in (INT16_MIN, INT16_MIN + 1, -1, 0, INT16_MAX - 1, INT16_MAX):
        parts.append(_vectors(tb, rng.integers(0, 4 << f_bits, tb.lanes), 0, (1 << 16) - 1, exp))
    for b in (INT16_MIN, INT16_MAX):
        for mant, exp in (((1 << 16) - 1, 16), (1 << 15, 31), ((1 << 16) - 1, 0)):
            score = rng.choice(
                [INT16_MIN, INT16_MIN + 1, -1, 0, 1, INT16_MAX - 1, INT16_MAX], tb.lanes
            )
            parts.append(_vectors(tb, b - score, b, mant, exp))
    return Vectors.concat(parts)


def random_vectors(tb: TB, n: int) -> Vectors:
    """Random rows: scores mostly a little below b (some above), any mant, exp near its range."""
    rng = np.random.default_rng(random.getrandbits(32))
    shape = (n, tb.lanes)
    f_bits = tb.cfg.numerics.score_frac_bits
    b = rng.integers(INT16_MIN, INT16_MAX + 1, n)
    below = rng.integers(-(2 << f_bits), 40 << f_bits, shape) >> rng.integers(0, 8, shape)
    score = np.where(
        rng.random(shape) < 0.1,
        rng.integers(INT16_MIN, INT16_MAX + 1, shape),
        np.clip(b[:, None] - below, INT16_MIN, INT16_MAX),
    )
    mask = (rng.random(shape) < 0.85).astype(np.int64)
    return Vectors(score, mask, b, rng.integers(0, 1 << 16, n), rng.integers(-8, 72, n))


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=2, timeout_unit="ms")
async def real_rows(dut: SimHandleBase) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.check(row_vectors(tb))


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.check(edge_vectors(tb), stall=0.3)


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)]))
async def random_stream(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.check(random_vectors(tb, RANDOM_VECTORS), idle=idle, stall=stall)
