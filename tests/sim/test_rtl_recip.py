"""em_recip in Verilator: the cocotb bench checks it bit for bit against numerics.recip.reciprocal.

(A file of its own, apart from the softmax units that use it, keeps each file's cold run, with
no compiler cache, under a minute.)
"""

from __future__ import annotations

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw.numerics.softmax import SUM_GUARD_BITS
from edgemoe.sim.runner import RtlRunner


def sum_width(preset: str) -> int:
    """Bits of the softmax running sum, Q(E + G) for up to 65535 keys: the IN_WIDTH that
    em_softmax_stats gives em_recip."""
    return hwconfig.load(preset).numerics.exp_frac_bits + SUM_GUARD_BITS + 16


#: (preset, IN_WIDTH): the width em_softmax_stats uses, and the default (numerics' whole input
#: range, below 2^62).
CASES = [("tiny", sum_width("tiny")), ("edge-moe-zcu102", 62)]


@pytest.mark.rtl
@pytest.mark.parametrize(("preset", "width"), CASES, ids=[f"{p}-{w}" for p, w in CASES])
def test_em_recip(preset: str, width: int) -> None:
    cfg = hwconfig.load(preset)
    RtlRunner("em_recip", parameters={"IN_WIDTH": width, "TAG_WIDTH": 24}, config=cfg).run(
        "recip"
    )
