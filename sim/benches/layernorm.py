"""cocotb bench of ``em_layernorm``: every output equals ``numerics.layernorm.layernorm`` bit for bit.

The reference is :func:`edgemoe.hw.numerics.layernorm.layernorm` (the code the golden model runs
for LAYERNORM) called row by row with the config whose generated headers the model was built with
(:func:`.common.bench_config`); the parameters come from
:func:`~edgemoe.hw.numerics.layernorm.layernorm_params` applied to random float gamma, beta, eps
and scales, or are raw integers at the edges of their ranges.

The bench loads gamma/beta through the parameter port while the unit is idle, then streams rows
(``ceil(d / LANES)`` beats each, the per-row inputs driven on the first beat only and garbage
after it, garbage in the lanes past d) with idle input cycles and output back-pressure, and
checks every output beat in order: the lanes inside the row against the reference and
``out_last`` on the row's last beat; an output the sink refuses must not change.

Coverage: int16 and int8 rows of normal data with std from 1 LSB to clipped at the rails, the
whole range uniformly, rails only, one spike, all-equal rows (v = eps_q, including d = 1),
d from 1 to 300 (most not multiples of LANES) and 192 and 768, int8 and int16 outputs,
saturating outputs, eps_q from 1 to just below 2^60, shifts 0 and 63, rows of different d and
parameters back to back, and the throughput of a run of full rows.
LANES and D_MAX are read back from the ports (D_MAX = 2^width(prm_idx)).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from edgemoe.hw.numerics.layernorm import EPS_Q_MAX, layernorm, layernorm_params
from edgemoe.hw.numerics.recip import newton_steps

from .common import bench_config
from .softmax_common import pack, unpack

OUT_WIDTH = 16
#: Idle cycles after the last expected output in which no further output may appear.
DRAIN_CYCLES = 24


@dataclass
class Row:
    """One row and its per-row inputs (x is int64 of shape (d,))."""

    x: np.ndarray
    eps: int
    mult: int
    shift: int
    out16: bool

    @property
    def d(self) -> int:
        return len(self.x)


@dataclass
class Op:
    """gamma_q/beta_q (loaded while idle) and the rows that use them (row of d: gamma[:d])."""

    gamma: np.ndarray
    beta: np.ndarray
    rows: list[Row]


class TB:
    """Owns the clock and reset of one ``em_layernorm`` and drives its three ports."""

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.cfg = bench_config("layernorm")
        self.x_width = len(dut.in_x) // (len(dut.out_y) // OUT_WIDTH)
        self.lanes = len(dut.out_y) // OUT_WIDTH
        self.d_max = 1 << len(dut.prm_idx)
        #: Cycles from a row's last beat in to its r known, in which the normalising pass of
        #: that row cannot start: stages b, f, p and em_rsqrt's 3 + 3 * NEWTON_STEPS.
        self.rsqrt_gap = 3 + 3 + 3 * newton_steps(self.cfg.numerics.recip_table_bits)
        self.log.info(
            "LANES=%d X_WIDTH=%d D_MAX=%d config %s",
            self.lanes,
            self.x_width,
            self.d_max,
            self.cfg.name,
        )
        Clock(dut.clk, 10, unit="ns").start()
        dut.in_valid.value = 0
        dut.out_ready.value = 0
        dut.prm_we.value = 0

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid is set right after reset"
        assert int(self.dut.idle.value) == 1, "idle is low right after reset"

    async def load(self, gamma: np.ndarray, beta: np.ndarray) -> None:
        """Write gamma/beta in a random index order, one per cycle, once the unit is idle."""
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            if dut.idle.value:
                break
        for i in np.random.default_rng(random.getrandbits(32)).permutation(len(gamma)):
            await FallingEdge(dut.clk)
            dut.prm_we.value = 1
            dut.prm_idx.value = int(i)
            dut.prm_gamma.value = int(gamma[i]) & 0xFFFF
            dut.prm_beta.value = int(beta[i]) & 0xFFFFFFFF
        await FallingEdge(dut.clk)
        dut.prm_we.value = 0

    def expected(self, op: Op, row: Row) -> np.ndarray:
        return layernorm(
            row.x[None, :],
            op.gamma[: row.d],
            op.beta[: row.d],
            row.eps,
            row.mult,
            row.shift,
            16 if row.out16 else 8,
            self.cfg,
        )[0]

    def _beats(self, row: Row) -> list[tuple[int, ...]]:
        """(in_x, in_d, in_eps, in_mult, in_shift, in_out16) per beat; garbage in the lanes past
        d and in the per-row inputs after the first beat (they are sampled on the first)."""
        lanes, xw = self.lanes, self.x_width
        nb = -(-row.d // lanes)
        x = np.concatenate([row.x, [random.getrandbits(xw) for _ in range(nb * lanes - row.d)]])
        beats = []
        for j in range(nb):
            word = pack(x[j * lanes : (j + 1) * lanes], xw)
            if j == 0:
                rest = (row.d, row.eps, row.mult, row.shift, int(row.out16))
            else:
                rest = tuple(
                    random.getrandbits(len(p))
                    for p in (self.dut.in_d, self.dut.in_eps, self.dut.in_mult, self.dut.in_shift)
                ) + (random.getrandbits(1),)
            beats.append((word, *rest))
        return beats

    async def run(self, op: Op, idle: float = 0.0, stall: float = 0.0) -> int:
        """Load the op's gamma/beta, stream its rows, check every output beat; return cycles."""
        await self.load(op.gamma, op.beta)
        dut = self.dut
        pins = (dut.in_x, dut.in_d, dut.in_eps, dut.in_mult, dut.in_shift, dut.in_out16)
        words = [b for row in op.rows for b in self._beats(row)]
        # Expected output beats: (row index, beat index, lanes inside the row, last).
        want: list[tuple[int, int, list[int], bool]] = []
        for r, row in enumerate(op.rows):
            y = self.expected(op, row).tolist()
            nb = -(-row.d // self.lanes)
            for j in range(nb):
                want.append((r, j, y[j * self.lanes : (j + 1) * self.lanes], j == nb - 1))
        sent = got = cycles = 0
        held: tuple[int, int] | None = None
        limit = 40 * (len(words) + len(op.rows) * self.rsqrt_gap) + 500
        while sent < len(words) or got < len(want):
            cycles += 1
            assert cycles < limit, f"stuck: {sent} of {len(words)} beats in, {got} out"
            await FallingEdge(dut.clk)
            valid = sent < len(words) and random.random() >= idle
            for k, pin in enumerate(pins):
                pin.value = words[sent][k] if valid else random.getrandbits(len(pin))
            dut.in_valid.value = int(valid)
            ready = random.random() >= stall
            dut.out_ready.value = int(ready)
            await ReadOnly()
            if valid and dut.in_ready.value:
                sent += 1
            if dut.out_valid.value:
                word = (dut.out_y.value.to_unsigned(), int(dut.out_last.value))
                assert held is None or word == held, f"output beat {got} changed while stalled"
                if ready:
                    assert got < len(want), f"output beat {got} is one too many"
                    self._compare(op, want[got], *word)
                    got += 1
                held = None if ready else word
            else:
                assert held is None, f"output beat {got}: out_valid dropped while stalled"
        for _ in range(DRAIN_CYCLES):
            await FallingEdge(dut.clk)
            dut.in_valid.value = 0
            dut.out_ready.value = 1
            await ReadOnly()
            assert not dut.out_valid.value, f"an output beyond the {len(want)} expected"
        self.log.info(
            "%d rows, %d beats in %d cycles (idle=%.2f stall=%.2f)",
            len(op.rows),
            len(words),
            cycles,
            idle,
            stall,
        )
        return cycles

    def _compare(self, op: Op, want: tuple[int, int, list[int], bool], y: int, last: int) -> None:
        r, j, lanes, is_last = want
        row = op.rows[r]
        have = unpack(y, OUT_WIDTH, self.lanes, signed=True)[: len(lanes)]
        assert have == lanes and bool(last) == is_last, (
            f"row {r} (d={row.d}, eps_q={row.eps}, mult={row.mult}, shift={row.shift}, "
            f"out16={row.out16}) beat {j}: got {have} last={last}, want {lanes} last={is_last}\n"
            f"  x={row.x.tolist()}\n  gamma={op.gamma[: row.d].tolist()}\n"
            f"  beta={op.beta[: row.d].tolist()}"
        )


# --------------------------------------------------------------------------- row patterns
#: ``make(rng, d, bits)``: one row of d codes in the signed ``bits``-bit range.
Pattern = Callable[[np.random.Generator, int, int], np.ndarray]


def _clip(x: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(np.round(x), -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int64)


def _normal(rng: np.random.Generator, d: int, bits: int) -> np.ndarray:
    """Std 2^s LSB with s uniform from 0 (tiny) to past the rails (huge, clipped)."""
    std = 2.0 ** rng.uniform(0, bits + 1)
    return _clip(rng.normal(rng.normal(0, std), std, d), bits)


def _uniform(rng: np.random.Generator, d: int, bits: int) -> np.ndarray:
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), d)


