"""Shared driver of the stream benches (``recip``, ``rsqrt``, ``softmax_stats``,
``softmax_prob``, ``gate_topk``, ``route_table``).

Each bench's toplevel has one valid/ready input stream and one valid/ready output stream whose
pins are named ``in_*`` and ``out_*``. :class:`StreamTB` owns the clock and reset and moves a
list of input words through the block, with optional idle input cycles and output back-pressure,
and returns every output word in arrival order for the bench to compare with the numerics.

The HardwareConfig whose generated headers the model was built with reaches the bench as JSON in
:data:`CONFIG_ENV` (the variable the ``gelu`` bench reads too), so the reference is always
called with the numerics the RTL's tables came from.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.softmax import SUM_GUARD_BITS

#: Environment variable holding the JSON of the HardwareConfig the model was built for.
#: Idle cycles after the last expected output in which no further output may appear.
DRAIN_CYCLES = 16


def pack(values: Sequence[int] | np.ndarray, width: int) -> int:
    """Lane values (signed or not) into one flat vector, lane i at bits [i*width +: width]."""
    mask = (1 << width) - 1
    return sum((int(x) & mask) << (i * width) for i, x in enumerate(values))


def unpack(word: int, width: int, lanes: int, signed: bool = False) -> list[int]:
    """Inverse of :func:`pack`: ``lanes`` fields of ``width`` bits, sign-extended if asked."""
    fields = [(word >> (i * width)) & ((1 << width) - 1) for i in range(lanes)]
    if signed:
        return [x - (1 << width) if x >> (width - 1) else x for x in fields]
    return fields


def to_signed(x: int, width: int) -> int:
    """``x`` read as a two's-complement ``width``-bit number."""
    return x - (1 << width) if x >> (width - 1) else x


@dataclass
class StreamResult:
    """What :meth:`StreamTB.stream` saw: outputs in order, cycles, and refused input cycles."""

    outputs: list[tuple[int, ...]]
    cycles: int
    refused: int


class StreamTB:
    """Owns the clock and reset of one block and drives its input and output handshakes.

    ``in_pins`` and ``out_pins`` name the data pins (without the ``in_``/``out_`` prefix) in the
    order of the tuples :meth:`stream` takes and returns.
    """

    def __init__(self, dut: SimHandleBase, in_pins: Sequence[str], out_pins: Sequence[str]) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.in_pins = [getattr(dut, f"in_{p}") for p in in_pins]
        self.out_pins = [getattr(dut, f"out_{p}") for p in out_pins]
        Clock(dut.clk, 10, unit="ns").start()
        dut.in_valid.value = 0
        dut.out_ready.value = 0

    def cycle_limit(self, n_words: int, idle: float, stall: float) -> int:
        """Cycles :meth:`stream` may take before it reports the block stuck."""
        return 20 * n_words + 200

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid is set right after reset"

    async def stream(
        self,
        words: Sequence[tuple[int, ...]],
        n_out: int,
        idle: float = 0.0,
        stall: float = 0.0,
    ) -> StreamResult:
        """Send every input word, collect ``n_out`` output words, then check nothing follows
        (for :data:`DRAIN_CYCLES`).

        ``idle`` is the probability that the source holds ``in_valid`` low in a cycle (its data
        pins then carry garbage), ``stall`` the probability that the sink holds ``out_ready``
        low. Inputs change on the falling edge and handshakes are sampled once the values
        settle, so both sides see exactly what the rising edge will see. An output the sink
        refuses must stay valid and unchanged until it is taken.
        """
        dut = self.dut
        outputs: list[tuple[int, ...]] = []
        held: tuple[int, ...] | None = None  # output the sink refused last cycle
        sent = cycles = refused = 0
        limit = self.cycle_limit(max(len(words), n_out), idle, stall)
        while sent < len(words) or len(outputs) < n_out:
            cycles += 1
            assert cycles < limit, f"stuck: {sent} of {len(words)} sent, {len(outputs)} received"
            await FallingEdge(dut.clk)
            valid = sent < len(words) and random.random() >= idle
            for i, pin in enumerate(self.in_pins):
                pin.value = words[sent][i] if valid else random.getrandbits(len(pin))
            dut.in_valid.value = int(valid)
            ready = random.random() >= stall
            dut.out_ready.value = int(ready)
            await ReadOnly()
            if valid:
                if dut.in_ready.value:
                    sent += 1
                else:
                    refused += 1
            if dut.out_valid.value:
                word = tuple(pin.value.to_unsigned() for pin in self.out_pins)
                assert held is None or word == held, (
                    f"output {len(outputs)}: changed while out_ready was low"
                )
                if ready:
                    assert len(outputs) < n_out, f"output {len(outputs)} is one too many"
                    outputs.append(word)
                held = None if ready else word
            else:
                assert held is None, f"output {len(outputs)}: out_valid dropped while stalled"
        for _ in range(DRAIN_CYCLES):
            await FallingEdge(dut.clk)
            dut.in_valid.value = 0
            dut.out_ready.value = 1
            await ReadOnly()
            assert not dut.out_valid.value, f"an output beyond the {n_out} expected"
        self.log.info(
            "%d inputs, %d outputs in %d cycles (idle=%.2f stall=%.2f, %d refused)",
            len(words),
            n_out,
            cycles,
            idle,
            stall,
            refused,
        )
        return StreamResult(outputs, cycles, refused)


