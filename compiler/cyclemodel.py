"""Analytical cycle model of the accelerator, per instruction, per layer and per frame.

The model follows the sequencer's loops (see docs/isa.md): a MATMUL is cut into token blocks of
``mt`` rows (bounded by the accumulator and activation buffers); for each block and each output
tile of ``array_cols`` channels the array consumes one token per cycle for each of the
``ceil(k / array_rows)`` weight tiles, while the next weight tile streams into the shadow
buffer over AXI and swaps in without a bubble (the pipeline fills once per token block). A weight
tile whose load takes longer than the block's tokens (few tokens, e.g. a rarely chosen expert)
makes that step memory bound. Loads of a block's activations overlap the previous block's
compute; only the first block's load, the last block's output drain and the DRAM latency are
exposed. This is the design the RTL is built to meet: the model is its specification.

Data-dependent work (how many tokens each expert gets) is predicted for uniform routing:
``m * k / e`` tokens per expert, every expert active. The RTL reports the real figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.isa import Instruction


@dataclass
class Cost:
    cycles: int = 0
    macs: int = 0
    dram_bytes: int = 0

    def __iadd__(self, other: Cost) -> Cost:
        self.cycles += other.cycles
        self.macs += other.macs
        self.dram_bytes += other.dram_bytes
        return self


def _beats(nbytes: int, cfg: HardwareConfig) -> int:
    return math.ceil(nbytes / cfg.axi_bytes)


def matmul_cost(
    m: int, k: int, n: int, xb: int, yb: int, cfg: HardwareConfig, extra_read: int = 0,
    x_resident: bool = False,
) -> Cost:
    """Cycles of an m x k @ k x n product through the array (xb, yb: bytes per element).

    ``x_resident``: X is still in the activation buffer (written by a recent instruction), so
    its first block is not loaded from DRAM before compute can start.
    """
    if m == 0:
        return Cost()
    kt = math.ceil(k / cfg.array_rows)
    nt = math.ceil(n / cfg.array_cols)
    mt = max(1, min(m, cfg.acc_buffer_depth, cfg.act_buffer_depth // kt))
    tile_beats = _beats(cfg.weight_tile_bytes, cfg)
    # The array pipeline fills once per token block: weights are double buffered, so the next
    # tile's tokens follow the previous tile's without a bubble.
    fill = cfg.array_rows + cfg.array_cols
    # Outputs drain through a write buffer while the next instruction starts, so only the
    # first weight tile's DRAM latency and a non-resident X's first block are exposed.
    cycles = cfg.dram_latency_cycles + (0 if x_resident else _beats(mt * k * xb, cfg))
    for start in range(0, m, mt):
        rows = min(mt, m - start)
        cycles += nt * kt * max(rows, tile_beats) + fill
    weight_bytes = kt * nt * cfg.weight_tile_bytes * math.ceil(m / mt)
    traffic = m * k * xb + m * n * yb + weight_bytes + n * 8 + extra_read
    return Cost(cycles, m * k * n, traffic)


def _never(addr: int, nbytes: int) -> bool:
    return False


def instruction_cost(
    insn: Instruction,
    cfg: HardwareConfig,
    expert_tokens: int | None = None,
    resident: Callable[[int, int], bool] = _never,
) -> Cost:
    """Cost of one instruction; ``resident(addr, nbytes)`` says whether an operand is on chip."""
    f = insn.fields
    if insn.op == "MATMUL":
        m = expert_tokens if f["expert"] else f["m"]
        xb, yb = (2 if f["x16"] else 1), (2 if f["y16"] else 1)
        extra = m * f["n"] * yb if (f["residual"] or f["scatter_acc"]) else 0
        x_on_chip = resident(f["x_addr"], f["m"] * f["x_stride"] * xb) if not f["expert"] else True
        return matmul_cost(m or 0, f["k"], f["n"], xb, yb, cfg, extra, x_on_chip)
    if insn.op == "ATTN_QK":
        xb = 2 if f["x16"] else 1
        c = matmul_cost(f["m"], f["d"], f["n"], xb, 2, cfg,
                        x_resident=resident(f["q_addr"], f["m"] * f["q_stride"] * xb))
        c.dram_bytes += f["m"] * 8
        return c
    if insn.op == "ATTN_AV":
        xb = 2 if f["x16"] else 1
        # P comes from the scores (2 bytes each) and the row statistics, not from DRAM as X.
        c = matmul_cost(f["m"], f["n"], f["d"], 2, 2 if f["y16"] else 1, cfg,
                        x_resident=resident(f["z_addr"], f["m"] * f["n"] * 2))
        c.dram_bytes += f["n"] * f["d"] * xb + f["m"] * 8
        return c
    if insn.op == "LAYERNORM":
        m, d = f["m"], f["d"]
        xb, yb = (2 if f["x16"] else 1), (2 if f["y16"] else 1)
        per_row = 2 * math.ceil(d / cfg.array_rows)  # statistics pass, then normalise pass
        cycles = cfg.dram_latency_cycles + max(m * per_row, _beats(m * d * (xb + yb), cfg))
        return Cost(cycles, 0, m * d * (xb + yb) + d * 6 + 16)
    if insn.op == "GATE_TOPK":
        m, e = f["m"], f["e"]
        cycles = cfg.dram_latency_cycles + m * math.ceil(e / cfg.array_cols) * 2 + m * f["k"]
        return Cost(cycles, 0, m * e * 2 + 4 * e + 4 * m * f["k"])
    if insn.op == "DMA_COPY":
        nbytes = f["rows"] * f["row_bytes"]
        return Cost(cfg.dram_latency_cycles + 2 * _beats(nbytes, cfg), 0, 2 * nbytes)
    return Cost(1, 0, 0)  # END, SYNC, EXPERT_LOOP (loop setup)


def _written(insn: Instruction) -> tuple[int, int] | None:
    """The DRAM range an instruction's main output occupies (None if it has none)."""
    f = insn.fields
    if insn.op == "MATMUL" and not f["scatter_acc"] and not f["expert"]:
        return f["y_addr"], f["m"] * f["y_stride"] * (2 if f["y16"] else 1)
    if insn.op == "ATTN_QK":
        return f["z_addr"], f["m"] * f["n"] * 2
    if insn.op == "ATTN_AV":
        return f["o_addr"], f["m"] * f["o_stride"] * (2 if f["y16"] else 1)
    if insn.op == "LAYERNORM":
        return f["y_addr"], f["m"] * f["y_stride"] * (2 if f["y16"] else 1)
    return None


