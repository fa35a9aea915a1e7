"""cocotb bench of ``em_requant``: every output equals ``fixedpoint.requantize`` bit for bit.

The reference is ``requantize(wrap(acc + bias, ACC_WIDTH), mult, shift, OUT_WIDTH)`` from
:mod:`edgemoe.hw.numerics.fixedpoint`, the same code the golden model runs. The bench streams
vectors through the valid/ready handshake, optionally with idle input cycles and output
back-pressure, and checks outputs in order (a lost, duplicated or reordered word fails too).

Parameters are read back from port widths, so the bench works for any LANES/ACC_WIDTH/OUT_WIDTH.
Run it through :class:`edgemoe.sim.runner.RtlRunner` (``tests/sim/test_rtl_requant.py``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from edgemoe.hw.numerics.fixedpoint import requantize, wrap

BIAS_WIDTH = 32
MULT_WIDTH = 16
SHIFT_WIDTH = 6
RANDOM_VECTORS = 1500


@dataclass
class Vectors:
    """Per-lane operands, each an int64 array of shape (n, LANES)."""

    acc: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray


class TB:
    """Owns the clock and reset of one ``em_requant`` instance and drives its two handshakes."""

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.lanes = len(dut.in_bias) // BIAS_WIDTH
        self.acc_width = len(dut.in_acc) // self.lanes
        self.out_width = len(dut.out_data) // self.lanes
        self.log.info(
            "LANES=%d ACC_WIDTH=%d OUT_WIDTH=%d", self.lanes, self.acc_width, self.out_width
        )
        Clock(dut.clk, 10, unit="ns").start()
        dut.in_valid.value = 0
        dut.out_ready.value = 0

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid is set right after reset"

    def expected(self, v: Vectors) -> np.ndarray:
        return requantize(wrap(v.acc + v.bias, self.acc_width), v.mult, v.shift, self.out_width)

    def _unpack(self, word: int) -> list[int]:
        w = self.out_width
        lanes = ((word >> (i * w)) & ((1 << w) - 1) for i in range(self.lanes))
        return [x - (1 << w) if x >> (w - 1) else x for x in lanes]

    async def stream(self, v: Vectors, idle: float = 0.0, stall: float = 0.0) -> None:
        """Send every vector and check every output in order.

        ``idle`` is the probability that the source holds ``in_valid`` low in a cycle (its data
        pins then carry garbage), ``stall`` the probability that the sink holds ``out_ready`` low.
        Inputs change on the falling edge and handshakes are sampled once the values settle,
        so both sides see exactly what the rising edge will see.
        """
        dut = self.dut
        pins = (dut.in_acc, dut.in_bias, dut.in_mult, dut.in_shift)
        widths = (self.acc_width, BIAS_WIDTH, MULT_WIDTH, SHIFT_WIDTH)
        words = [
            [_pack(row, w) for row, w in zip(rows, widths)]
            for rows in zip(v.acc, v.bias, v.mult, v.shift)
        ]
        want = self.expected(v).tolist()
        sent = received = cycles = 0
        while received < len(want):
            cycles += 1
            assert cycles < 10 * len(want) + 100, f"stuck: {sent} sent, {received} received"
            await FallingEdge(dut.clk)
            valid = sent < len(words) and random.random() >= idle
            values = words[sent] if valid else [random.getrandbits(len(p)) for p in pins]
            for pin, value in zip(pins, values):
                pin.value = value
            dut.in_valid.value = int(valid)
            dut.out_ready.value = int(random.random() >= stall)
            await ReadOnly()
            if valid and dut.in_ready.value:
                sent += 1
            if dut.out_valid.value and dut.out_ready.value:
                got = self._unpack(dut.out_data.value.to_unsigned())
                assert got == want[received], (
                    f"vector {received}: got {got}, want {want[received]}\n"
                    f"  acc={v.acc[received].tolist()}\n  bias={v.bias[received].tolist()}\n"
                    f"  mult={v.mult[received].tolist()}\n  shift={v.shift[received].tolist()}"
                )
                received += 1
        self.log.info(
            "%d vectors in %d cycles (idle=%.2f stall=%.2f)", len(want), cycles, idle, stall
        )
        if idle == 0.0 and stall == 0.0:
            # Full throughput: one result per cycle once the two stages have filled.
            assert cycles == len(want) + 2, f"{len(want)} vectors took {cycles} cycles"


def _pack(row: np.ndarray, width: int) -> int:
    """Lane values (signed or not) into one flat vector, lane i at bits [i*width +: width]."""
    mask = (1 << width) - 1
    return sum((int(x) & mask) << (i * width) for i, x in enumerate(row))


# --------------------------------------------------------------------------- vectors
def random_vectors(tb: TB, n: int) -> Vectors:
    """Operands spread over magnitudes so results land in range, at the rails and in between."""
    rng = np.random.default_rng(random.getrandbits(32))
    shape = (n, tb.lanes)
    aw = tb.acc_width
    # Accumulator magnitude 2**L with L uniform: small and huge values are equally likely.
    bits = rng.integers(0, aw, shape)
    acc = rng.integers(-(1 << 62), 1 << 62, shape) >> (62 - bits)
    acc = np.where(
        rng.random(shape) < 0.1, rng.integers(-(1 << (aw - 1)), 1 << (aw - 1), shape), acc
    )
    bias = rng.integers(-(1 << 31), 1 << 31, shape) >> rng.integers(0, 32, shape)
    mult = rng.integers(0, 1 << MULT_WIDTH, shape)
    # Half the shifts bring |acc * mult| near the output range (+-4 bits), half are uniform.
    aimed = np.clip(bits + MULT_WIDTH - tb.out_width + rng.integers(-4, 5, shape), 0, 63)
    shift = np.where(rng.random(shape) < 0.5, aimed, rng.integers(0, 64, shape))
    return Vectors(acc, bias, mult, shift)


def edge_vectors(tb: TB) -> Vectors:
    """Corner operands, one per lane slot, padded to whole vectors with neutral lanes."""
    aw, ow = tb.acc_width, tb.out_width
    amax, amin = (1 << (aw - 1)) - 1, -(1 << (aw - 1))
    bmax, bmin = (1 << 31) - 1, -(1 << 31)
    cases: list[tuple[int, int, int, int]] = []
    for acc in (amax, amin, 0, 1, -1):
        for bias in (0, 1, -1, bmax, bmin):  # amax + 1 and amin - 1 wrap around
            for mult in (0, 1, 65535, 32768):
                for shift in (0, 1, 15, 16, 31, 47, 62, 63):
                    cases.append((acc, bias, mult, shift))
    # Exact saturation rails and one past them, both signs.
    for y in ((1 << (ow - 1)) - 1, 1 << (ow - 1), -(1 << (ow - 1)), -(1 << (ow - 1)) - 1):
        cases += [(y, 0, 1, 0), (y << 8, 0, 1, 8), (y, 0, 65535, 16)]
    # Rounding ties x.5 (up, also for negatives: -2.5 -> -2) and their neighbours, reached
    # through acc alone and through an odd acc times mult = 2**(s-1).
    for s in (1, 2, 7, 16, 30):
        for q in (0, 1, 2, -1, -2, -3, 37, -38):
            tie = q * (1 << s) + (1 << (s - 1))
            cases += [(tie, 0, 1, s), (tie - 1, 0, 1, s), (tie + 1, 0, 1, s)]
            if s <= MULT_WIDTH:
                cases.append((2 * q + 1, 0, 1 << (s - 1), s))
    cases = [c for c in cases if amin <= c[0] <= amax]
    cases += [(0, 0, 0, 0)] * (-len(cases) % tb.lanes)
    a = np.array(cases, dtype=np.int64).reshape(-1, tb.lanes, 4)
    return Vectors(a[..., 0], a[..., 1], a[..., 2], a[..., 3])


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=1, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.stream(edge_vectors(tb))


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)]))
async def random_stream(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.stream(random_vectors(tb, RANDOM_VECTORS), idle=idle, stall=stall)
