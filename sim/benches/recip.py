"""cocotb bench of ``em_recip``: every (mant, exp) equals ``numerics.recip.reciprocal`` bit for bit.

The reference is :func:`edgemoe.hw.numerics.recip.reciprocal` called with the config whose
generated seed ROM the model was built with (see :mod:`.softmax_common`). The tag input must come
out unchanged with its operand, and outputs must arrive in order (a lost, duplicated or
reordered operand fails).

Coverage: every x below 2^12 (every seed interval at every small leading-one position), every
power of two and its neighbours, all-ones, the two ends of every seed interval at several
leading-one positions, and log-uniform random x over the whole input width, at full throughput
(which also asserts the latency) and under idle cycles and back-pressure. IN_WIDTH and
TAG_WIDTH are read back from the port widths.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.recip import MANT_BITS, WORK_BITS, newton_steps, reciprocal

from .common import bench_config
from .softmax_common import StreamTB

RANDOM_VECTORS = 2000
#: Every x below this is checked.
EXHAUSTIVE_BELOW = 1 << 12


class TB(StreamTB):
    """One ``em_recip`` instance: operands in, (mant, exp, tag) out.

    ``em_rsqrt`` has the same ports and pipeline shape; its bench subclasses this with its own
    reference and stage count.
    """

    BENCH = "recip"
    #: Register stages per Newton step (em_recip: product, then the new estimate).
    STAGES_PER_STEP = 2

    @staticmethod
    def reference(x: np.ndarray, cfg: HardwareConfig) -> tuple[np.ndarray, np.ndarray]:
        return reciprocal(x, cfg)

    def __init__(self, dut: SimHandleBase) -> None:
        super().__init__(dut, ("x", "tag"), ("mant", "exp", "tag"))
        self.cfg = bench_config(self.BENCH)
        self.width = len(dut.in_x)
        self.tag_width = len(dut.in_tag)
        assert len(dut.out_mant) == MANT_BITS, f"out_mant has {len(dut.out_mant)} bits"
        assert len(dut.out_tag) == self.tag_width, "in_tag and out_tag differ in width"
        t_bits = self.cfg.numerics.recip_table_bits
        #: Register stages: normalise, seed, STAGES_PER_STEP per Newton step, mantissa.
        self.latency = 3 + self.STAGES_PER_STEP * newton_steps(t_bits)
        self.log.info(
            "IN_WIDTH=%d TAG_WIDTH=%d config %s: %d seed index bits, latency %d",
            self.width,
            self.tag_width,
            self.cfg.name,
            t_bits,
            self.latency,
        )

    async def check(self, x: np.ndarray, idle: float = 0.0, stall: float = 0.0) -> None:
        """Stream ``x`` with random tags and compare every output with the reference."""
        x = np.asarray(x, dtype=np.int64)
        assert x.min() >= 1 and int(x.max()).bit_length() <= self.width
        tags = [random.getrandbits(self.tag_width) for _ in range(len(x))]
        mant, exp = self.reference(x, self.cfg)
        want = list(zip(mant.tolist(), exp.tolist(), tags))
        res = await self.stream(list(zip(x.tolist(), tags)), len(want), idle, stall)
        for i, (got, w) in enumerate(zip(res.outputs, want)):
            assert got == w, f"operand {i}: x={int(x[i])}: got (mant, exp, tag) {got}, want {w}"
        if idle == 0.0 and stall == 0.0:
            # Full throughput: one result per cycle once the pipeline has filled.
            assert res.cycles == len(x) + self.latency, f"{len(x)} operands took {res.cycles}"


# --------------------------------------------------------------------------- operands
def edge_operands(tb: TB) -> np.ndarray:
    """Powers of two and neighbours, all-ones, and both ends of every seed interval."""
    w = tb.width
    x: set[int] = {1, 2, 3, (1 << w) - 1, (1 << w) - 2}
    for k in range(w):
        x |= {(1 << k) - 1, 1 << k, (1 << k) + 1, (1 << (k + 1)) - 1}
    # Interval i of the seed ROM holds u in [1 + i/2^T, 1 + (i+1)/2^T): its first and last u,
    # at leading-one positions below, at and above WORK_BITS (left shift, none, right shift).
    t_bits = tb.cfg.numerics.recip_table_bits
    for k in {t_bits, WORK_BITS - 1, WORK_BITS, WORK_BITS + 1, w - 1}:
        if k < t_bits or k >= w:
            continue
        step = 1 << (k - t_bits)
        for i in range(1 << t_bits):
            first = (1 << k) + i * step
            x |= {first, first + step - 1}
    return np.array(sorted(v for v in x if 1 <= v < (1 << w)), dtype=np.int64)


def random_operands(tb: TB, n: int) -> np.ndarray:
    """Log-uniform over [1, 2^IN_WIDTH): the leading-one position is uniform."""
    rng = np.random.default_rng(random.getrandbits(32))
    bits = rng.integers(1, tb.width + 1, n)
    return (1 << (bits - 1)) + (rng.integers(0, 1 << 62, n) & ((1 << (bits - 1)) - 1))


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=1, timeout_unit="ms")
async def every_small_operand(dut: SimHandleBase) -> None:
    """Every x below 2^12 back to back."""
    tb = TB(dut)
    await tb.reset()
    await tb.check(np.arange(1, min(EXHAUSTIVE_BELOW, 1 << tb.width), dtype=np.int64))


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    tb = TB(dut)
    await tb.reset()
    x = edge_operands(tb)
    await tb.check(x[np.random.default_rng(random.getrandbits(32)).permutation(len(x))], stall=0.3)


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)]))
async def random_stream(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.check(random_operands(tb, RANDOM_VECTORS), idle=idle, stall=stall)
