"""em_gelu in Verilator: the cocotb bench checks it bit for bit against numerics.gelu.gelu."""

from __future__ import annotations

import dataclasses

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw.config import HardwareConfig
from edgemoe.sim.runner import RtlRunner

#: (preset, LANES): one lane per MAC-array column, as the output stage instantiates it.
CASES = [("tiny", 4), ("edge-moe-zcu102", 16)]

#: Numerics the presets do not use, (gelu_step_log2, gelu_table_frac_bits, gelu_table_max, LANES):
#: table step equal to the table precision (the final shift is 0, no rounding) with a 513-entry
#: table; and a coarse 13-entry table (index finer than the step only above Q2).
NUMERICS_CORNERS = [(8, 8, 2.0, 8), (2, 12, 3.0, 2)]


def _run(cfg: HardwareConfig, lanes: int) -> None:
    RtlRunner("em_gelu", parameters={"LANES": lanes}, config=cfg).run(
        "gelu"
    )


@pytest.mark.rtl
@pytest.mark.parametrize(("preset", "lanes"), CASES, ids=[f"{p}-{n}" for p, n in CASES])
def test_em_gelu(preset: str, lanes: int) -> None:
    _run(hwconfig.load(preset), lanes)


@pytest.mark.slow
@pytest.mark.rtl
@pytest.mark.parametrize(
    ("step_log2", "table_frac", "table_max", "lanes"),
    NUMERICS_CORNERS,
    ids=[f"s{s}-g{g}-max{m:g}-{n}" for s, g, m, n in NUMERICS_CORNERS],
)
def test_em_gelu_numerics_corners(
    step_log2: int, table_frac: int, table_max: float, lanes: int
) -> None:
    """The RTL follows the config's numerics, not just the presets' (about 10 s each, cold)."""
    tiny = hwconfig.load("tiny")
    numerics = dataclasses.replace(
        tiny.numerics,
        gelu_step_log2=step_log2,
        gelu_table_frac_bits=table_frac,
        gelu_table_max=table_max,
    )
    cfg = dataclasses.replace(tiny, name=f"gelu-s{step_log2}-g{table_frac}", numerics=numerics)
    _run(cfg, lanes)
