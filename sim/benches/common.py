"""What every bench shares: the HardwareConfig the model under test was generated for.

:class:`edgemoe.sim.runner.RtlRunner` passes its ``config`` to the simulation as JSON in
:data:`CONFIG_ENV`, so a bench computes its reference with exactly the numerics and sizes whose
headers the RTL was built with.
"""

from __future__ import annotations

import json
import os

from edgemoe.hw import config as hwconfig
from edgemoe.hw.config import HardwareConfig

#: Environment variable holding the JSON of the HardwareConfig the model was built for.
CONFIG_ENV = "EDGEMOE_BENCH_HW_JSON"


def bench_config(bench: str) -> HardwareConfig:
    """The config of the model under test; a clear error names ``bench`` if none was passed."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(
            f"bench {bench} needs the model's HardwareConfig as JSON in ${CONFIG_ENV}: "
            "run it through RtlRunner(..., config=cfg)"
        )
    return hwconfig.from_dict(json.loads(text), source=f"${CONFIG_ENV}")