def _rails(rng: np.random.Generator, d: int, bits: int) -> np.ndarray:
    return rng.choice([-(1 << (bits - 1)), (1 << (bits - 1)) - 1], d)


def _equal(rng: np.random.Generator, d: int, bits: int) -> np.ndarray:
    level = rng.choice([-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 0, int(rng.integers(-99, 99))])
    return np.full(d, level, dtype=np.int64)


def _spike(rng: np.random.Generator, d: int, bits: int) -> np.ndarray:
    x = rng.integers(-2, 3, d)
    x[rng.integers(0, d)] = rng.choice([-(1 << (bits - 1)), (1 << (bits - 1)) - 1])
    return x


PATTERNS: dict[str, Pattern] = {
    "normal": _normal,
    "uniform": _uniform,
    "rails": _rails,
    "all equal": _equal,
    "spike": _spike,
}


def make_op(tb: TB, rng: np.random.Generator, d: int, m: int, in_bits: int) -> Op:
    """m rows of length d from random patterns, with parameters from ``layernorm_params``."""
    rows = [PATTERNS[rng.choice(list(PATTERNS))](rng, d, in_bits) for _ in range(m)]
    x_scale = 2.0 ** rng.uniform(-12, -2)
    gamma = rng.normal(1.0, 0.5, d) * 2.0 ** rng.uniform(-4, 3)
    beta = rng.normal(0.0, 0.5, d) * 2.0 ** rng.uniform(-6, 2)
    eps = float(rng.choice([1e-6, 1e-5, 1e-2, 0.0]))
    out16 = bool(rng.random() < 0.5)
    # An output scale that fits |gamma| * sqrt(d) + |beta| into the output range, sometimes
    # made smaller so that outputs saturate.
    span = float(np.abs(gamma).max() * min(np.sqrt(d), 4.0) + np.abs(beta).max())
    y_scale = span / (1 << (15 if out16 else 7)) * 2.0 ** rng.choice([0.0, -3.0])
    gamma_q, beta_q, eps_q, mult, shift = layernorm_params(
        gamma, beta, eps, x_scale, y_scale, d, tb.cfg
    )
    return Op(gamma_q, beta_q, [Row(x, eps_q, mult, shift, out16) for x in rows])


