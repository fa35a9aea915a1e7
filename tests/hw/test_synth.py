"""Yosys resource estimates: the stat parser, and a real synth_xilinx run (slow)."""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw.synth import SynthError, parse_stat, synthesize

STAT = """
=== em_block ===

        +----------Local Count, excluding submodules.
     2229 cells
        8   DSP48E2
      222   FDRE
       28   FDSE
      301   LUT2
       52   LUT6
        2   RAMB36E2
        1   RAMB18E2
"""


def test_parse_stat_counts_families() -> None:
    r = parse_stat(STAT, "em_block")
    assert (r.luts, r.ffs, r.dsps, r.bram36) == (353, 250, 8, 2.5)


def test_unknown_module_is_an_error() -> None:
    with pytest.raises(SynthError, match="no RTL module 'em_nope'"):
        synthesize(hwconfig.load("tiny"), "em_nope")


@pytest.mark.slow
@pytest.mark.rtl
def test_requant_synthesises_to_dsps_and_luts() -> None:
    r = synthesize(hwconfig.load("tiny"), "em_requant", {"LANES": 2, "ACC_WIDTH": 32, "OUT_WIDTH": 8})
    assert r.dsps >= 2 and r.luts > 0 and r.ffs > 0


def test_parse_stat_counts_submodules_once() -> None:
    text = (
        "=== sub ===\n      2   FDRE\n      3   LUT3\n"
        "=== top ===\n      8   DSP48E2\n     10   FDRE\n      1   $paramod\\sub\n"
        "=== design hierarchy ===\n      20 top\n      5 sub\n"
        "     8   DSP48E2\n     12   FDRE\n      3   LUT3\n"
    )
    r = parse_stat(text, "top")
    assert (r.dsps, r.ffs, r.luts) == (8, 12, 3)
