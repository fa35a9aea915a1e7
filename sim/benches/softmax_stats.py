"""cocotb bench of ``em_softmax_stats``: every row's (b, mant, exp) equals
``numerics.softmax.online_softmax_stats(z, cfg, block=COLS)`` bit for bit.

A *job* is one score matrix ``z[m, n]`` (int16, Q(score_frac_bits)) whose m query rows occupy m
distinct row slots of the unit, chosen at random among its ROWS_MAX. Each row is cut into blocks
of COLS keys in increasing key order (the last one partial when COLS does not divide n, its
missing lanes masked and filled with garbage scores) and streamed either in the sequencer's
order (key block outer, rows inner) or in a random interleaving that keeps each row's blocks in
order. Jobs follow each other without a reset and reuse row slots, so a row's first block often
arrives while the previous job's last block of the same slot is still in the pipeline.

The reference is :func:`edgemoe.hw.numerics.softmax.online_softmax_stats` on the whole job. The
unit is in order, so its outputs must come in the order of the last blocks in the stream, each
naming its row slot. Score patterns: normal scores of several spreads, the whole int16 range,
all-equal rows (at both rails too), one dominant score, increasing rows (every block a new max,
with small and flushing steps), decreasing rows, int16 extremes in one row, and differences
around the flush-to-zero threshold of a term; widths n of 1, COLS - 1, COLS, COLS + 1, odd sizes
and 256. With every row revisited at least 4 cycles later (four or more rows per job) the unit
must run at one block per cycle with its documented latency; with fewer it must stall, and stay
exact.

COLS is read back from the mask width; ROWS_MAX must be the default (the config's
acc_buffer_depth).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.hw.numerics.recip import newton_steps
from edgemoe.hw.numerics.softmax import SUM_GUARD_BITS, online_softmax_stats

from .common import bench_config
from .softmax_common import (
    INT16_MAX,
    INT16_MIN,
    StreamTB,
    pack,
    score_patterns,
    to_signed,
)

SCORE_WIDTH = 16
#: Register stages from an accepted block to the state write-back (the scoreboard's reach).
UPDATE_STAGES = 3


@dataclass
class Job:
    """One score matrix and the row slots its rows use."""

    z: np.ndarray  # [m, n] int64 scores
    slots: np.ndarray  # [m] distinct row indices of the unit
    what: str  # the pattern, for failure messages


class TB(StreamTB):
    """One ``em_softmax_stats`` instance: blocks of scores in, per-row statistics out."""

    def __init__(self, dut: SimHandleBase) -> None:
        super().__init__(
            dut, ("row", "score", "mask", "first", "last"), ("row", "b", "mant", "exp")
        )
        self.cfg = bench_config("softmax_stats")
        self.cols = len(dut.in_mask)
        self.rows_max = self.cfg.acc_buffer_depth
        assert len(dut.in_score) == SCORE_WIDTH * self.cols, "in_score is not COLS int16 lanes"
        assert self.rows_max <= 1 << len(dut.in_row), "in_row cannot address acc_buffer_depth"
        #: Accepted block to result: the update stages, then em_recip's.
        self.latency = UPDATE_STAGES + 3 + 2 * newton_steps(self.cfg.numerics.recip_table_bits)
        num = self.cfg.numerics
        self.log.info(
            "COLS=%d ROWS_MAX=%d config %s: Q%d scores, Q%d exp2 table, sum Q%d, latency %d",
            self.cols,
            self.rows_max,
            self.cfg.name,
            num.score_frac_bits,
            num.exp_frac_bits,
            num.exp_frac_bits + SUM_GUARD_BITS,
            self.latency,
        )

    # ----------------------------------------------------------------- streams
    def _block(self, job: Job, i: int, kb: int) -> tuple[int, ...]:
        """Input word of key block ``kb`` of row ``i``: masked lanes carry garbage scores."""
        n = job.z.shape[1]
        j0 = kb * self.cols
        keys = job.z[i, j0 : j0 + self.cols].tolist()
        lanes = keys + [random.randint(INT16_MIN, INT16_MAX) for _ in range(self.cols - len(keys))]
        last = j0 + self.cols >= n
        mask = (1 << len(keys)) - 1
        return int(job.slots[i]), pack(lanes, SCORE_WIDTH), mask, int(kb == 0), int(last)

    def order(self, job: Job, interleave: bool) -> list[tuple[int, int]]:
        """(row, key block) pairs: the sequencer's order, or a random per-row-ordered merge."""
        m, n = job.z.shape
        blocks = -(-n // self.cols)
        if not interleave:
            return [(i, kb) for kb in range(blocks) for i in range(m)]
        # Drawing the next row with probability proportional to its remaining blocks makes
        # every interleaving equally likely.
        owner = [i for i in range(m) for _ in range(blocks)]
        random.shuffle(owner)
        nxt = [0] * m
        out = []
        for i in owner:
            out.append((i, nxt[i]))
            nxt[i] += 1
        return out

    async def check(
        self, jobs: list[Job], interleave: bool, idle: float = 0.0, stall: float = 0.0
    ) -> int:
        """Stream the jobs back to back, compare every row; return the refused input cycles."""
        words: list[tuple[int, ...]] = []
        want: list[tuple[int, int, int, int]] = []
        origin: list[str] = []
        for job in jobs:
            ref = online_softmax_stats(job.z, self.cfg, block=self.cols)
            for i, kb in self.order(job, interleave):
                word = self._block(job, i, kb)
                words.append(word)
                if word[4]:
                    want.append(
                        (int(job.slots[i]), int(ref.b[i]), int(ref.mant[i]), int(ref.exp[i]))
                    )
                    origin.append(f"job '{job.what}' {job.z.shape} row {i}: z={job.z[i].tolist()}")
        res = await self.stream(words, len(want), idle, stall)
        for k, (raw, w) in enumerate(zip(res.outputs, want)):
            got = (raw[0], to_signed(raw[1], 16), raw[2], to_signed(raw[3], 16))
            assert got == w, (
                f"result {k}: got (row, b, mant, exp) {got}, want {w}\n  {origin[k][:2000]}"
            )
        if idle == 0.0 and stall == 0.0 and res.refused == 0:
            assert res.cycles == len(words) + self.latency, f"{len(words)} blocks: {res.cycles}"
        return res.refused

    # ----------------------------------------------------------------- jobs
    def job(self, z: np.ndarray, what: str, rng: np.random.Generator) -> Job:
        assert z.shape[0] <= self.rows_max
        return Job(z, rng.choice(self.rows_max, z.shape[0], replace=False), what)


def widths(tb: TB) -> list[int]:
    """Key counts around the block size, odd sizes and the longest the bench runs."""
    c = tb.cols
    return sorted({1, c - 1, c, c + 1, 2 * c + 3, 5 * c - 1, 100, 256})


def pattern_jobs(tb: TB, rows: Callable[[np.random.Generator], int]) -> list[Job]:
    """One job per (pattern, width), ``rows(rng)`` query rows each."""
    rng = np.random.default_rng(random.getrandbits(32))
    return [
        tb.job(make(rng, rows(rng), n), f"{name}, n={n}", rng)
        for name, make in score_patterns(tb.cfg).items()
        for n in widths(tb)
    ]


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=5, timeout_unit="ms")
async def sequencer_order(dut: SimHandleBase) -> None:
    """Every pattern and width in the sequencer's order, 4 to 9 rows: full speed, no stall."""
    tb = TB(dut)
    await tb.reset()
    refused = await tb.check(pattern_jobs(tb, lambda rng: int(rng.integers(4, 10))), False)
    assert refused == 0, f"{refused} blocks waited although every row came back >= 4 cycles later"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def full_tile(dut: SimHandleBase) -> None:
    """Every row slot in use, 256 keys, in the sequencer's order and then interleaved."""
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(random.getrandbits(32))
    z = score_patterns(tb.cfg)["normal 8"](rng, tb.rows_max, 256)
    await tb.check([tb.job(z, "full tile", rng)], False)
    await tb.check([tb.job(z, "full tile", rng)], True, stall=0.2)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def few_rows_stall(dut: SimHandleBase) -> None:
    """One to three rows per job: each block waits for its row's previous update."""
    tb = TB(dut)
    await tb.reset()
    jobs = pattern_jobs(tb, lambda rng: int(rng.integers(1, 4)))
    refused = await tb.check(jobs, False)
    assert refused > 0, "rows revisited within 3 cycles never waited"


@cocotb.test(timeout_time=10, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)]))
async def random_interleaving(dut: SimHandleBase, idle: float, stall: float) -> None:
    """Every pattern and width, 1 to 12 rows, rows interleaved at random."""
    tb = TB(dut)
    await tb.reset()
    await tb.check(pattern_jobs(tb, lambda rng: int(rng.integers(1, 13))), True, idle, stall)
