"""em_axil_regs in Verilator: cocotbext-axi's AXI4-Lite master against the map of hw/regs.py."""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim.runner import RtlRunner

# Both address widths the module supports, one per config.
CASES = [("tiny", 8), ("edge-moe-zcu102", 12)]


@pytest.mark.rtl
@pytest.mark.parametrize(("preset", "addr_width"), CASES, ids=[p for p, _ in CASES])
def test_em_axil_regs(preset: str, addr_width: int) -> None:
    runner = RtlRunner(
        "em_axil_regs", parameters={"ADDR_WIDTH": addr_width}, config=hwconfig.load(preset)
    )
    runner.run("axil_regs")
