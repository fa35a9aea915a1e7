"""em_core's LAYERNORM unit in Verilator: random, edge-case and LN -> MATMUL programs, checked
against the golden model instruction by instruction (trace digests), then DRAM and counters."""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim.benches.core import CORE_SOURCES
from edgemoe.sim.runner import RtlRunner

PRESETS = ["tiny", "edge-moe-zcu102"]


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_ln_exec(preset: str) -> None:
    RtlRunner("em_core", sources=CORE_SOURCES, config=hwconfig.load(preset)).run("ln_exec")
