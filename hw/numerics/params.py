"""Accept either a whole :class:`HardwareConfig` or just its :class:`NumericsConfig`.

The numerics depend only on the ``numerics`` section, so tables are cached per NumericsConfig.
"""

from __future__ import annotations

from edgemoe.hw.config import HardwareConfig, NumericsConfig

Cfg = HardwareConfig | NumericsConfig


def numerics_of(cfg: Cfg) -> NumericsConfig:
    """The NumericsConfig of ``cfg`` (which may already be one)."""
    return cfg.numerics if isinstance(cfg, HardwareConfig) else cfg
