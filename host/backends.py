"""Backends: what the runtime drives. Each exposes only a register file and a DRAM image.

A backend is registered by name with a factory ``(HardwareConfig, dram_bytes) -> Device``. The
runtime, the register driver and every test talk to :class:`Device` only, so the same driver runs
the golden model, the RTL simulation and (later) a board.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from edgemoe.hw.config import HardwareConfig

from .errors import RuntimeUserError


class Device(Protocol):
    def write_reg(self, offset: int, value: int) -> None: ...
    def read_reg(self, offset: int) -> int: ...
    def write_dram(self, addr: int, data: bytes) -> None: ...
    def read_dram(self, addr: int, n: int) -> bytes: ...


Factory = Callable[[HardwareConfig, int], Device]
_BACKENDS: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _BACKENDS[name] = factory


def names() -> list[str]:
    return sorted(_BACKENDS)


def open_device(name: str, cfg: HardwareConfig, dram_bytes: int) -> Device:
    try:
        factory = _BACKENDS[name]
    except KeyError:
        raise RuntimeUserError(f"unknown backend {name!r}; available: {', '.join(names())}") from None
    return factory(cfg, dram_bytes)


def _golden(cfg: HardwareConfig, dram_bytes: int) -> Device:
    from edgemoe.sim.golden.machine import GoldenMachine

    return GoldenMachine(cfg, dram_bytes)


register("golden", _golden)


def _verilator(cfg: HardwareConfig, dram_bytes: int) -> Device:
    from .verilator_backend import VerilatorDevice

    return VerilatorDevice(cfg, dram_bytes)


register("verilator", _verilator)
