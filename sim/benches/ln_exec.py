"""cocotb bench of ``em_core``'s LAYERNORM unit: random LAYERNORM programs, alone and chained
with MATMULs.

Reuses the system bench's :class:`~edgemoe.sim.benches.core.TB`: every program runs on the RTL
and on the golden model (whose ``ops.layernorm_op`` calls ``numerics.layernorm.layernorm``),
every retired instruction's writes are compared by trace digest, then the whole DRAM, status and
the DRAM byte counters. Parameters come from float gamma/beta, eps and scales through
``numerics.layernorm.layernorm_params`` and are packed with ``layouts.pack_layernorm`` at
byte-granular addresses; X and Y use the MATMUL bench's allocator (random gaps that must
survive) and random row strides.

Programs: random LAYERNORMs (m 1..20, d 1..300 and 32/192, int8/int16 in and out, in place or
not), LN -> MATMUL chains as in a ViT block, edge cases (d = 1, d a multiple of the lanes, a
row crossing 4 KiB, an int16 d above 2^14, eps 0 and 2^60, shift 64, d above the unit's
buffer), and the same with every AXI channel stalling at random.
"""

from __future__ import annotations

import dataclasses
import random

import cocotb
import numpy as np
from cocotb.handle import SimHandleBase

from edgemoe.hw import isa, layouts
from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.layernorm import layernorm_params
from edgemoe.sim.benches.core import TB, Program, random_image
from edgemoe.sim.benches.matmul import Allocator, Matrix, act_std, matmul, new_matrix, program

#: em_ln_exec's D_MAX: longer rows are UNIMPLEMENTED.
D_MAX = 1024


def place_params(
    alloc: Allocator,
    image: np.ndarray,
    eps_q: int,
    mult: int,
    shift: int,
    gamma_q: np.ndarray,
    beta_q: np.ndarray,
) -> int:
    """Pack a LAYERNORM parameter block into ``image``; returns its address."""
    blob = layouts.pack_layernorm(eps_q, mult, shift, gamma_q, beta_q)
    addr = alloc.take(len(blob))
    image[addr : addr + len(blob)] = np.frombuffer(blob, np.uint8)
    return addr


def params(
    cfg: HardwareConfig, alloc: Allocator, image: np.ndarray, d: int, x16: int, y16: int
) -> int:
    """Quantized parameters of random float gamma/beta, as the compiler derives them."""
    gamma = np.random.normal(1.0, 0.5, size=d)
    beta = np.random.normal(0.0, 0.5, size=d)
    x_scale = random.choice([0.5, 1.0, 4.0]) / act_std(x16)
    y_scale = random.uniform(2.0, 6.0) / (2**15 if y16 else 2**7)
    eps = random.choice([1e-5, 1e-6, 1e-2])
    gamma_q, beta_q, eps_q, mult, shift = layernorm_params(
        gamma, beta, eps, x_scale, y_scale, d, cfg
    )
    return place_params(alloc, image, eps_q, mult, shift, gamma_q, beta_q)


def layernorm(
    cfg: HardwareConfig,
    alloc: Allocator,
    image: np.ndarray,
    x: Matrix,
    *,
    y16: int,
    y: Matrix | None = None,
) -> tuple[isa.Instruction, Matrix]:
    """A LAYERNORM of ``x`` into ``y`` (a new matrix unless given; ``y = x`` is in place)."""
    p_addr = params(cfg, alloc, image, x.cols, x.wide, y16)
    if y is None:
        y = new_matrix(alloc, x.rows, x.cols, y16, image)
    insn = isa.make(
        "LAYERNORM",
        x16=x.wide,
        y16=y16,
        m=x.rows,
        d=x.cols,
        x_addr=x.addr,
        x_stride=x.stride,
        y_addr=y.addr,
        y_stride=y.stride,
        p_addr=p_addr,
    )
    return insn, y


def random_layernorm(cfg: HardwareConfig, alloc: Allocator, image: np.ndarray) -> isa.Instruction:
    """One LAYERNORM with random shape, formats and placement (in place a quarter of the time)."""
    m = random.randint(1, 20)
    d = random.choice([random.randint(1, 300), 32, 192])
    x16 = random.randint(0, 1)
    x = new_matrix(alloc, m, d, x16, image)
    if random.random() < 0.25:
        return layernorm(cfg, alloc, image, x, y16=x16, y=x)[0]
    return layernorm(cfg, alloc, image, x, y16=random.randint(0, 1))[0]


