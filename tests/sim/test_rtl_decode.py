"""em_decode in Verilator: the cocotb bench checks it against isa.decode, word by word."""

from __future__ import annotations

import random

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw import isa
from edgemoe.sim.benches.decode import ILLEGAL_PER_KIND, all_words, reference
from edgemoe.sim.runner import RtlRunner

PRESETS = ["tiny", "edge-moe-zcu102"]


def test_word_mix_covers_every_outcome() -> None:
    """The bench's vectors reach every format legally, and both error codes for every format."""
    outcomes = [reference(w) for w in all_words(random.Random(1))]
    formats = set(isa.BY_MNEMONIC)
    legal = {e.op for e in outcomes if not (e.illegal_opcode or e.illegal_field)}
    assert legal == formats, f"no legal word of {formats - legal}"
    assert sum(e.illegal_opcode for e in outcomes) >= ILLEGAL_PER_KIND
    bad_field = {e.op for e in outcomes if e.illegal_field}
    assert bad_field == formats, f"no word with a bad field of {formats - bad_field}"


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_decode(preset: str) -> None:
    RtlRunner("em_decode", config=hwconfig.load(preset)).run("decode")
