"""The MoE gate in Verilator, bit for bit against numerics.gate and hw.layouts.

``em_gate_topk`` (a token's softmax over its experts and its top k) against ``gate_topk``, and
``em_route_table`` (the route lists built from those per-token results) against ``route_table``
packed by ``pack_route_table``, each on the tiny and the edge-moe-zcu102 hardware.
"""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim.runner import RtlRunner

PRESETS = ["tiny", "edge-moe-zcu102"]


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_gate_topk(preset: str) -> None:
    cfg = hwconfig.load(preset)
    RtlRunner("em_gate_topk", config=cfg).run("gate_topk")


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_route_table(preset: str) -> None:
    cfg = hwconfig.load(preset)
    RtlRunner("em_route_table", config=cfg).run("route_table")