# --------------------------------------------------------------------------- score patterns
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
#: ``make(rng, m, n)``: an [m, n] int64 score matrix, int16 in Q(score_frac_bits).
Pattern = Callable[[np.random.Generator, int, int], np.ndarray]


def score_patterns(cfg: HardwareConfig) -> dict[str, Pattern]:
    """Score matrices that exercise the online softmax, by name.

    Normal scores of several spreads (in log2 units) around a per-row offset, the whole int16
    range, all-equal rows (the first two at the int16 rails), one dominant score (at the first,
    the last or a random key), increasing ramps (every key a new max; steps from 1 LSB to
    flushing the running sum) and decreasing ones, int16 extremes only, and keys a few LSBs
    around the differences at which a term of the sum goes from 1 LSB to 0.
    """
    num = cfg.numerics
    one = 1 << num.score_frac_bits
    # T[f] << G is at most 2^(E+G): shifted by E+G+1 it rounds to 1 (f = 0) or 0, by E+G+2 to 0.
    span = num.exp_frac_bits + SUM_GUARD_BITS + 1

    def normal(std: float) -> Pattern:
        def make(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
            return np.round(rng.normal(0, std * one, (m, n)) + rng.normal(0, 4 * one, (m, 1)))

        return make

    def full_range(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        return rng.integers(INT16_MIN, INT16_MAX + 1, (m, n))

    def all_equal(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        level = rng.integers(INT16_MIN, INT16_MAX + 1, (m, 1))
        level[: min(m, 2), 0] = (INT16_MIN, INT16_MAX)[: min(m, 2)]
        return np.repeat(level, n, axis=1)

    def dominant(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        z = rng.integers(-2 * one, 2 * one, (m, n)) - rng.integers(4, 40, (m, 1)) * one
        where = rng.integers(0, n, m)
        where[: min(m, 2)] = (0, n - 1)[: min(m, 2)]
        z[np.arange(m), where] = rng.integers(0, 8 * one, m)
        return z

    def increasing(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        step = rng.choice([1, 3, one // 8, one, 9 * one, 31 * one], (m, 1))
        step = np.minimum(step, (INT16_MAX - INT16_MIN) // max(n - 1, 1))
        room = 1 + INT16_MAX - INT16_MIN - step[:, 0] * (n - 1)
        return INT16_MIN + rng.integers(0, room)[:, None] + step * np.arange(n)

    def decreasing(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        return increasing(rng, m, n)[:, ::-1]

    def extremes(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        return rng.choice([INT16_MIN, INT16_MIN + 1, 0, INT16_MAX - 1, INT16_MAX], (m, n))

    def flush_edge(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
        spans = span + rng.integers(0, 2, (m, 1))
        z = np.full((m, n), INT16_MAX) - spans * one + rng.integers(-3, 4, (m, n))
        z[:, rng.integers(0, n)] = INT16_MAX
        return z

    def clipped(make: Pattern) -> Pattern:
        def clip(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
            z = np.asarray(make(rng, m, n), dtype=np.int64)
            return np.clip(z, INT16_MIN, INT16_MAX)

        return clip

    patterns: dict[str, Pattern] = {
        "normal 0.05": normal(0.05),
        "normal 1": normal(1.0),
        "normal 8": normal(8.0),
        "normal 60": normal(60.0),
        "full int16 range": full_range,
        "all equal": all_equal,
        "one dominant": dominant,
        "increasing": increasing,
        "decreasing": decreasing,
        "int16 extremes": extremes,
        "flush edge": flush_edge,
    }
    return {name: clipped(make) for name, make in patterns.items()}
