"""em_requant in Verilator: the cocotb bench checks it bit for bit against fixedpoint.requantize."""

from __future__ import annotations

import pytest

from edgemoe.sim.runner import RtlRunner

PARAMETER_SETS = [
    {"LANES": 4, "ACC_WIDTH": 32, "OUT_WIDTH": 8},
    {"LANES": 16, "ACC_WIDTH": 32, "OUT_WIDTH": 16},
]


@pytest.mark.rtl
@pytest.mark.parametrize("parameters", PARAMETER_SETS, ids=lambda p: "-".join(map(str, p.values())))
def test_em_requant(parameters: dict[str, int]) -> None:
    RtlRunner("em_requant", parameters=parameters).run("requant")
