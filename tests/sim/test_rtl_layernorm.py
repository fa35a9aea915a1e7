"""em_layernorm in Verilator: the cocotb bench checks it bit for bit against
numerics.layernorm.layernorm, at the default parameters (LANES = array rows, D_MAX = 1024)."""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim.runner import RtlRunner

PRESETS = ["tiny", "edge-moe-zcu102"]


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_layernorm(preset: str) -> None:
    RtlRunner("em_layernorm", config=hwconfig.load(preset)).run("layernorm")
