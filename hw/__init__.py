"""The hardware contract: HardwareConfig, the ISA, the bit-exact numerics and the Verilog."""

from .config import ConfigError, HardwareConfig, NumericsConfig, load, preset_names

__all__ = ["ConfigError", "HardwareConfig", "NumericsConfig", "load", "preset_names"]
