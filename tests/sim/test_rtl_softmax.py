"""The attention softmax units in Verilator, bit for bit against numerics.softmax.

``em_softmax_stats`` (ATTN_QK's per-row running max and sum, then their reciprocal through
em_recip) against ``online_softmax_stats(z, cfg, block=array_cols)``, and ``em_softmax_prob``
(ATTN_AV's probabilities) against ``softmax_probs(z, stats, cfg, prob_bits=act_width)``, each on
the tiny and the edge-moe-zcu102 hardware. em_recip alone: tests/sim/test_rtl_recip.py.
"""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim.runner import RtlRunner

PRESETS = ["tiny", "edge-moe-zcu102"]


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_softmax_stats(preset: str) -> None:
    cfg = hwconfig.load(preset)
    RtlRunner("em_softmax_stats", config=cfg).run("softmax_stats")


@pytest.mark.rtl
@pytest.mark.parametrize("preset", PRESETS)
def test_em_softmax_prob(preset: str) -> None:
    cfg = hwconfig.load(preset)
    RtlRunner("em_softmax_prob", config=cfg).run("softmax_prob")
