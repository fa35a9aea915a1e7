"""cocotb bench of ``em_core``'s MATMUL unit: random and realistic MATMUL programs.

Reuses the system bench's :class:`~edgemoe.sim.benches.core.TB`: every program runs on the RTL
and on the golden model (:mod:`edgemoe.sim.golden`, whose ``ops.matmul`` calls the bit-exact
numerics), every retired instruction's writes are compared by trace digest, then the whole
DRAM, status and the DRAM byte counters. Operands are laid out with :mod:`edgemoe.hw.layouts`
(``pack_weights``, ``pack_epilogue``) at byte-granular addresses with gaps of random bytes that
must survive (and random bytes in the weight tiles' padding, which the golden model never
reads); per-channel (mult, shift) come from float scales through
``numerics.fixedpoint.quantize_multipliers`` as the compiler derives them, sized so outputs
spread over the output range rather than all saturating.

Programs: random MATMULs (m 1..40, k and n 1..70, int8/int16 in and out, GELU with a random
gelu_frac, residual from another matrix or in place), chains where each MATMUL reads the
previous one's output, the ViT MLP block of the tiny preset (17 tokens, 32 -> 64 GELU -> 32 +
residual in place), token blocks forced by a k whose rows fill the activation buffer, and the
same with every AXI channel stalling at random. CYCLES and MAC_CYCLES of single MATMULs are
logged beside :func:`edgemoe.compiler.cyclemodel.matmul_cost`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.compiler.cyclemodel import matmul_cost
from edgemoe.hw import isa, layouts
from edgemoe.hw.config import INSTRUCTION_BYTES, HardwareConfig
from edgemoe.hw.numerics.fixedpoint import quantize_multipliers
from edgemoe.sim.benches.core import DRAM_BYTES, TB, Program, random_image

#: Instructions live here; operands are allocated above it.
INSN_BASE = 0x100
DATA_START = 0x2000


class Allocator:
    """Bump allocator over the bench DRAM: byte-granular starts, random gaps between operands."""

    def __init__(self) -> None:
        self.at = DATA_START + random.randrange(0, 64)

    def take(self, nbytes: int) -> int:
        addr = self.at
        self.at += nbytes + random.randrange(0, 48)
        assert self.at < DRAM_BYTES, "bench operands do not fit the DRAM"
        return addr


@dataclass
class Matrix:
    """A matrix operand in DRAM: address, rows, columns, row stride (elements), int16 flag."""

    addr: int
    rows: int
    cols: int
    stride: int
    wide: int

    @property
    def nbytes(self) -> int:
        return ((self.rows - 1) * self.stride + self.cols) * (2 if self.wide else 1)


def new_matrix(alloc: Allocator, rows: int, cols: int, wide: int, image: np.ndarray) -> Matrix:
    """Allocate a matrix with a random row stride (>= cols) and fill it with random values."""
    stride = cols + random.choice([0, 0, random.randint(1, 9)])
    mat = Matrix(0, rows, cols, stride, wide)
    mat.addr = alloc.take(mat.nbytes)
    hi = 2**15 if wide else 2**7
    values = np.random.randint(-hi, hi, size=rows * stride)
    raw = values.astype("<i2" if wide else "i1").view(np.uint8)
    image[mat.addr : mat.addr + mat.nbytes] = raw[: mat.nbytes]
    return mat


def act_std(wide: int) -> float:
    """Standard deviation of a uniformly random int8 or int16 activation."""
    return (2**16 if wide else 2**8) / np.sqrt(12)


def weights_and_params(
    cfg: HardwareConfig, alloc: Allocator, image: np.ndarray, k: int, n: int, x16: int, y16: int
) -> tuple[int, int]:
    """Random int8 W[k, n] and per-channel epilogue records; returns (w_addr, p_addr).

    The scales are those a calibration would pick for an output spread of about a third of its
    range (times a random factor per channel), quantized as the compiler does.
    """
    w = np.random.randint(-128, 128, size=(k, n))
    acc_std = np.sqrt(k) * act_std(x16) * 128 / np.sqrt(3)
    y_max = 2**15 - 1 if y16 else 127
    scales = (y_max / 3) / acc_std * np.exp2(np.random.uniform(-1.5, 1.5, size=n))
    mult, shift = quantize_multipliers(scales)
    bias = np.random.randint(-int(acc_std), int(acc_std) + 1, size=n)
    # The tiles' zero padding is only a convention: the golden model never reads it, so fill it
    # with random bytes half of the time (the RTL must zero the X lanes past k instead).
    kt, nt = layouts.weight_tiles(k, n, cfg)
    padded = np.zeros((kt * cfg.array_rows, nt * cfg.array_cols), dtype=np.int64)
    if random.random() < 0.5:
        padded[:] = np.random.randint(-128, 128, size=padded.shape)
    padded[:k, :n] = w
    packed = layouts.pack_weights(padded, cfg)
    params = layouts.pack_epilogue(bias, mult, shift)
    w_addr, p_addr = alloc.take(len(packed)), alloc.take(len(params))
    image[w_addr : w_addr + len(packed)] = np.frombuffer(packed, np.uint8)
    image[p_addr : p_addr + len(params)] = np.frombuffer(params, np.uint8)
    return w_addr, p_addr


def matmul(
    cfg: HardwareConfig,
    alloc: Allocator,
    image: np.ndarray,
    x: Matrix,
    n: int,
    *,
    y16: int,
    gelu: int = 0,
    gelu_frac: int = 0,
    residual: str = "none",
    y: Matrix | None = None,
) -> tuple[isa.Instruction, Matrix]:
    """A MATMUL of ``x`` by fresh random weights into ``y`` (a new matrix unless given).

    ``residual``: "none", "other" (a separate R with Y's layout) or "inplace" (R is Y).
    """
    w_addr, p_addr = weights_and_params(cfg, alloc, image, x.cols, n, x.wide, y16)
    if y is None:
        y = new_matrix(alloc, x.rows, n, y16, image)
    r_addr = y.addr
    if residual == "other":
        r = Matrix(alloc.take(y.nbytes), y.rows, y.cols, y.stride, y16)
        hi = 2**15 if y16 else 2**7
        vals = np.random.randint(-hi, hi, size=y.rows * y.stride).astype("<i2" if y16 else "i1")
        image[r.addr : r.addr + r.nbytes] = vals.view(np.uint8)[: r.nbytes]
        r_addr = r.addr
    insn = isa.make(
        "MATMUL",
        x16=x.wide,
        y16=y16,
        gelu=gelu,
        residual=int(residual != "none"),
        m=x.rows,
        k=x.cols,
        n=n,
        x_addr=x.addr,
        x_stride=x.stride,
        w_addr=w_addr,
        p_addr=p_addr,
        y_addr=y.addr,
        y_stride=y.stride,
        r_addr=r_addr,
        gelu_frac=gelu_frac,
    )
    return insn, y


def random_matmul(
    cfg: HardwareConfig, alloc: Allocator, image: np.ndarray, x: Matrix | None = None
) -> tuple[isa.Instruction, Matrix]:
    """A MATMUL with every option drawn at random; reads ``x`` if given (a chain)."""
    if x is None:
        m, k = random.randint(1, 40), random.randint(1, 70)
        x = new_matrix(alloc, m, k, random.randint(0, 1), image)
    y16 = random.randint(0, 1)
    gelu = random.randint(0, 1)
    return matmul(
        cfg,
        alloc,
        image,
        x,
        random.randint(1, 70),
        y16=y16,
        gelu=gelu,
        # Formats where GELU's curve matters most: a few integer bits above the fraction.
        gelu_frac=random.choice([random.randint(0, 15), (13 if y16 else 5) - random.randint(0, 3)]),
        residual=random.choice(["none", "other", "inplace"]),
    )


def program(insns: list[isa.Instruction], image: np.ndarray) -> Program:
    stream = [isa.encode(i) for i in insns] + [isa.encode(isa.make("END"))]
    assert INSN_BASE + INSTRUCTION_BYTES * len(stream) <= DATA_START
    return Program(stream, image, INSN_BASE)


def random_program(cfg: HardwareConfig, count: int, chain: bool) -> Program:
    """``count`` random MATMULs; with ``chain`` each reads the previous one's output."""
    image, alloc = random_image(), Allocator()
    insns: list[isa.Instruction] = []
    y = None
    for _ in range(count):
        insn, y = random_matmul(cfg, alloc, image, y if chain else None)
        insns.append(insn)
    return program(insns, image)


# --------------------------------------------------------------------------- tests
async def start(dut: SimHandleBase, pause: float = 0.0) -> TB:
    tb = TB(dut)
    await tb.reset()
    tb.back_pressure(pause)
    return tb


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def random_matmuls(dut: SimHandleBase) -> None:
    """Independent random MATMULs, several per program."""
    tb = await start(dut)
    for _ in range(4):
        await tb.run(random_program(tb.cfg, 3, chain=False))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def chained_matmuls(dut: SimHandleBase) -> None:
    """Each MATMUL reads the previous one's output (its width decides the next x16)."""
    tb = await start(dut)
    for _ in range(2):
        await tb.run(random_program(tb.cfg, 3, chain=True))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def back_pressure(dut: SimHandleBase) -> None:
    """Random MATMULs with every AXI channel of the RAM stalling at random."""
    tb = await start(dut, 0.4)
    for _ in range(2):
        await tb.run(random_program(tb.cfg, 3, chain=True))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    """m = 0 (nothing read or written), 1x1x1, exact multiples of the array, and a k whose
    rows fill the activation buffer so the tokens come in several blocks; then X, Y and R
    rows crossing a 4 KiB boundary."""
    tb = await start(dut)
    cfg = tb.cfg
    image, alloc = random_image(), Allocator()
    insns = []
    x = new_matrix(alloc, 3, 5, 0, image)
    insn, _ = matmul(cfg, alloc, image, x, 7, y16=0)
    insns.append(isa.make("MATMUL", **{**insn.fields, "m": 0}))
    insns.append(matmul(cfg, alloc, image, new_matrix(alloc, 1, 1, 1, image), 1, y16=1)[0])
    x = new_matrix(alloc, cfg.array_rows, 2 * cfg.array_rows, 0, image)
    insns.append(matmul(cfg, alloc, image, x, 2 * cfg.array_cols, y16=0, residual="inplace")[0])
    # Rows of k elements take ceil(k / rows) activation words: ask for more tokens than fit.
    kt = -(-70 // cfg.array_rows)
    m = min(cfg.acc_buffer_depth, cfg.act_buffer_depth // kt) + 3
    x = new_matrix(alloc, m, 70, 1, image)
    insns.append(matmul(cfg, alloc, image, x, 9, y16=1, gelu=1, gelu_frac=11)[0])
    alloc.at = 0x10000 - 37  # straddle the 4 KiB (and 64 KiB) boundary
    x = new_matrix(alloc, 5, 33, 1, image)
    insns.append(matmul(cfg, alloc, image, x, 21, y16=1, residual="other")[0])
    await tb.run(program(insns, image))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def vit_mlp_block(dut: SimHandleBase) -> None:
    """The MLP of a tiny ViT block: 17 tokens, fc1 32 -> 64 with GELU, fc2 64 -> 32 added to
    the residual stream in place."""
    tb = await start(dut)
    cfg = tb.cfg
    image, alloc = random_image(), Allocator()
    stream = new_matrix(alloc, 17, 32, 0, image)
    fc1, hidden = matmul(cfg, alloc, image, stream, 64, y16=0, gelu=1, gelu_frac=4)
    fc2, _ = matmul(cfg, alloc, image, hidden, 32, y16=0, residual="inplace", y=stream)
    await tb.run(program([fc1, fc2], image))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def cycles_vs_model(dut: SimHandleBase) -> None:
    """Log CYCLES and MAC_CYCLES of single MATMULs beside the cycle model's figure."""
    tb = await start(dut)
    cfg = tb.cfg
    for m, k, n in ((17, 32, 64), (17, 64, 32), (40, 70, 70)):
        image, alloc = random_image(), Allocator()
        insn, _ = matmul(cfg, alloc, image, new_matrix(alloc, m, k, 0, image), n, y16=0)
        got = await tb.run(program([insn], image))
        model = matmul_cost(m, k, n, 1, 1, cfg)
        tb.log.info(
            "MATMUL %dx%dx%d: %d cycles (%d MAC cycles, %d MACs = %d useful array cycles), "
            "cycle model %d",
            m,
            k,
            n,
            got["CYCLES"],
            got["MAC_CYCLES"],
            model.macs,
            -(-model.macs // (cfg.array_rows * cfg.array_cols)),
            model.cycles,
        )
        kt, nt = layouts.weight_tiles(k, n, cfg)
        assert got["MAC_CYCLES"] == m * kt * nt, "MAC_CYCLES is not one per token and tile"
