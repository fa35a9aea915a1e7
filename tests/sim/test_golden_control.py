"""Control flow, errors, registers and the trace of the golden model."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from golden_harness import PROGRAM_ADDR, Harness, ref_epilogue, ref_route_table, ref_tiles

from edgemoe.hw import isa, load, regs
from edgemoe.hw.regs import ErrorCode
from edgemoe.sim.golden import GoldenMachine, TraceEntry, exact_matmul, region_digest

CFG = load("tiny")
E = ErrorCode


def small_matmul(h: Harness, **flags: int) -> isa.Instruction:
    """A valid 2x4 @ 4x4 int8 MATMUL with its operands placed."""
    x = h.put(bytes(range(8)))
    w = h.put(ref_tiles(np.ones((4, 4), int), 4, 4))
    p = h.put(ref_epilogue(np.zeros(4), np.full(4, 1 << 15), np.full(4, 15)))
    y = h.alloc(8)
    fields = {"m": 2, "k": 4, "n": 4, "x_addr": x, "x_stride": 4, "w_addr": w, "p_addr": p, "y_addr": y, "y_stride": 4}
    return isa.make("MATMUL", **{**fields, **flags})


# --------------------------------------------------------------------------- errors
def test_unknown_opcode() -> None:
    h = Harness(CFG)
    bad = bytearray(32)
    bad[0] = 0x7F
    raw = isa.encode_program([isa.make("SYNC"), isa.make("SYNC")]) + bytes(bad)
    h.start(raw + isa.encode(isa.make("END")))
    assert h.error() == (E.ILLEGAL_OPCODE, 2)
    assert h.reg("INSN_RETIRED") == 2
    assert "0x7f" in (h.m.error_message or "")


def test_reserved_bits_are_illegal_field() -> None:
    h = Harness(CFG)
    raw = bytearray(isa.encode(isa.make("SYNC")))
    raw[31] = 0x80
    h.start(bytes(raw) + isa.encode(isa.make("END")))
    assert h.error() == (E.ILLEGAL_FIELD, 0)


def test_field_out_of_range_is_illegal_field() -> None:
    h = Harness(CFG)
    raw = bytearray(isa.encode(isa.make("GATE_TOPK", m=4, e=2, k=1)))
    raw[4] = (raw[4] & 0xF0) | 3  # k = 3 > e = 2
    h.start(isa.encode(isa.make("SYNC")) + bytes(raw) + isa.encode(isa.make("END")))
    assert h.error() == (E.ILLEGAL_FIELD, 1)


def test_dram_out_of_range() -> None:
    h = Harness(CFG)
    mm = small_matmul(h)
    far = isa.make("MATMUL", **{**mm.fields, "y_addr": h.m.dram.size - 4})
    h.start([mm, far, isa.make("END")])
    assert h.error() == (E.DRAM_RANGE, 1)
    assert h.reg("INSN_RETIRED") == 1


def test_dma_index_out_of_range() -> None:
    h = Harness(CFG)
    idx = h.put(np.array([0, 40000], "<u2").tobytes())
    h.start([isa.make("DMA_COPY", src_indexed=1, rows=2, row_bytes=1, src_addr=h.alloc(4),
                      src_stride=1000, dst_addr=h.alloc(4), dst_stride=1, idx_addr=idx),
             isa.make("END")])
    assert h.error() == (E.DRAM_RANGE, 0)


@pytest.mark.parametrize("count", [0, 3])
def test_missing_end(count: int) -> None:
    h = Harness(CFG)
    h.start([isa.make("SYNC")] * count)
    assert h.error() == (E.NO_END, count)
    assert h.reg("INSN_RETIRED") == count


def test_instruction_fetch_out_of_range() -> None:
    m = GoldenMachine(CFG, 1 << 16)
    m.write_reg(regs.BY_NAME["INSN_BASE"].offset, (1 << 16) - 16)
    m.write_reg(regs.BY_NAME["INSN_COUNT"].offset, 1)
    m.write_reg(regs.BY_NAME["CTRL"].offset, regs.CTRL_START)
    assert m.read_reg(regs.BY_NAME["ERROR_CODE"].offset) == E.DRAM_RANGE


def test_expert_matmul_outside_loop() -> None:
    h = Harness(CFG)
    h.start([isa.make("SYNC"), small_matmul(h, expert=1), isa.make("END")])
    assert h.error() == (E.EXPERT_OUTSIDE_LOOP, 1)


@pytest.mark.parametrize("flag", ["gather_x", "scatter_acc"])
def test_expert_flags_need_expert(flag: str) -> None:
    h = Harness(CFG)
    h.start([small_matmul(h, **{flag: 1}), isa.make("END")])
    assert h.error() == (E.ILLEGAL_FIELD, 0)


def test_shift_above_63_is_illegal_field() -> None:
    h = Harness(CFG)
    mm = small_matmul(h)
    h.m.write_dram(mm["p_addr"] + 8 + 6, bytes([64]))  # channel 1's shift
    h.start([mm, isa.make("END")])
    assert h.error() == (E.ILLEGAL_FIELD, 0)


def _loop(h: Harness, lists: list[list[tuple[int, int]]], capacity: int, body: int) -> isa.Instruction:
    route = h.put(ref_route_table(lists, capacity))
    return isa.make("EXPERT_LOOP", e=len(lists), body=body, capacity=capacity, route_addr=route)


def test_nested_loop() -> None:
    h = Harness(CFG)
    outer = _loop(h, [[(0, 1)]], 2, 2)
    h.start([outer, isa.make("SYNC"), outer, isa.make("SYNC"), isa.make("END")])
    assert h.error() == (E.NESTED_LOOP, 2)


def test_count_above_capacity() -> None:
    h = Harness(CFG)
    loop = _loop(h, [[(0, 1)], [(0, 1), (1, 1), (2, 1)]], 3, 1)
    h.start([isa.make("EXPERT_LOOP", **{**loop.fields, "capacity": 2}), isa.make("SYNC"),
             isa.make("END")])
    assert h.error() == (E.ILLEGAL_FIELD, 0)


@pytest.mark.parametrize("lists", [[[(0, 1)], [(1, 1)]], [[], []]])
def test_loop_body_past_the_end(lists: list[list[tuple[int, int]]]) -> None:
    """Whether the body runs or is skipped, the stream ran out: NO_END at INSN_COUNT."""
    h = Harness(CFG)
    h.start([isa.make("SYNC"), _loop(h, lists, 2, 3), isa.make("SYNC")])
    assert h.error() == (E.NO_END, 3)


# --------------------------------------------------------------------------- control flow
def test_loop_passes_skip_and_end() -> None:
    """Body runs once per expert with tokens; an all-empty loop skips its body entirely."""
    h = Harness(CFG)
    busy = _loop(h, [[(0, 1)], [], [(2, 1), (3, 1)], []], 4, 2)
    idle = _loop(h, [[], []], 4, 1)
    h.start([busy, isa.make("SYNC"), isa.make("SYNC"), idle, isa.make("SYNC"), isa.make("END")])
    assert h.reg("STATUS") == regs.STATUS_DONE
    got = [(t.index, t.mnemonic, t.expert) for t in h.m.trace]
    assert got == [
        (0, "EXPERT_LOOP", None),
        (1, "SYNC", 0), (2, "SYNC", 0),
        (1, "SYNC", 2), (2, "SYNC", 2),
        (3, "EXPERT_LOOP", None),
        (5, "END", None),
    ]
    assert h.reg("INSN_RETIRED") == 7


def test_end_inside_loop_body_stops() -> None:
    h = Harness(CFG)
    h.start([_loop(h, [[(0, 1)], [(0, 1)]], 1, 2), isa.make("END"), isa.make("SYNC")])
    assert h.reg("STATUS") == regs.STATUS_DONE
    assert [(t.mnemonic, t.expert) for t in h.m.trace] == [("EXPERT_LOOP", None), ("END", 0)]


# --------------------------------------------------------------------------- registers
def test_registers() -> None:
    h = Harness(CFG)
    R = regs.BY_NAME
    assert h.reg64("CONFIG_HASH") == int(CFG.config_hash(), 16)
    h.run(small_matmul(h))
    assert h.reg("STATUS") == regs.STATUS_DONE
    assert h.reg64("CYCLES") == 0 and h.reg64("MAC_CYCLES") == 0
    assert h.reg64("DRAM_WR_BYTES") == 8
    assert h.reg("INSN_BASE") == PROGRAM_ADDR and h.reg("INSN_COUNT") == 2
    assert h.reg("CTRL") == 0
    h.m.write_reg(R["STATUS"].offset, 0xFF)  # read-only: ignored
    assert h.reg("STATUS") == regs.STATUS_DONE
    h.m.write_reg(R["CTRL"].offset, regs.CTRL_RESET)
    assert h.reg("STATUS") == 0 and h.reg("INSN_RETIRED") == 0 and h.reg64("DRAM_WR_BYTES") == 0
    with pytest.raises(ValueError, match="0x3c"):
        h.m.read_reg(0x3C)


def test_error_clears_on_next_start() -> None:
    h = Harness(CFG)
    h.start([isa.make("SYNC")])
    assert h.error() == (E.NO_END, 1)
    h.run(isa.make("SYNC"))
    assert h.reg("ERROR_CODE") == 0 and h.m.error_message is None


# --------------------------------------------------------------------------- trace
def test_trace_digests_and_callback() -> None:
    seen: list[TraceEntry] = []
    h = Harness(CFG)
    h.m.on_retire = seen.append
    mm = small_matmul(h)
    strided = isa.make("MATMUL", **{**mm.fields, "y_addr": h.alloc(32), "y_stride": 6})
    h.run(mm, strided)
    assert seen == h.m.trace
    dense, rows, end = h.m.trace
    assert dense.writes == [(mm["y_addr"], 8, region_digest(h.m.dram, mm["y_addr"], 8))]
    y = strided["y_addr"]
    assert [(a, n) for a, n, _ in rows.writes] == [(y, 4), (y + 6, 4)]
    for a, n, digest in rows.writes:
        assert digest == hashlib.sha256(h.m.read_dram(a, n)).hexdigest()
    assert end.writes == [] and end.mnemonic == "END" and end.index == 2


def test_trace_off_by_default() -> None:
    m = GoldenMachine(CFG, 1 << 16)
    m.write_dram(0, isa.encode(isa.make("END")))
    m.write_reg(regs.BY_NAME["INSN_COUNT"].offset, 1)
    m.write_reg(regs.BY_NAME["CTRL"].offset, regs.CTRL_START)
    assert m.trace == [] and m.read_reg(regs.BY_NAME["INSN_RETIRED"].offset) == 1


# --------------------------------------------------------------------------- exact products
def test_exact_matmul_fallback() -> None:
    """Above the float64 bound (here 2^27 * 2^27 * 64 = 2^60) the int64 path stays exact."""
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**27), 2**27, size=(5, 64))
    b = rng.integers(-(2**27), 2**27, size=(64, 3))
    expect = np.array([[sum(int(a[i, t]) * int(b[t, j]) for t in range(64)) for j in range(3)]
                       for i in range(5)], dtype=object)
    assert (exact_matmul(a, b).astype(object) == expect).all()
    small = exact_matmul(a >> 14, b >> 14)
    assert (small == (a >> 14) @ (b >> 14)).all()
