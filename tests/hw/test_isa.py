"""ISA: the table is consistent, every opcode round-trips, bad values name index and field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw import isa
from edgemoe.hw.isa import IsaError


def test_table_is_consistent() -> None:
    assert len({f.opcode for f in isa.FORMATS}) == len(isa.FORMATS)
    for fmt in isa.FORMATS:
        assert fmt.used_bits <= isa.INSTRUCTION_BITS
        names = [f.name for f in fmt.fields]
        assert len(names) == len(set(names)), fmt.mnemonic
        # fields tile the word without gaps or overlaps
        at = isa.OPCODE_BITS
        for f in fmt.fields:
            assert fmt.positions[f.name] == at
            at += f.width


def _instructions(fmt: isa.Format) -> st.SearchStrategy[isa.Instruction]:
    fields = {f.name: st.integers(f.lo, f.max_value) for f in fmt.fields}
    inst = st.fixed_dictionaries(fields).map(lambda d: isa.Instruction(fmt.mnemonic, d))
    if fmt.mnemonic == "GATE_TOPK":
        inst = inst.filter(lambda i: i["k"] <= i["e"])
    return inst


@pytest.mark.parametrize("fmt", isa.FORMATS, ids=lambda f: f.mnemonic)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_round_trip(fmt: isa.Format, data: st.DataObject) -> None:
    insn = data.draw(_instructions(fmt))
    raw = isa.encode(insn)
    assert len(raw) == isa.INSTRUCTION_BYTES
    back = isa.decode(raw)
    assert back == insn
    assert isa.encode(back) == raw


def test_program_round_trip_and_disassembly() -> None:
    prog = [
        isa.make("MATMUL", x16=1, m=129, k=192, n=576, x_addr=0x1000, x_stride=192, y_stride=576),
        isa.make("EXPERT_LOOP", e=16, body=2, capacity=129, route_addr=0x2000, expert_stride=64),
        isa.make("END"),
    ]
    raw = isa.encode_program(prog)
    assert isa.decode_program(raw) == prog
    text = isa.disassemble(prog, {1: "moe"})
    assert "MATMUL x16 m=129 k=192 n=576 x_addr=0x00001000" in text
    assert text.splitlines()[1].endswith("; moe")


def test_unknown_opcode_names_instruction_index() -> None:
    raw = isa.encode_program([isa.make("SYNC"), isa.make("END")])
    bad = raw[:32] + bytes([0xEE]) + raw[33:]
    with pytest.raises(IsaError, match=r"instruction 1: unknown opcode 0xee"):
        isa.decode_program(bad)


def test_out_of_range_field_names_field_and_index() -> None:
    insns = [isa.make("END"), isa.Instruction("MATMUL", {"k": 1 << 15, "n": 1, "x_stride": 1, "y_stride": 1})]
    with pytest.raises(IsaError, match=r"instruction 1 \(MATMUL\): field 'k'"):
        isa.encode_program(insns)
    with pytest.raises(IsaError, match=r"field 'rows' = 0 out of range"):
        isa.make("DMA_COPY", rows=0, row_bytes=1)
    with pytest.raises(IsaError, match=r"field 'k' = 3 exceeds e"):
        isa.make("GATE_TOPK", m=4, e=2, k=3)


def test_reserved_bits_must_be_zero() -> None:
    raw = bytearray(isa.encode(isa.make("END")))
    raw[31] = 0x80
    with pytest.raises(IsaError, match="reserved bits"):
        isa.decode(bytes(raw), 7)


def test_isa_doc_is_current() -> None:
    from pathlib import Path

    from edgemoe.hw import isa_doc

    doc = Path(__file__).resolve().parents[2] / "docs" / "isa.md"
    assert doc.read_text() == isa_doc.render(), "docs/isa.md is stale: run `edgemoe isa-doc`"
