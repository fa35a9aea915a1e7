"""The Verilog generator: headers restate the Python sources exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw import isa, regs
from edgemoe.hw.numerics import exp, gelu
from edgemoe.hw.rtl import gen


def test_isa_field_slices_match_the_table() -> None:
    text = gen.isa_header()
    for fmt in isa.FORMATS:
        assert f"`define EM_OP_{fmt.mnemonic} 8'h{fmt.opcode:02x}" in text
        for f in fmt.fields:
            m = re.search(rf"`define EM_{fmt.mnemonic}_{f.name.upper()}\(insn\) insn\[(\d+) \+: (\d+)\]", text)
            assert m, (fmt.mnemonic, f.name)
            assert (int(m[1]), int(m[2])) == (fmt.positions[f.name], f.width)


def test_register_offsets_and_error_codes() -> None:
    text = gen.regs_header()
    for r in regs.REGISTERS:
        assert f"`define EM_REG_{r.name} 8'h{r.offset:02x}" in text
    for code in regs.ErrorCode:
        assert f"`define EM_ERR_{code.name} {int(code)}" in text


@pytest.mark.parametrize("preset", hwconfig.preset_names())
def test_rom_contents_are_the_numerics_tables(preset: str) -> None:
    cfg = hwconfig.load(preset)
    text = gen.tables_header(cfg)
    for name, table in (("gelu_rom", gelu.gelu_table(cfg)), ("exp2_rom", exp.exp2_table(cfg))):
        body = next(part for part in text.split("function automatic") if f"em_{name}(" in part)
        entries = {int(i): int(v) for i, v in re.findall(rf"\d+'d(\d+): em_{name} = \d+'d(\d+);", body)}
        assert [entries[i] for i in range(len(table))] == [int(v) for v in table]


def test_write_design_is_self_contained(tmp_path: Path) -> None:
    files = gen.write_design(hwconfig.load("tiny"), tmp_path)
    names = {f.name for f in files}
    assert {"edgemoe_config.svh", "em_isa.svh", "em_regs.svh", "em_tables.svh"} <= names
    assert {p.name for p in gen.sources()} <= names
    before = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*.svh")}
    gen.write_headers(hwconfig.load("tiny"), tmp_path)  # unchanged text: files untouched
    assert {f: f.stat().st_mtime_ns for f in tmp_path.glob("*.svh")} == before
