"""Golden model: the NumPy ISA interpreter whose bytes the RTL must reproduce.

``GoldenMachine`` runs instruction streams bit-exactly over a DRAM image behind the register map;
``region_digest`` and ``TraceEntry`` define the per-instruction trace both backends produce.
"""

from .exact import exact_matmul
from .machine import GoldenMachine
from .memory import DeviceError
from .trace import TraceEntry, region_digest, write_regions

__all__ = [
    "DeviceError",
    "GoldenMachine",
    "TraceEntry",
    "exact_matmul",
    "region_digest",
    "write_regions",
]