def random_row(tb: TB, rng: np.random.Generator, d: int, in_bits: int) -> Row:
    """A row with raw random per-row inputs (not from layernorm_params): eps_q log-uniform over
    [1, 2^60), any mult, a shift aimed near the output range (3 in 4) or at 0 / 63."""
    x = PATTERNS[rng.choice(list(PATTERNS))](rng, d, in_bits)
    eps = int(rng.choice([1, 2, EPS_Q_MAX - 1, int(2.0 ** rng.uniform(0, 59.9))]))
    out16 = bool(rng.random() < 0.5)
    # acc ~ 2^(N + 15): shift near N + 15 + 16 - out bits (+-4), or an extreme.
    aimed = tb.cfg.numerics.norm_frac_bits + 31 - (16 if out16 else 8) + int(rng.integers(-4, 5))
    shift = int(rng.choice([aimed] * 6 + [0, 63]))
    return Row(x, eps, int(rng.integers(0, 1 << 16)), shift, out16)


def random_params(tb: TB, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Raw gamma (int16) and beta (int32) over their whole ranges, for D_MAX elements."""
    gamma = rng.integers(-(1 << 15), 1 << 15, tb.d_max)
    beta = rng.integers(-(1 << 31), 1 << 31, tb.d_max) >> rng.integers(0, 32, tb.d_max)
    return gamma, beta


def _rng() -> np.random.Generator:
    return np.random.default_rng(random.getrandbits(32))


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=20, timeout_unit="ms")
async def quantized_rows(dut: SimHandleBase) -> None:
    """Ops of one d each, parameters from layernorm_params: short d, d = 192, int8 rows."""
    tb = TB(dut)
    await tb.reset()
    rng = _rng()
    lengths = [1, 2, 3, tb.lanes - 1, tb.lanes + 1, 7, 37, 100, 192, 255, 300]
    for n, d in enumerate(lengths):
        bits = 8 if n % 3 == 2 else 16
        m = 10 if d <= 100 else 4
        await tb.run(make_op(tb, rng, d, m, bits), idle=0.2, stall=0.3)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def random_ops(dut: SimHandleBase) -> None:
    """Ops of random d in 1..300, int8 or int16 rows, under random idle and back-pressure."""
    tb = TB(dut)
    await tb.reset()
    rng = _rng()
    for _ in range(12):
        d = int(rng.integers(1, 301))
        op = make_op(tb, rng, d, 4, int(rng.choice([8, 16])))
        await tb.run(op, idle=float(rng.uniform(0, 0.5)), stall=float(rng.uniform(0, 0.7)))


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def mixed_rows(dut: SimHandleBase) -> None:
    """Rows of random d in 1..300 and raw per-row inputs back to back over one gamma/beta."""
    tb = TB(dut)
    await tb.reset()
    rng = _rng()
    gamma, beta = random_params(tb, rng)
    rows = [
        random_row(tb, rng, int(rng.integers(1, 301)), 8 if rng.random() < 0.3 else 16)
        for _ in range(40)
    ]
    rows += [random_row(tb, rng, 1, 16) for _ in range(6)]
    await tb.run(Op(gamma, beta, rows), idle=0.1, stall=0.4)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def edge_rows(dut: SimHandleBase) -> None:
    """All-equal rows (v = eps_q) at the rails and zero with eps_q 1 and 2^60 - 1, rails-only
    rows (the largest d*s2) with the largest eps_q, at d = 1, LANES, LANES + 1 and 768."""
    tb = TB(dut)
    await tb.reset()
    rng = _rng()
    gamma, beta = random_params(tb, rng)
    gamma[:4] = (-(1 << 15), (1 << 15) - 1, 0, 1)
    beta[:4] = (-(1 << 31), (1 << 31) - 1, 0, -1)
    hi, lo = (1 << 15) - 1, -(1 << 15)
    rows = []
    for d in (1, tb.lanes, tb.lanes + 1, 768):
        for level in (lo, hi, 0):
            for eps in (1, EPS_Q_MAX - 1):
                rows.append(Row(np.full(d, level, dtype=np.int64), eps, 65535, 40, True))
        alt = np.where(np.arange(d) % 2 == 0, lo, hi).astype(np.int64)
        for eps in (1, EPS_Q_MAX - 1):
            rows.append(Row(alt, eps, 1 << 15, 35, True))
            rows.append(Row(alt, eps, 65535, 0, False))
            rows.append(Row(alt, eps, 65535, 63, bool(rng.random() < 0.5)))
    await tb.run(Op(gamma, beta, rows), idle=0.1, stall=0.2)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def long_rows_throughput(dut: SimHandleBase) -> None:
    """d = 768 rows at full speed, then int8 rows of d = 768 under back-pressure.

    Two banks: while row k is read out, row k+1 fills the other bank; row k+2 waits for row k's
    bank, and the reader waits rsqrt_gap cycles for the r of every other row. So m rows take
    at most the first row's fill, m rows of beats, a gap for every other row plus the first
    row's, and the 7-stage pipeline (2 cycles of slack for the handshake sampling).
    """
    tb = TB(dut)
    await tb.reset()
    rng = _rng()
    m = 4
    cycles = await tb.run(make_op(tb, rng, 768, m, 16))
    beats = -(-768 // tb.lanes)
    bound = (m + 1) * beats + ((m + 1) // 2 + 1) * tb.rsqrt_gap + 7 + 2
    assert cycles <= bound, f"{m} rows of {beats} beats took {cycles} cycles (bound {bound})"
    await tb.run(make_op(tb, rng, 768, 3, 8), idle=0.1, stall=0.3)
