"""cocotb bench of ``em_gate_topk``: every token's experts and scores equal
``numerics.gate.gate_topk`` bit for bit.

A word is one token: its e logits (lanes >= e carry garbage), e and k. The reference is
:func:`edgemoe.hw.numerics.gate.gate_topk` on the tokens of one (e, k) group as the rows of a
matrix, the function the golden model's GATE_TOPK calls; slots >= k must read 0.

Coverage: every e from 1 to E_MAX with k = 1, e and a random k in between; the softmax score
patterns (normal spreads from 0.05 to 60 in log2 units, the whole int16 range, all-equal rows at
the rails, one dominant expert at the first, last or a random index, ramps, int16 extremes,
terms at the flush edge) plus rows drawn from three or four levels only (ties among the kept
experts and across the k boundary); streamed under idle input cycles and output back-pressure.
E_MAX is read back from the port widths.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.gate import SCORE_BITS, gate_topk

from .common import bench_config
from .softmax_common import INT16_MAX, INT16_MIN, StreamTB, pack, score_patterns, unpack

LOGIT_WIDTH = 16
TOKEN_WIDTH = 16
#: Tokens per (e, k, pattern) group.
ROWS = 6
#: Cycles a token may take, with no idle or stall cycles (about k + 11).
CYCLES_PER_WORD = 40


class TB(StreamTB):
    """The shared stream driver, with a cycle budget for tokens that take k + 10 cycles each.

    The route-table bench uses it too.
    """

    def cycle_limit(self, n_words: int, idle: float, stall: float) -> int:
        slow = 1.0 / max(1e-3, (1.0 - idle) * (1.0 - stall))
        return int(slow * CYCLES_PER_WORD * n_words) + 200


def e_max_of(dut: SimHandleBase) -> int:
    """E_MAX from the logit port: E_MAX lanes of 16 bits."""
    return len(dut.in_logit) // LOGIT_WIDTH


def expert_width(e_max: int) -> int:
    """Bits of one expert index in the flat slot vectors: $clog2(E_MAX > 1 ? E_MAX : 2)."""
    return max(1, (e_max - 1).bit_length())


def logit_groups(
    cfg: HardwareConfig, e_max: int, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    """``(k, z[m, e])`` groups over every e in 1..E_MAX and several k, for every pattern."""
    one = 1 << cfg.numerics.score_frac_bits
    patterns = dict(score_patterns(cfg))

    def levels(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        # Three or four distinct levels: most experts tie with several others.
        lv = rng.integers(-8 * one, 8 * one, (m, 4))
        lv[:, 3] = rng.choice([INT16_MIN, INT16_MAX, 0], m)
        return np.take_along_axis(lv, rng.integers(0, 4, (m, n)), axis=1)

    patterns["ties"] = levels
    groups = []
    for e in range(1, e_max + 1):
        ks = sorted({1, e, int(rng.integers(1, e + 1))})
        for make in patterns.values():
            z = np.clip(np.asarray(make(rng, ROWS, e), np.int64), INT16_MIN, INT16_MAX)
            groups.append((ks[int(rng.integers(0, len(ks)))], z))
        # The ties pattern again with every k, where the k boundary splits a tie.
        for k in ks:
            groups.append((k, levels(rng, ROWS, e)))
    return groups


class GateTB(TB):
    """One ``em_gate_topk``: tokens of logits in, (token, k, experts, scores) out."""

    def __init__(self, dut: SimHandleBase) -> None:
        super().__init__(dut, ("token", "logit", "e", "k"), ("token", "k", "expert", "score"))
        self.cfg = bench_config("gate_topk")
        self.e_max = e_max_of(dut)
        self.xw = expert_width(self.e_max)
        assert len(dut.out_expert) == self.e_max * self.xw, "out_expert is not E_MAX slots"
        assert len(dut.out_score) == self.e_max * SCORE_BITS, "scores are not SCORE_BITS wide"
        self.log.info("E_MAX=%d config %s", self.e_max, self.cfg.name)

    async def check(
        self, groups: list[tuple[int, np.ndarray]], idle: float = 0.0, stall: float = 0.0
    ) -> None:
        """Stream every group's tokens and compare each output with gate_topk."""
        words, want, rows = [], [], []
        for k, z in groups:
            m, e = z.shape
            experts, scores = gate_topk(z, k, self.cfg)
            for i in range(m):
                token = random.getrandbits(TOKEN_WIDTH)
                logits = list(z[i]) + [
                    random.randint(INT16_MIN, INT16_MAX) for _ in range(self.e_max - e)
                ]
                words.append((token, pack(logits, LOGIT_WIDTH), e, k))
                pad = [0] * (self.e_max - k)
                want.append((token, k, experts[i].tolist() + pad, scores[i].tolist() + pad))
                rows.append(z[i].tolist())
        outputs = (await self.stream(words, len(words), idle, stall)).outputs
        for n, (got, exp, row) in enumerate(zip(outputs, want, rows)):
            token, k, expert, score = got
            got_t = (
                token,
                k,
                unpack(expert, self.xw, self.e_max),
                unpack(score, SCORE_BITS, self.e_max),
            )
            assert got_t == exp, f"token {n} (z={row}, k={exp[1]}): got {got_t}, want {exp}"


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=20, timeout_unit="ms")
async def all_sizes_and_patterns(dut: SimHandleBase) -> None:
    tb = GateTB(dut)
    await tb.reset()
    rng = np.random.default_rng(random.getrandbits(32))
    await tb.check(logit_groups(tb.cfg, tb.e_max, rng))


@cocotb.test(timeout_time=20, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.3, 0.0), (0.2, 0.6)]))
async def back_pressure(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = GateTB(dut)
    await tb.reset()
    rng = np.random.default_rng(random.getrandbits(32))
    groups = logit_groups(tb.cfg, tb.e_max, rng)
    picks = rng.choice(len(groups), size=min(len(groups), 60), replace=False)
    await tb.check([groups[i] for i in sorted(picks)], idle, stall)
