"""em_rsqrt in Verilator: the cocotb bench checks it bit for bit against numerics.recip.rsqrt.

(A file of its own, apart from em_layernorm that uses it, keeps each file's cold run under a
minute.)
"""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim.runner import RtlRunner

#: (preset, IN_WIDTH): a narrow operand (odd, so the top leading-one position is even) and the
#: default, numerics' whole input range below 2^62, which em_layernorm uses.
CASES = [("tiny", 41), ("edge-moe-zcu102", 62)]


@pytest.mark.rtl
@pytest.mark.parametrize(("preset", "width"), CASES, ids=[f"{p}-{w}" for p, w in CASES])
def test_em_rsqrt(preset: str, width: int) -> None:
    cfg = hwconfig.load(preset)
    RtlRunner("em_rsqrt", parameters={"IN_WIDTH": width, "TAG_WIDTH": 24}, config=cfg).run("rsqrt")
