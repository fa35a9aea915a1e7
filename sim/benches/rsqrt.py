"""cocotb bench of ``em_rsqrt``: every (mant, exp) equals ``numerics.recip.rsqrt`` bit for bit.

The reference is :func:`edgemoe.hw.numerics.recip.rsqrt` called with the config whose generated
seed ROM the model was built with (:func:`.common.bench_config`). The tag input must come out
unchanged with its operand, and outputs must arrive in order (a lost, duplicated or reordered
operand fails).

Coverage: every x below 2^12 (every seed interval at every small leading-one position of both
parities), every power of two and its neighbours, all-ones, the two ends of every seed interval at
leading-one positions of both parities below, at and above WORK_BITS, and log-uniform random x
over the whole input width, at full throughput (which also asserts the latency) and under idle
cycles and back-pressure. IN_WIDTH and TAG_WIDTH are read back from the port widths.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.recip import WORK_BITS, rsqrt

from .recip import EXHAUSTIVE_BELOW, RANDOM_VECTORS
from .recip import TB as RecipTB


class TB(RecipTB):
    """One ``em_rsqrt`` instance: operands in, (mant, exp, tag) out."""

    BENCH = "rsqrt"
    #: em_rsqrt's Newton step has three register stages.
    STAGES_PER_STEP = 3

    @staticmethod
    def reference(x: np.ndarray, cfg: HardwareConfig) -> tuple[np.ndarray, np.ndarray]:
        return rsqrt(x, cfg)


# --------------------------------------------------------------------------- operands
def edge_operands(tb: TB) -> np.ndarray:
    """Powers of two and neighbours, all-ones, and both ends of every seed interval."""
    w = tb.width
    x: set[int] = {1, 2, 3, (1 << w) - 1, (1 << w) - 2}
    for k in range(w):
        x |= {(1 << k) - 1, 1 << k, (1 << k) + 1, (1 << (k + 1)) - 1}
    # The index is the parity of k and the top T-1 fraction bits of u: interval i holds
    # u in [1 + i/2^(T-1), 1 + (i+1)/2^(T-1)). Its first and last x at leading-one positions of
    # both parities below, at and above WORK_BITS (left shift, none, right shift).
    t_bits = tb.cfg.numerics.recip_table_bits
    for k in {t_bits, t_bits + 1, WORK_BITS - 1, WORK_BITS, WORK_BITS + 1, w - 2, w - 1}:
        if k < t_bits or k >= w:
            continue
        step = 1 << (k - t_bits + 1)
        for i in range(1 << (t_bits - 1)):
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
