"""Analytical cycle model: structural properties (figures themselves come from `edgemoe inspect`)."""

from __future__ import annotations

from edgemoe.compiler.cyclemodel import matmul_cost, program_cost
from edgemoe.hw import config as hwconfig
from edgemoe.hw import isa

CFG = hwconfig.load("edge-moe-zcu102")


def test_large_resident_matmul_is_compute_bound() -> None:
    c = matmul_cost(129, 768, 192, 2, 2, CFG, x_resident=True)
    ideal = 129 * 768 * 192 / CFG.macs_per_cycle
    assert c.macs == 129 * 768 * 192
    assert ideal <= c.cycles <= ideal + CFG.dram_latency_cycles + CFG.array_rows + CFG.array_cols


def test_loading_x_costs_its_beats() -> None:
    on_chip = matmul_cost(129, 192, 576, 2, 2, CFG, x_resident=True)
    loaded = matmul_cost(129, 192, 576, 2, 2, CFG, x_resident=False)
    assert loaded.cycles - on_chip.cycles == -(-129 * 192 * 2 // CFG.axi_bytes)


def test_few_tokens_are_memory_bound_on_weight_tiles() -> None:
    """A tile holds each weight for m cycles; with m below a tile's AXI beats, loading dominates."""
    tile_beats = CFG.weight_tile_bytes // CFG.axi_bytes
    c = matmul_cost(2, 192, 384, 2, 2, CFG, x_resident=True)
    assert c.cycles >= (192 // 16) * (384 // 16) * tile_beats


def test_program_reuses_recent_outputs() -> None:
    mm = dict(x16=1, y16=1, m=64, k=64, n=64, x_stride=64, y_stride=64, w_addr=0x10000, p_addr=0x20000)
    first = isa.make("MATMUL", x_addr=0x100000, y_addr=0x200000, **mm)
    second = isa.make("MATMUL", x_addr=0x200000, y_addr=0x300000, **mm)  # reads first's output
    costs = program_cost([first, second, isa.make("END")], CFG)
    assert costs[1].cycles < costs[0].cycles
    assert costs[0].macs == costs[1].macs == 64 * 64 * 64


def test_expert_loop_counts_every_expert() -> None:
    gate = isa.make("GATE_TOPK", m=128, e=16, k=2, z_addr=0x1000, route_addr=0x2000)
    loop = isa.make("EXPERT_LOOP", e=16, body=1, capacity=128, route_addr=0x2000, expert_stride=0x4000)
    body = isa.make("MATMUL", x16=1, y16=1, expert=1, gather_x=1, k=192, n=384, x_stride=192, y_stride=384)
    costs = program_cost([gate, loop, body, isa.make("END")], CFG)
    assert costs[2].macs == 16 * (128 * 2 // 16) * 192 * 384
