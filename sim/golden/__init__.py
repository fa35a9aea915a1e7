"""Golden model: the NumPy ISA interpreter whose bytes the RTL must reproduce.

``GoldenMachine`` runs instruction streams bit-exactly over a DRAM image behind the register map;
``region_digest`` and ``TraceEntry`` define the per-instruction trace both backends produce.
"""

from .exact import exact_matmul
from .machine import GoldenMachine
from .memory import DeviceError
from .trace import (
    Divergence,
    TraceEntry,
    entry_from_json,
    entry_to_json,
    first_divergence,
    region_digest,
    write_regions,
)

__all__ = [
    "DeviceError",
    "Divergence",
    "GoldenMachine",
    "TraceEntry",
    "entry_from_json",
    "entry_to_json",
    "exact_matmul",
    "first_divergence",
    "region_digest",
    "write_regions",
]
