"""HardwareConfig: the one description of an accelerator instance.

Everything else is derived from it: the Verilog parameters and header, the compiler's tiling,
the golden model and the cycle model. Configs are stored as TOML presets in ``hw/configs``;
a user may also pass a path to their own TOML file.

A config's :meth:`HardwareConfig.config_hash` identifies the hardware it describes (the name and
description are not part of it); binaries carry that hash and refuse to run on other hardware.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PRESET_DIR = Path(__file__).resolve().parent / "configs"

#: Bytes of one encoded instruction (see :mod:`edgemoe.hw.isa`).
INSTRUCTION_BYTES = 32


class ConfigError(ValueError):
    """A hardware config is malformed; the message names the file and field at fault."""


@dataclass(frozen=True)
class NumericsConfig:
    """Parameters of the fixed-point approximations the hardware implements.

    They change table sizes and rounding points, so they are part of the hardware identity.
    """

    #: Fraction bits of attention scores and gate logits in the base-2 ("log2") domain.
    score_frac_bits: int = 8
    #: Fraction bits of the exp2 table entries; the online-softmax running sum keeps
    #: ``numerics.softmax.SUM_GUARD_BITS`` more so that many tiny terms are not lost.
    exp_frac_bits: int = 16
    #: GELU table step is 2**-gelu_step_log2 (Edge-MoE: 1/32).
    gelu_step_log2: int = 5
    #: The GELU correction table covers [0, gelu_table_max); the correction is 0 beyond.
    gelu_table_max: float = 6.0
    #: Fraction bits of GELU table entries.
    gelu_table_frac_bits: int = 16
    #: Index bits of the reciprocal and reciprocal-square-root seed tables.
    recip_table_bits: int = 8
    #: Fraction bits of normalised LayerNorm values before the gamma/beta stage.
    norm_frac_bits: int = 12

    @property
    def gelu_table_entries(self) -> int:
        """Number of GELU table entries (the last one is the interpolation end point)."""
        return int(math.ceil(self.gelu_table_max * (1 << self.gelu_step_log2))) + 1


@dataclass(frozen=True)
class HardwareConfig:
    """One accelerator instance. Field docs say what the hardware does with each value."""

    name: str
    #: Rows of the MAC array: the reduction (K) slice consumed per cycle.
    array_rows: int
    #: Columns of the MAC array: output channels (N) produced per cycle.
    array_cols: int
    #: Widest activation the datapath multiplies (bits); 16 runs both W8A8 and W8A16 binaries.
    act_width: int = 16
    #: Weight width (bits).
    weight_width: int = 8
    #: Accumulator width (bits); sums wrap in two's complement at this width.
    acc_width: int = 32
    #: Activation buffer depth, in words of ``array_rows`` activations.
    act_buffer_depth: int = 8192
    #: Weight buffer depth, in tiles of ``array_rows x array_cols`` weights (>= 2: double buffer).
    weight_buffer_depth: int = 64
    #: Accumulator buffer depth, in words of ``array_cols`` accumulators (tokens per tile).
    acc_buffer_depth: int = 256
    #: AXI4 master data width (bits).
    axi_data_width: int = 256
    #: AXI4 address width (bits).
    axi_addr_width: int = 32
    #: Clock frequency the design targets (MHz).
    clock_mhz: float = 300.0
    #: FPGA part the synthesis estimate targets.
    target_part: str = "xczu9eg-ffvb1156-2-e"
    #: Read latency of the simulated DRAM (cycles from address to first data beat).
    dram_latency_cycles: int = 64
    #: Size of the simulated DRAM (MiB).
    dram_size_mib: int = 256
    description: str = ""
    numerics: NumericsConfig = field(default_factory=NumericsConfig)

    def __post_init__(self) -> None:
        _validate(self)

    # ----------------------------------------------------------------- derived values
    @property
    def macs_per_cycle(self) -> int:
        return self.array_rows * self.array_cols

    @property
    def peak_gops(self) -> float:
        """Peak throughput in GOP/s (one MAC = two operations)."""
        return 2 * self.macs_per_cycle * self.clock_mhz / 1000.0

    @property
    def axi_bytes(self) -> int:
        return self.axi_data_width // 8

    @property
    def weight_tile_bytes(self) -> int:
        return self.array_rows * self.array_cols * self.weight_width // 8

    @property
    def act_buffer_bytes(self) -> int:
        return self.act_buffer_depth * self.array_rows * self.act_width // 8

    @property
    def weight_buffer_bytes(self) -> int:
        return self.weight_buffer_depth * self.weight_tile_bytes

    @property
    def acc_buffer_bytes(self) -> int:
        return self.acc_buffer_depth * self.array_cols * self.acc_width // 8

    @property
    def onchip_bytes(self) -> int:
        return self.act_buffer_bytes + self.weight_buffer_bytes + self.acc_buffer_bytes

    @property
    def dram_bytes(self) -> int:
        return self.dram_size_mib << 20

    def derived(self) -> dict[str, Any]:
        return {
            "macs_per_cycle": self.macs_per_cycle,
            "peak_gops": round(self.peak_gops, 3),
            "axi_bytes_per_beat": self.axi_bytes,
            "weight_tile_bytes": self.weight_tile_bytes,
            "act_buffer_bytes": self.act_buffer_bytes,
            "weight_buffer_bytes": self.weight_buffer_bytes,
            "acc_buffer_bytes": self.acc_buffer_bytes,
            "onchip_bytes": self.onchip_bytes,
            "gelu_table_entries": self.numerics.gelu_table_entries,
            "instruction_bytes": INSTRUCTION_BYTES,
            "config_hash": self.config_hash(),
        }

    # ----------------------------------------------------------------- identity and dumps
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Stable 16-hex-digit hash of the hardware (name and description excluded)."""
        d = self.to_dict()
        d.pop("name")
        d.pop("description")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps({**self.to_dict(), "derived": self.derived()}, indent=2)

    def verilog_header(self) -> str:
        """SystemVerilog header with every parameter the RTL needs, generated from this config."""
        n = self.numerics
        params = {
            "EM_ARRAY_ROWS": self.array_rows,
            "EM_ARRAY_COLS": self.array_cols,
            "EM_ACT_WIDTH": self.act_width,
            "EM_WEIGHT_WIDTH": self.weight_width,
            "EM_ACC_WIDTH": self.acc_width,
            "EM_ACT_BUFFER_DEPTH": self.act_buffer_depth,
            "EM_WEIGHT_BUFFER_DEPTH": self.weight_buffer_depth,
            "EM_ACC_BUFFER_DEPTH": self.acc_buffer_depth,
            "EM_AXI_DATA_WIDTH": self.axi_data_width,
            "EM_AXI_ADDR_WIDTH": self.axi_addr_width,
            "EM_INSTRUCTION_BITS": INSTRUCTION_BYTES * 8,
            "EM_SCORE_FRAC_BITS": n.score_frac_bits,
            "EM_EXP_FRAC_BITS": n.exp_frac_bits,
            "EM_GELU_STEP_LOG2": n.gelu_step_log2,
            "EM_GELU_TABLE_ENTRIES": n.gelu_table_entries,
            "EM_GELU_TABLE_FRAC_BITS": n.gelu_table_frac_bits,
            "EM_RECIP_TABLE_BITS": n.recip_table_bits,
            "EM_NORM_FRAC_BITS": n.norm_frac_bits,
        }
        guard = "EDGEMOE_CONFIG_SVH"
        lines = [
            f"// Generated from HardwareConfig '{self.name}' (hash {self.config_hash()}).",
            "// Do not edit: regenerate with `edgemoe config NAME --verilog-header`.",
            f"`ifndef {guard}",
            f"`define {guard}",
            f'`define EM_CONFIG_HASH 64\'h{self.config_hash()}',
        ]
        lines += [f"`define {k} {v}" for k, v in params.items()]
        lines.append(f"`endif // {guard}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- validation
def _pow2(v: int) -> bool:
    return v > 0 and (v & (v - 1)) == 0


_INT_RULES: dict[str, tuple[int, int, bool]] = {
    # field: (min, max, must be a power of two)
    "array_rows": (2, 128, True),
    "array_cols": (2, 128, True),
    "act_width": (8, 16, False),
    "weight_width": (8, 8, False),
    "acc_width": (24, 40, False),
    "act_buffer_depth": (1, 1 << 20, False),
    "weight_buffer_depth": (2, 1 << 16, False),
    "acc_buffer_depth": (1, 1 << 16, False),
    "axi_data_width": (32, 1024, True),
    "axi_addr_width": (32, 32, False),
    "dram_latency_cycles": (0, 4096, False),
    "dram_size_mib": (1, 4095, False),
}

_NUMERICS_RULES: dict[str, tuple[int, int]] = {
    "score_frac_bits": (4, 10),
    "exp_frac_bits": (12, 16),
    "gelu_step_log2": (2, 8),
    "gelu_table_frac_bits": (8, 16),
    "recip_table_bits": (4, 10),
    "norm_frac_bits": (8, 14),
}


def _validate(cfg: HardwareConfig) -> None:
    def fail(fieldname: str, rule: str, value: object) -> None:
        raise ConfigError(f"config '{cfg.name}': field '{fieldname}' {rule} (got {value!r})")

    if not isinstance(cfg.name, str) or not cfg.name:
        fail("name", "must be a non-empty string", cfg.name)
    for fname, (lo, hi, pow2) in _INT_RULES.items():
        v = getattr(cfg, fname)
        if not isinstance(v, int) or isinstance(v, bool):
            fail(fname, "must be an integer", v)
        if not lo <= v <= hi:
            fail(fname, f"must be in [{lo}, {hi}]", v)
        if pow2 and not _pow2(v):
            fail(fname, "must be a power of two", v)
    if cfg.act_width not in (8, 16):
        fail("act_width", "must be 8 or 16", cfg.act_width)
    if not isinstance(cfg.clock_mhz, (int, float)) or isinstance(cfg.clock_mhz, bool):
        fail("clock_mhz", "must be a number", cfg.clock_mhz)
    if not 1.0 <= cfg.clock_mhz <= 1000.0:
        fail("clock_mhz", "must be in [1, 1000] MHz", cfg.clock_mhz)
    if not isinstance(cfg.target_part, str) or not cfg.target_part:
        fail("target_part", "must be a non-empty string", cfg.target_part)
    # Buffers must hold at least one tile, double buffered where the sequencer overlaps loads.
    if cfg.act_buffer_depth < 2 * cfg.array_rows:
        fail(
            "act_buffer_depth",
            f"is too small for one double-buffered tile: needs >= 2*array_rows = {2 * cfg.array_rows}",
            cfg.act_buffer_depth,
        )
    if cfg.acc_buffer_depth < cfg.array_rows:
        fail(
            "acc_buffer_depth",
            f"is too small for one tile of tokens: needs >= array_rows = {cfg.array_rows}",
            cfg.acc_buffer_depth,
        )
    if cfg.axi_data_width < cfg.array_rows * cfg.act_width // 4 and cfg.axi_data_width < 64:
        fail("axi_data_width", "is too narrow to feed the array (needs >= 64)", cfg.axi_data_width)
    n = cfg.numerics
    if not isinstance(n, NumericsConfig):
        fail("numerics", "must be a [numerics] table", n)
    for fname, (lo, hi) in _NUMERICS_RULES.items():
        v = getattr(n, fname)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            fail(f"numerics.{fname}", f"must be an integer in [{lo}, {hi}]", v)
    if not isinstance(n.gelu_table_max, (int, float)) or not 2.0 <= n.gelu_table_max <= 16.0:
        fail("numerics.gelu_table_max", "must be a number in [2, 16]", n.gelu_table_max)


# --------------------------------------------------------------------------- loading
_TOP_FIELDS = {f.name for f in dataclasses.fields(HardwareConfig)} - {"numerics"}
_NUMERICS_FIELDS = {f.name for f in dataclasses.fields(NumericsConfig)}


def from_dict(data: dict[str, Any], source: str = "<dict>") -> HardwareConfig:
    """Build a config from a parsed TOML/JSON mapping; unknown keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table of config fields")
    data = dict(data)
    data.pop("derived", None)  # accept our own JSON dumps back
    unknown = sorted(set(data) - _TOP_FIELDS - {"numerics"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(sorted(_TOP_FIELDS | {'numerics'}))}"
        )
    if "name" not in data:
        raise ConfigError(f"{source}: missing required key 'name'")
    for req in ("array_rows", "array_cols"):
        if req not in data:
            raise ConfigError(f"{source}: missing required key {req!r}")
    num = data.pop("numerics", {})
    if not isinstance(num, dict):
        raise ConfigError(f"{source}: 'numerics' must be a table")
    unknown = sorted(set(num) - _NUMERICS_FIELDS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in [numerics]; "
            f"known keys: {', '.join(sorted(_NUMERICS_FIELDS))}"
        )
    try:
        return HardwareConfig(**data, numerics=NumericsConfig(**num))
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load(name_or_path: str | Path) -> HardwareConfig:
    """Load a preset by name (``edge-moe-zcu102``) or a TOML/JSON file by path."""
    if isinstance(name_or_path, HardwareConfig):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if not path.exists() and (PRESET_DIR / f"{text}.toml").exists():
        path = PRESET_DIR / f"{text}.toml"
    if not path.exists():
        raise ConfigError(
            f"no such hardware config file or preset: {text!r} "
            f"(presets: {', '.join(preset_names())})"
        )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from None
    return from_dict(data, source=str(path))
