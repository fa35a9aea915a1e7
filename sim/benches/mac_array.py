"""cocotb bench of ``em_mac_unit`` (em_mac_array + em_accumulator): matrix products bit for bit.

The bench plays the sequencer of a MATMUL. For random X[m, k] (int16 or int8 range) and int8
W[k, n] it packs W with :func:`edgemoe.hw.layouts.pack_weights` and feeds the weight tiles from
those bytes exactly as they lie in DRAM, one LOAD_WIDTH chunk (an AXI beat) per cycle. For each
output tile nt and each reduction tile kt it loads the next tile into the shadow while the
current one streams its m tokens (swap with the first token of a tile, ``first_k`` on kt = 0),
then reads the accumulators of tile nt back through the read-out port and compares each one with
``wrap(X @ W, acc_width)`` (NumPy int64 product, :func:`edgemoe.hw.numerics.fixedpoint.wrap`).

Sequencing follows the RTL's documented contract, so a slower or wrongly timed RTL fails:

- a tile is swapped in only once all of its chunks were written in earlier cycles, and chunks of
  tile t + 1 are written from the cycle tile t is swapped in;
- the read-out of tile nt starts exactly ``LATENCY + 2`` cycles after its last token
  (``LATENCY = 2 + log2(ROWS)``), the earliest cycle the accumulator promises;
- successive n tiles alternate between two token ranges of the buffer when ``2m <= DEPTH``, so
  the read-out of one overlaps the accumulation of the next; otherwise they share one range and
  the first k tile of nt + 1 overwrites token i only after the read of token i of tile nt was
  accepted (the read-out chases the writes, costing LATENCY + 2 cycles per n tile).

Inputs of the k padding lanes carry random garbage: the zero rows of the padded weight tile must
cancel them. Back-pressure: tokens and weight chunks may skip cycles (``idle``, ``gap``), read
requests too (``rd_idle``), and the consumer may refuse responses (``stall``); a refused response
must not change. The bench logs cycles per tile and the MAC utilisation of the streaming phase
(cycles with a token entering the array / cycles from the first token to the last), and asserts
100 % utilisation where nothing throttles the stream and the read-out overlaps, >= 90 % for
Edge-MoE's 129 tokens sharing one buffer range.

The model is built from the headers of a HardwareConfig, which reaches the bench as JSON in
:data:`CONFIG_ENV` (:func:`bench_env`). Run it through :class:`edgemoe.sim.runner.RtlRunner`
(``tests/sim/test_rtl_mac_array.py``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from edgemoe.hw.layouts import pack_weights, weight_tiles
from edgemoe.hw.numerics.fixedpoint import wrap
from edgemoe.sim.benches.common import bench_config


@dataclass
class Stats:
    """What one matrix product cost: token cycles, the streaming window and each tile's cycles."""

    tokens: int = 0
    first: int = -1  # cycle of the first token
    last: int = -1  # cycle of the last token
    tile_starts: list[int] = field(default_factory=list)  # cycle of each tile's swap
    back_to_back: int = 0  # updates of the same token in consecutive cycles (RMW hazard)
    cycles: int = 0  # until the last read-out response

    @property
    def utilisation(self) -> float:
        return self.tokens / (self.last - self.first + 1)

    @property
    def tile_cycles(self) -> list[int]:
        """Cycles from each tile's swap to the next one's (to the last token + 1 for the last)."""
        ends = [*self.tile_starts[1:], self.last + 1]
        return [e - s for s, e in zip(self.tile_starts, ends)]