class _ActivationBuffer:
    """Recently written outputs kept on chip (write-through), newest first, up to capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.regions: list[tuple[int, int]] = []

    def holds(self, addr: int, nbytes: int) -> bool:
        return any(a <= addr and addr + nbytes <= a + n for a, n in self.regions)

    def write(self, addr: int, nbytes: int) -> None:
        # An overlapping older region stays resident: the write updates its on-chip copy too.
        kept = [r for r in self.regions if r != (addr, nbytes)]
        self.regions, total = [], 0
        for a, n in [(addr, nbytes), *kept]:
            if total + n > self.capacity:
                break
            self.regions.append((a, n))
            total += n


def program_cost(insns: list[Instruction], cfg: HardwareConfig) -> list[Cost]:
    """Cost of each instruction; an EXPERT_LOOP's cost includes its body for all experts.

    Operands written by recent instructions are found in the activation buffer (its capacity is
    ``act_buffer_bytes``) and are not loaded again before compute starts.
    """
    costs = [Cost() for _ in insns]
    buf = _ActivationBuffer(cfg.act_buffer_bytes)
    i = 0
    while i < len(insns):
        insn = insns[i]
        costs[i] += instruction_cost(insn, cfg, resident=buf.holds)
        if insn.op == "EXPERT_LOOP":
            e, body = insn["e"], insn["body"]
            # Uniform routing: each of the e experts gets capacity * k / e tokens.
            k = _gate_k(insns, i)
            tokens = max(1, round(insn["capacity"] * k / e))
            for j in range(i + 1, i + 1 + body):
                c = instruction_cost(insns[j], cfg, expert_tokens=tokens, resident=buf.holds)
                costs[j] += Cost(c.cycles * e, c.macs * e, c.dram_bytes * e)
            i += body
        out = _written(insn)
        if out is not None:
            buf.write(*out)
        i += 1
    return costs


def _gate_k(insns: list[Instruction], loop_index: int) -> int:
    for j in range(loop_index - 1, -1, -1):
        if insns[j].op == "GATE_TOPK" and insns[j]["route_addr"] == insns[loop_index]["route_addr"]:
            return insns[j]["k"]
    return 1