def random_program(cfg: HardwareConfig, count: int) -> Program:
    """``count`` independent random LAYERNORMs on one fresh DRAM image."""
    image, alloc = random_image(), Allocator()
    return program([random_layernorm(cfg, alloc, image) for _ in range(count)], image)


# --------------------------------------------------------------------------- tests
async def start(dut: SimHandleBase, pause: float = 0.0) -> TB:
    tb = TB(dut)
    await tb.reset()
    tb.back_pressure(pause)
    return tb


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def random_layernorms(dut: SimHandleBase) -> None:
    """Independent random LAYERNORMs, several per program."""
    tb = await start(dut)
    for _ in range(3):
        await tb.run(random_program(tb.cfg, 4))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def back_pressure(dut: SimHandleBase) -> None:
    """Random LAYERNORMs with every AXI channel of the RAM stalling at random."""
    tb = await start(dut, 0.4)
    await tb.run(random_program(tb.cfg, 4))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def vit_block(dut: SimHandleBase) -> None:
    """LN -> MATMUL (fc1 with GELU) -> MATMUL (fc2, residual in place) -> final LN in place,
    on a 17-token stream of width 32, then LN -> MATMUL chains with random formats."""
    tb = await start(dut)
    cfg = tb.cfg
    image, alloc = random_image(), Allocator()
    stream = new_matrix(alloc, 17, 32, 0, image)
    ln1, normed = layernorm(cfg, alloc, image, stream, y16=0)
    fc1, hidden = matmul(cfg, alloc, image, normed, 64, y16=0, gelu=1, gelu_frac=4)
    fc2, _ = matmul(cfg, alloc, image, hidden, 32, y16=0, residual="inplace", y=stream)
    final, _ = layernorm(cfg, alloc, image, stream, y16=0, y=stream)
    await tb.run(program([ln1, fc1, fc2, final], image))
    image, alloc = random_image(), Allocator()
    insns: list[isa.Instruction] = []
    for _ in range(2):
        x = new_matrix(
            alloc, random.randint(1, 20), random.randint(1, 70), random.randint(0, 1), image
        )
        ln, y = layernorm(cfg, alloc, image, x, y16=random.randint(0, 1))
        mm, _ = matmul(cfg, alloc, image, y, random.randint(1, 40), y16=random.randint(0, 1))
        insns += [ln, mm]
    await tb.run(program(insns, image))


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    """d = 1, d a multiple of the lanes, rows crossing 4 KiB; then the limits: an int16 row
    longer than 2^14, eps 0 and 2^60, shift 64 (ILLEGAL_FIELD) and a row longer than the
    unit's buffer (UNIMPLEMENTED)."""
    tb = await start(dut)
    cfg = tb.cfg
    lanes = cfg.axi_bytes // 2
    image, alloc = random_image(), Allocator()
    insns = [
        layernorm(cfg, alloc, image, new_matrix(alloc, 3, 1, 1, image), y16=1)[0],
        layernorm(cfg, alloc, image, new_matrix(alloc, 2, 2 * lanes, 0, image), y16=0)[0],
        layernorm(cfg, alloc, image, new_matrix(alloc, 2, 4 * lanes, 1, image), y16=0)[0],
    ]
    alloc.at = 0x10000 - 37  # straddle the 4 KiB (and 64 KiB) boundary
    insns.append(layernorm(cfg, alloc, image, new_matrix(alloc, 4, 45, 1, image), y16=1)[0])
    await tb.run(program(insns, image))

    image, alloc = random_image(), Allocator()
    ok, _ = layernorm(cfg, alloc, image, new_matrix(alloc, 2, 10, 0, image), y16=0)
    base = dict(ok.fields)
    gamma, beta = np.ones(10, dtype=np.int64), np.zeros(10, dtype=np.int64)
    for eps_q, shift in ((0, 10), (1 << 60, 10), (5, 64)):
        p_addr = place_params(alloc, image, eps_q, 1 << 14, shift, gamma, beta)
        bad = isa.make("LAYERNORM", **{**base, "p_addr": p_addr})
        await tb.run(program([ok, bad], image))
    await tb.run(
        program([ok, isa.make("LAYERNORM", **{**base, "x16": 1, "d": (1 << 14) + 1})], image)
    )
    long_row = isa.make("LAYERNORM", **{**base, "d": D_MAX + 1})
    await tb.run(dataclasses.replace(program([ok, long_row], image), unimplemented=1))