class TB:
    """Owns the clock and reset of one ``em_mac_unit`` and plays the sequencer and the epilogue."""

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.cfg = cfg = bench_config("mac_array")
        self.rows, self.cols = cfg.array_rows, cfg.array_cols
        self.act_width = cfg.act_width
        assert len(dut.in_x) == self.rows * self.act_width, "in_x is not ROWS x act_width"
        # Read back, not assumed: the model's parameters come from the config's headers.
        self.acc_width = len(dut.out_acc) // self.cols
        assert self.acc_width == cfg.acc_width, f"ACC_WIDTH {self.acc_width} != config"
        self.depth = cfg.acc_buffer_depth
        assert 1 << len(dut.rd_token) >= self.depth > 1 << (len(dut.rd_token) - 1)
        self.tile_bytes = cfg.weight_tile_bytes
        self.chunk_bytes = len(dut.w_data) // 8
        self.chunks = self.tile_bytes // self.chunk_bytes
        # em_mac_array's documented latency: input register, products, log2(ROWS) tree levels.
        self.latency = 2 + (self.rows.bit_length() - 1)
        self.log.info(
            "config %s: %dx%d array, ACC_WIDTH=%d, DEPTH=%d, %d-byte chunks, %d per tile, "
            "latency %d",
            cfg.name,
            self.rows,
            self.cols,
            self.acc_width,
            self.depth,
            self.chunk_bytes,
            self.chunks,
            self.latency,
        )
        Clock(dut.clk, 10, unit="ns").start()
        for pin in (dut.w_valid, dut.in_valid, dut.in_swap, dut.rd_valid, dut.out_ready):
            pin.value = 0

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid is set right after reset"

    # ------------------------------------------------------------------ one matrix product
    async def matmul(
        self,
        x: np.ndarray,
        w: np.ndarray,
        *,
        idle: float = 0.0,
        gap: float = 0.0,
        rd_idle: float = 0.0,
        stall: float = 0.0,
    ) -> Stats:
        """Compute ``x @ w`` on the array, check every accumulator, return what it cost.

        ``idle``/``gap``/``rd_idle`` are the probabilities that a token, a weight chunk or a read
        request that could go in a cycle does not; ``stall`` that the epilogue refuses a response.
        Inputs change on the falling edge and handshakes are sampled once values settle.
        """
        dut, cfg = self.dut, self.cfg
        m, k = x.shape
        n = w.shape[1]
        kts, nts = weight_tiles(k, n, cfg)
        rows, cols, chunks = self.rows, self.cols, self.chunks

        # Weight chunks straight from the DRAM image.
        packed = pack_weights(w, cfg)
        cb = self.chunk_bytes
        chunk_words = [
            int.from_bytes(packed[i * cb : (i + 1) * cb], "little")
            for i in range(len(packed) // cb)
        ]
        # Token words per k tile, with garbage in the lanes past k.
        rng = np.random.default_rng(random.getrandbits(32))
        amax = 1 << (self.act_width - 1)
        xpad = rng.integers(-amax, amax, (m, kts * rows))
        xpad[:, :k] = x
        token_words = [
            [_pack(xpad[i, kt * rows : (kt + 1) * rows], self.act_width) for i in range(m)]
            for kt in range(kts)
        ]
        # The reference, per n tile, padded columns included (they must read 0).
        wpad = np.zeros((k, nts * cols), dtype=np.int64)
        wpad[:, :n] = w
        want = wrap(x.astype(np.int64) @ wpad, self.acc_width).reshape(m, nts, cols)

        regions = 2 if 2 * m <= self.depth else 1
        base = [(nt % regions) * m for nt in range(nts)]
        readable = [-1] * nts  # first cycle the read-out of tile nt may be accepted
        reads = [0] * nts  # reads of tile nt accepted (in cycles before the current one)

        st = Stats()
        tiles = kts * nts
        tile = tok = 0  # streaming: tile index (nt-major) and token within the tile
        swaps = loaded = 0  # tiles swapped in, chunks written (over all tiles)
        rd_nt = out_nt = out_i = 0  # tile being read out, tile and token of the next response
        held: int | None = None  # response word the consumer refused last cycle
        prev_tag = -1  # tag of the token sent in the previous cycle, -1 if none
        cycle = 0
        budget = 4 * tiles * max(m, chunks) + 4 * m * nts + 200
        while out_nt < nts:
            cycle += 1
            assert cycle < budget, f"stuck: tile {tile}, read {rd_nt}, out {out_nt}/{out_i}"
            await FallingEdge(dut.clk)

            # Token (and swap with the first token of a tile).
            send = False
            if tile < tiles:
                nt, kt = divmod(tile, kts)
                ok = tok > 0 or loaded >= (tile + 1) * chunks
                if kt == 0 and nt >= regions:
                    ok = ok and reads[nt - regions] > tok  # its old value was read out
                send = ok and random.random() >= idle
            if send:
                tag = base[nt] + tok
                dut.in_x.value = token_words[kt][tok]
                dut.in_tag.value = tag
                dut.in_first_k.value = int(kt == 0)
                dut.in_swap.value = int(tok == 0)
                if tok == 0:
                    swaps += 1
                    st.tile_starts.append(cycle)
                st.back_to_back += tag == prev_tag
                prev_tag = tag
                st.tokens += 1
                st.first = cycle if st.first < 0 else st.first
                st.last = cycle
                tok += 1
                if tok == m:
                    tok, tile = 0, tile + 1
                    if kt == kts - 1:
                        readable[nt] = cycle + self.latency + 2
            else:
                prev_tag = -1
                dut.in_x.value = random.getrandbits(len(dut.in_x))
                dut.in_tag.value = random.getrandbits(len(dut.in_tag))
                dut.in_first_k.value = random.getrandbits(1)
                dut.in_swap.value = 0
            dut.in_valid.value = int(send)

            # Weight chunk: the shadow takes tile `swaps` (a chunk in a swap cycle is for the next).
            load = loaded < len(chunk_words) and loaded // chunks == swaps
            load = load and random.random() >= gap
            if load:
                dut.w_idx.value = loaded % chunks
                dut.w_data.value = chunk_words[loaded]
                loaded += 1
            else:
                dut.w_idx.value = random.getrandbits(len(dut.w_idx))
                dut.w_data.value = random.getrandbits(len(dut.w_data))
            dut.w_valid.value = int(load)

            # Read-out request and the epilogue's ready.
            request = 0 <= readable[rd_nt] <= cycle if rd_nt < nts else False
            request = request and random.random() >= rd_idle
            if request:
                dut.rd_token.value = base[rd_nt] + reads[rd_nt]
            else:
                dut.rd_token.value = random.getrandbits(len(dut.rd_token))
            dut.rd_valid.value = int(request)
            ready = random.random() >= stall
            dut.out_ready.value = int(ready)

            await ReadOnly()
            if request and dut.rd_ready.value:
                reads[rd_nt] += 1
                rd_nt += reads[rd_nt] == m
            if dut.out_valid.value:
                word = dut.out_acc.value.to_unsigned()
                assert held is None or word == held, (
                    f"tile {out_nt} token {out_i}: response changed while out_ready was low"
                )
                if ready:
                    self._check(out_nt, out_i, base[out_nt], word, want[out_i, out_nt])
                    out_i += 1
                    if out_i == m:
                        out_nt, out_i = out_nt + 1, 0
                held = None if ready else word
            else:
                assert held is None, f"tile {out_nt} token {out_i}: out_valid dropped while stalled"
        st.cycles = cycle
        self._report(x, w, st, regions, idle, gap, rd_idle, stall)
        return st

    def _check(self, nt: int, i: int, base: int, word: int, want: np.ndarray) -> None:
        token = int(self.dut.out_token.value)
        assert token == base + i, f"tile {nt}: response for token {token}, want {base + i}"
        got = _unpack(word, self.cols, self.acc_width)
        if not np.array_equal(got, want):
            c = int(np.flatnonzero(got != want)[0])
            raise AssertionError(
                f"n tile {nt} token {i} column {c}: got {int(got[c])}, want {int(want[c])}\n"
                f"  got={got.tolist()}\n  want={want.tolist()}"
            )

    def _report(
        self,
        x: np.ndarray,
        w: np.ndarray,
        st: Stats,
        regions: int,
        idle: float,
        gap: float,
        rd_idle: float,
        stall: float,
    ) -> None:
        per_tile = st.tile_cycles
        self.log.info(
            "m=%d k=%d n=%d (max |x| %d): %d tiles, cycles per tile min %d mean %.2f max %d; "
            "streaming %d tokens in %d cycles, MAC utilisation %.1f %%; %d back-to-back "
            "same-token updates; %d buffer region(s); done in %d cycles "
            "(idle=%.2f gap=%.2f rd_idle=%.2f stall=%.2f)",
            *x.shape,
            w.shape[1],
            int(np.abs(x).max()),
            len(per_tile),
            min(per_tile),
            float(np.mean(per_tile)),
            max(per_tile),
            st.tokens,
            st.last - st.first + 1,
            100.0 * st.utilisation,
            st.back_to_back,
            regions,
            st.cycles,
            idle,
            gap,
            rd_idle,
            stall,
        )


def _pack(values: np.ndarray, width: int) -> int:
    """Lane values (signed) into one flat vector, lane i at bits [i*width +: width]."""
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(values))


