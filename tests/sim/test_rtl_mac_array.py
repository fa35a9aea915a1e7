"""em_mac_unit (em_mac_array + em_accumulator) in Verilator: matrix products bit for bit against
wrap(X @ W, acc_width), with the weights fed from their packed DRAM layout."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw.config import HardwareConfig
from edgemoe.sim.runner import RtlRunner


def _narrow() -> HardwareConfig:
    """tiny with a 24-bit accumulator and a 128-bit AXI port: a weight tile is one beat, so a
    one-token matmul swaps tiles every cycle and updates one accumulator back to back."""
    return dataclasses.replace(
        hwconfig.load("tiny"), name="tiny-acc24", acc_width=24, axi_data_width=128
    )


CONFIGS: dict[str, Callable[[], HardwareConfig]] = {
    "tiny": lambda: hwconfig.load("tiny"),
    "edge-moe-zcu102": lambda: hwconfig.load("edge-moe-zcu102"),
    "tiny-acc24": _narrow,
}


@pytest.mark.rtl
@pytest.mark.parametrize("name", list(CONFIGS))
def test_em_mac_unit(name: str) -> None:
    cfg = CONFIGS[name]()
    RtlRunner("em_mac_unit", config=cfg).run("mac_array")
