"""cocotb bench of ``em_route_table``: its writes build the route table of ``hw.layouts``.

One operation is m tokens of (token, k, experts, scores) as ``numerics.gate.gate_topk`` chooses
them (the per-token contract em_gate_topk is checked against in the ``gate_topk`` bench), with
in_last on the last token and the operation's e and capacity on the cfg pins. The write stream
is applied to a byte array filled with garbage and compared with
``hw.layouts.pack_route_table(*numerics.gate.route_table(experts, scores, e, capacity))`` on the
bytes the golden model's GATE_TOPK writes (every count and the valid list entries): each of
those words must be written exactly once and nothing else at all.

Coverage: e from 1 to E_MAX, k from 1 to e, m from 1 to 40 tokens with logits of the softmax
score patterns (so one expert can take every token, and many take none), capacity = m (as
GATE_TOPK sets it) or larger up to 65535; operations back to back (the counts must restart from
0), under idle input cycles and output back-pressure.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase
from cocotb.triggers import FallingEdge

from edgemoe.hw import layouts
from edgemoe.hw.numerics.gate import SCORE_BITS, gate_topk, route_table

from .common import bench_config
from .gate_topk import TB, expert_width
from .softmax_common import INT16_MAX, INT16_MIN, pack, score_patterns

OPERATIONS = 40
MAX_TOKENS = 40
#: Fill of the bytes no write reached: not a value a count or entry can take by chance twice.
GARBAGE = 0xA7


class RouteTB(TB):
    """One ``em_route_table``: per-token choices in, (offset, word) writes out."""

    def __init__(self, dut: SimHandleBase) -> None:
        super().__init__(dut, ("token", "k", "expert", "score", "last"), ("offset", "data"))
        self.cfg = bench_config("route_table")
        self.e_max = len(dut.in_score) // SCORE_BITS
        self.xw = expert_width(self.e_max)
        assert len(dut.in_expert) == self.e_max * self.xw, "in_expert is not E_MAX slots"
        self.log.info("E_MAX=%d config %s", self.e_max, self.cfg.name)

    def operation(self, rng: np.random.Generator) -> tuple[int, int, np.ndarray, np.ndarray]:
        """A random operation: (e, capacity, experts[m, k], scores[m, k]) from gate_topk."""
        e = int(rng.integers(1, self.e_max + 1))
        k = int(rng.integers(1, e + 1))
        m = int(rng.integers(1, MAX_TOKENS + 1))
        make = random.choice(list(score_patterns(self.cfg).values()))
        z = np.clip(np.asarray(make(rng, m, e), np.int64), INT16_MIN, INT16_MAX)
        experts, scores = gate_topk(z, k, self.cfg)
        capacity = int(rng.choice([m, m, m + int(rng.integers(1, 100)), 65535]))
        return e, capacity, experts, scores

    async def check(
        self,
        e: int,
        capacity: int,
        experts: np.ndarray,
        scores: np.ndarray,
        idle: float = 0.0,
        stall: float = 0.0,
    ) -> None:
        """Run one operation and compare the written bytes with the golden table."""
        m, k = experts.shape
        counts, tokens, table_scores = route_table(experts, scores, e, capacity)
        want = np.frombuffer(layouts.pack_route_table(counts, tokens, table_scores), np.uint8)
        # The words GATE_TOPK writes: every count, then each list's valid entries.
        expected = {layouts.ROUTE_COUNT_BYTES * x for x in range(e)}
        for x in range(e):
            base = layouts.route_list_offset(e, capacity, x)
            expected |= {base + layouts.ROUTE_ENTRY_BYTES * s for s in range(int(counts[x]))}

        pad = [0] * (self.e_max - k)
        words = [
            (
                t,
                k,
                pack(list(experts[t]) + pad, self.xw),
                pack(list(scores[t]) + pad, SCORE_BITS),
                int(t == m - 1),
            )
            for t in range(m)
        ]
        await FallingEdge(self.dut.clk)
        self.dut.cfg_e.value = e
        self.dut.cfg_capacity.value = capacity
        writes = (await self.stream(words, len(expected), idle, stall)).outputs

        table = np.full(len(want), GARBAGE, np.uint8)
        seen: set[int] = set()
        for offset, data in writes:
            assert offset in expected, f"write to {offset:#x}, not a word GATE_TOPK writes"
            assert offset not in seen, f"word {offset:#x} written twice"
            seen.add(offset)
            table[offset : offset + 4] = np.frombuffer(data.to_bytes(4, "little"), np.uint8)
        where = np.zeros(len(want), bool)
        for offset in expected:
            where[offset : offset + 4] = True
        bad = np.flatnonzero(where & (table != want))
        assert bad.size == 0, (
            f"e={e} k={k} m={m} capacity={capacity}: {bad.size} bytes differ, first at "
            f"{int(bad[0]):#x}: got {table[bad[0]]:#04x}, want {want[bad[0]]:#04x}\n"
            f"  counts={counts.tolist()}\n  experts={experts.tolist()}"
        )


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=50, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.6)]))
async def operations(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = RouteTB(dut)
    await tb.reset()
    rng = np.random.default_rng(random.getrandbits(32))
    # The extremes first: one expert, k = 1 and one token; k = e = E_MAX.
    z1 = np.zeros((1, 1), np.int64)
    await tb.check(1, 1, *gate_topk(z1, 1, tb.cfg), idle, stall)
    zf = rng.integers(INT16_MIN, INT16_MAX + 1, (MAX_TOKENS, tb.e_max))
    await tb.check(tb.e_max, MAX_TOKENS, *gate_topk(zf, tb.e_max, tb.cfg), idle, stall)
    for _ in range(OPERATIONS):
        await tb.check(*tb.operation(rng), idle, stall)