def _unpack(word: int, lanes: int, width: int) -> np.ndarray:
    """Signed lanes of a flat vector."""
    mask, half = (1 << width) - 1, 1 << (width - 1)
    vals = [(word >> (i * width)) & mask for i in range(lanes)]
    return np.array([v - 2 * half if v >= half else v for v in vals], dtype=np.int64)


# --------------------------------------------------------------------------- operands
def operands(m: int, k: int, n: int, act_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Random X[m, k] in the signed ``act_bits`` range and int8 W[k, n]; a tenth of the values
    sit on the rails, where products are largest."""
    rng = np.random.default_rng(random.getrandbits(32))
    amax = 1 << (act_bits - 1)
    x = rng.integers(-amax, amax, (m, k))
    x = np.where(rng.random((m, k)) < 0.1, rng.choice([-amax, amax - 1], (m, k)), x)
    w = rng.integers(-128, 128, (k, n))
    w = np.where(rng.random((k, n)) < 0.1, rng.choice([-128, 127], (k, n)), w)
    return x, w


def extreme_operands(m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rail values only, arranged so that sums run far past any accumulator width."""
    rng = np.random.default_rng(random.getrandbits(32))
    x = rng.choice([-(1 << 15), (1 << 15) - 1], (m, k))
    w = rng.choice([-128, 127], (k, n))
    # Token 0 with column 0 adds the largest product (-2^15 * -128 = 2^22) k times, with
    # column 1 the most negative one (-2^15 * 127): both sums leave the 32-bit range for k = 640.
    x[0, :] = -(1 << 15)
    w[:, 0] = -128
    if n > 1:
        w[:, 1] = 127
    return x, w


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=20, timeout_unit="ms")
async def shapes(dut: SimHandleBase) -> None:
    """Single tiles, padding in k and n, m = 1, int8 and int16 activations, one and two regions."""
    tb = TB(dut)
    await tb.reset()
    r, c = tb.rows, tb.cols
    for m, k, n, bits in (
        (1, r, c, 16),
        (1, 3 * r + 1, 2 * c + 3, 16),
        (1, 2 * r, c, 8),
        (3, 2 * r - 1, c - 1, 8),
        (17, r + 1, 2 * c, 16),
        (tb.depth, r, 2 * c, 16),  # every buffer entry; one region, the read-out chases writes
    ):
        st = await tb.matmul(*operands(m, k, n, bits))
        if m == 1 and tb.chunks == 1 and k > r:
            assert st.back_to_back > 0, "the RMW hazard was not exercised"


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def full_rate(dut: SimHandleBase) -> None:
    """Nothing throttled and m >= chunks per tile: with the read-out overlapped (two buffer
    regions) utilisation is 100 %; with one region (Edge-MoE's 129 tokens where they do not fit
    twice) the read-out chasing the next tile's writes costs a few cycles per n tile."""
    tb = TB(dut)
    await tb.reset()
    m = max(tb.chunks, 8)
    st = await tb.matmul(*operands(m, 4 * tb.rows - 2, 3 * tb.cols - 1, 16))
    assert st.utilisation == 1.0, f"utilisation {st.utilisation:.3f}"
    assert st.tile_cycles == [m] * len(st.tile_cycles), st.tile_cycles
    m = min(129, tb.depth)
    assert 2 * m > tb.depth
    st = await tb.matmul(*operands(m, 4 * tb.rows, 2 * tb.cols, 8))
    assert st.utilisation >= 0.9, f"utilisation {st.utilisation:.3f}"


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def wrap_around(dut: SimHandleBase) -> None:
    """Rail operands over a long reduction: sums leave the ACC_WIDTH range and wrap."""
    tb = TB(dut)
    await tb.reset()
    k = 640  # 640 * 2^22 > 2^31 by a factor of 1.25: wraps even a 32-bit accumulator
    for m in (1, 2):
        x, w = extreme_operands(m, k, tb.cols + 1)
        exact = x.astype(np.int64) @ w.astype(np.int64)
        assert np.abs(exact).max() >= 1 << (tb.acc_width - 1), "operands do not wrap"
        await tb.matmul(x, w)


@cocotb.test(timeout_time=50, timeout_unit="ms")
@cocotb.parametrize(
    (("idle", "gap", "rd_idle", "stall"), [(0.3, 0.0, 0.0, 0.5), (0.2, 0.4, 0.3, 0.3)])
)
async def back_pressure(
    dut: SimHandleBase, idle: float, gap: float, rd_idle: float, stall: float
) -> None:
    """Token bubbles, weight-beat gaps, read-request bubbles and a stalling epilogue."""
    tb = TB(dut)
    await tb.reset()
    r, c = tb.rows, tb.cols
    for m, k, n, bits in ((5, 2 * r + 3, 2 * c + 1, 16), (tb.depth // 2 + 3, r + 2, 2 * c, 8)):
        await tb.matmul(*operands(m, k, n, bits), idle=idle, gap=gap, rd_idle=rd_idle, stall=stall)
