"""cocotb bench of ``em_gelu``: every output equals ``numerics.gelu.gelu`` bit for bit.

The reference is :func:`edgemoe.hw.numerics.gelu.gelu` (the code the golden model runs for a
MATMUL with ``gelu`` set) called with the :class:`~edgemoe.hw.config.HardwareConfig` whose
generated ``em_tables.svh`` the model was built with. That config reaches the bench as JSON in
the environment variable :data:`CONFIG_ENV` (see :func:`bench_env`), so the bench works for any
numerics parameters, not only the presets'.

Coverage: every int16 code at full throughput (which also asserts the latency) in as many
formats as :data:`SWEEP_CYCLES` allows (4 with 4 lanes, all 16 with 16 lanes), every int8 code in
every format with both output widths, the table boundary and interpolation extremes of every
format, and random vectors with a random format per vector under idle input cycles and output
back-pressure. Outputs are checked in order (a lost, duplicated or reordered vector fails), and an
output held back by the consumer must not change.

LANES is read back from the port width. Run through :class:`edgemoe.sim.runner.RtlRunner`
(``tests/sim/test_rtl_gelu.py``).
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

from edgemoe.hw.numerics.gelu import MAX_FRAC_BITS, gelu
from edgemoe.sim.benches.common import bench_config

X_WIDTH = 16
#: Register stages between an accepted input and its output (em_gelu's documented latency).
LATENCY = 4
#: Cycles spent sweeping all 65536 int16 codes (about 4 s of simulation): 65536 / LANES per format.
SWEEP_CYCLES = 1 << 16
#: Formats swept first: Q11 (the report's figure), no fraction, the widest, then the table step s.
SWEEP_FIRST = (11, 0, MAX_FRAC_BITS)
RANDOM_VECTORS = 1500


@dataclass
class Vectors:
    """Inputs: ``x`` int64 of shape (n, LANES); ``frac`` and ``out16`` one per vector, (n,)."""

    x: np.ndarray
    frac: np.ndarray
    out16: np.ndarray

    @staticmethod
    def concat(parts: list[Vectors]) -> Vectors:
        """The vectors of ``parts`` one after the other."""
        return Vectors(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.frac for p in parts]),
            np.concatenate([p.out16 for p in parts]),
        )


class TB:
    """Owns the clock and reset of one ``em_gelu`` instance and drives its two handshakes."""

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.cfg = bench_config("gelu")
        self.lanes = len(dut.in_x) // X_WIDTH
        assert len(dut.out_y) == len(dut.in_x), "in_x and out_y differ in width"
        assert (1 << len(dut.in_frac)) - 1 == MAX_FRAC_BITS, "in_frac is not 0..MAX_FRAC_BITS"
        num = self.cfg.numerics
        self.log.info(
            "LANES=%d config %s: step 2^-%d, %d table entries in Q%d",
            self.lanes,
            self.cfg.name,
            num.gelu_step_log2,
            num.gelu_table_entries,
            num.gelu_table_frac_bits,
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
        """The reference, one call per (frac, out16) format present in ``v``."""
        want = np.empty_like(v.x)
        for frac, out16 in {(int(f), int(o)) for f, o in zip(v.frac, v.out16)}:
            rows = (v.frac == frac) & (v.out16 == out16)
            want[rows] = gelu(v.x[rows], frac, 16 if out16 else 8, self.cfg)
        return want

    def vectors(self, x: np.ndarray, frac: int, out16: int) -> Vectors:
        """Lane values (any length, padded with zeros to whole vectors) in one format."""
        flat = np.asarray(x, dtype=np.int64).ravel()
        flat = np.concatenate([flat, np.zeros(-len(flat) % self.lanes, dtype=np.int64)])
        n = len(flat) // self.lanes
        return Vectors(
            flat.reshape(n, self.lanes),
            np.full(n, frac, dtype=np.int64),
            np.full(n, out16, dtype=np.int64),
        )

    async def stream(self, v: Vectors, idle: float = 0.0, stall: float = 0.0) -> None:
        """Send every vector and check every output in order.

        ``idle`` is the probability that the source holds ``in_valid`` low in a cycle (its data
        pins then carry garbage), ``stall`` the probability that the sink holds ``out_ready`` low.
        Inputs change on the falling edge and handshakes are sampled once the values settle,
        so both sides see exactly what the rising edge will see.
        """
        dut = self.dut
        words = [_pack(row) for row in v.x]
        fracs = v.frac.tolist()
        out16s = v.out16.tolist()
        want = self.expected(v)
        got: list[int] = []
        held: int | None = None  # output word the sink refused last cycle
        sent = cycles = 0
        while len(got) < len(words):
            cycles += 1
            assert cycles < 10 * len(words) + 100, f"stuck: {sent} sent, {len(got)} received"
            await FallingEdge(dut.clk)
            valid = sent < len(words) and random.random() >= idle
            if valid:
                dut.in_x.value = words[sent]
                dut.in_frac.value = fracs[sent]
                dut.in_out16.value = out16s[sent]
            else:
                dut.in_x.value = random.getrandbits(len(dut.in_x))
                dut.in_frac.value = random.getrandbits(len(dut.in_frac))
                dut.in_out16.value = random.getrandbits(1)
            dut.in_valid.value = int(valid)
            ready = random.random() >= stall
            dut.out_ready.value = int(ready)
            await ReadOnly()
            if valid and dut.in_ready.value:
                sent += 1
            if dut.out_valid.value:
                word = dut.out_y.value.to_unsigned()
                assert held is None or word == held, (
                    f"vector {len(got)}: output changed while out_ready was low"
                )
                if ready:
                    got.append(word)
                held = None if ready else word
            else:
                assert held is None, f"vector {len(got)}: out_valid dropped while stalled"
        self._check(v, want, np.array([_unpack(w, self.lanes) for w in got]))
        self.log.info(
            "%d vectors in %d cycles (idle=%.2f stall=%.2f)", len(words), cycles, idle, stall
        )
        if idle == 0.0 and stall == 0.0:
            # Full throughput: one result per cycle once the pipeline has filled.
            assert cycles == len(words) + LATENCY, f"{len(words)} vectors took {cycles} cycles"

    def _check(self, v: Vectors, want: np.ndarray, got: np.ndarray) -> None:
        """Fail on the first wrong lane, with its inputs and the count of all wrong lanes."""
        bad = np.argwhere(got != want)
        if len(bad):
            n, lane = (int(i) for i in bad[0])
            raise AssertionError(
                f"{len(bad)} wrong lanes in {len(np.unique(bad[:, 0]))} vectors; first: vector "
                f"{n} lane {lane}: x={int(v.x[n, lane])} frac={int(v.frac[n])} "
                f"out16={int(v.out16[n])}: got {int(got[n, lane])}, want {int(want[n, lane])}\n"
                f"  x={v.x[n].tolist()}\n  got={got[n].tolist()}\n  want={want[n].tolist()}"
            )


def _pack(row: np.ndarray) -> int:
    """Lane values into one flat vector, lane i at bits [16i +: 16] (little-endian int16s)."""
    return int.from_bytes(row.astype("<i2").tobytes(), "little")


def _unpack(word: int, lanes: int) -> np.ndarray:
    """The signed lane values of one flat output vector."""
    return np.frombuffer(word.to_bytes(2 * lanes, "little"), dtype="<i2").astype(np.int64)


# --------------------------------------------------------------------------- vectors
ALL_INT16 = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
ALL_INT8 = np.arange(-128, 128, dtype=np.int64)


def boundary_codes(tb: TB, frac: int) -> np.ndarray:
    """Codes around the table end, at interpolation extremes and at the int16/int8 rails."""
    num = tb.cfg.numerics
    s, last = num.gelu_step_log2, num.gelu_table_entries - 1
    low = max(frac - s, 0)
    # First |x| whose index j = (|x| << s) >> frac reaches the end point: ceil(last * 2^frac / 2^s).
    t_end = -((-last << frac) >> s)
    t = [t_end + d for d in range(-3, 3)]
    # r = 0 and r = 2^L - 1 on the first, middle and last table intervals.
    for j in (0, 1, last // 2, last - 2, last - 1):
        base = (j << frac) >> s if low == 0 else j << low
        t += [base, base + (1 << low) - 1, base + (1 << low)]
    t += [0, 1, 2, 127, 128, 129, 255, 256, (1 << 15) - 1, 1 << 15]
    codes = np.array(t, dtype=np.int64)
    codes = np.concatenate([codes, -codes])
    return codes[(codes >= -(1 << 15)) & (codes < (1 << 15))]


def edge_vectors(tb: TB) -> Vectors:
    """Boundary codes of every format with both output widths, all formats interleaved."""
    parts = [
        tb.vectors(boundary_codes(tb, frac), frac, out16)
        for frac in range(MAX_FRAC_BITS + 1)
        for out16 in (0, 1)
    ]
    v = Vectors.concat(parts)
    order = np.random.default_rng(random.getrandbits(32)).permutation(len(v.frac))
    return Vectors(v.x[order], v.frac[order], v.out16[order])


def random_vectors(tb: TB, n: int) -> Vectors:
    """Random formats per vector; int8-range inputs for most int8 outputs, as the MATMUL feeds."""
    rng = np.random.default_rng(random.getrandbits(32))
    frac = rng.integers(0, MAX_FRAC_BITS + 1, n)
    out16 = rng.integers(0, 2, n)
    shape = (n, tb.lanes)
    # Magnitudes 2**k with k uniform, so small codes (inside the table) are as likely as big ones.
    x = rng.integers(-(1 << 15), 1 << 15, shape) >> rng.integers(0, 16, shape)
    int8 = (out16[:, None] == 0) & (rng.random(shape) < 0.8)
    x = np.where(int8, rng.integers(-128, 128, shape), x)
    return Vectors(x, frac, out16)


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=1, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.stream(edge_vectors(tb), idle=0.2, stall=0.3)


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def every_int8_code(dut: SimHandleBase) -> None:
    """All 256 int8 codes in all 16 formats, int8 and int16 output, back to back."""
    tb = TB(dut)
    await tb.reset()
    parts = [
        tb.vectors(ALL_INT8, frac, out16) for frac in range(MAX_FRAC_BITS + 1) for out16 in (0, 1)
    ]
    await tb.stream(Vectors.concat(parts))


def sweep_fracs(tb: TB) -> list[int]:
    """The formats whose every int16 code fits in :data:`SWEEP_CYCLES`, most telling first."""
    first = [*SWEEP_FIRST, tb.cfg.numerics.gelu_step_log2]
    order = list(dict.fromkeys(first + list(range(MAX_FRAC_BITS + 1))))
    per_format = len(ALL_INT16) // tb.lanes
    return order[: max(1, SWEEP_CYCLES // per_format)]


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def every_int16_code(dut: SimHandleBase) -> None:
    """All 65536 int16 codes at full throughput in the formats of :func:`sweep_fracs`."""
    tb = TB(dut)
    await tb.reset()
    fracs = sweep_fracs(tb)
    tb.log.info("every int16 code in Q%s", ", Q".join(map(str, fracs)))
    await tb.stream(Vectors.concat([tb.vectors(ALL_INT16, f, 1) for f in fracs]))


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)]))
async def random_stream(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.stream(random_vectors(tb, RANDOM_VECTORS), idle=idle, stall=stall)
