"""HardwareConfig: presets validate, bad configs fail naming the field, derived values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.hw.config import ConfigError

PRESETS = ["edge-moe-zcu102", "tiny", "zcu102-large"]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_validate(name: str) -> None:
    cfg = hwconfig.load(name)
    assert cfg.name == name
    assert cfg.macs_per_cycle == cfg.array_rows * cfg.array_cols
    assert len(cfg.config_hash()) == 16


def test_edge_moe_preset_matches_reference() -> None:
    cfg = hwconfig.load("edge-moe-zcu102")
    assert (cfg.array_rows, cfg.array_cols, cfg.axi_data_width, cfg.clock_mhz) == (16, 16, 256, 300.0)
    assert cfg.target_part.startswith("xczu9eg")
    assert cfg.peak_gops == pytest.approx(2 * 256 * 300 / 1000)


def test_preset_list_is_exactly_the_shipped_files() -> None:
    assert hwconfig.preset_names() == sorted(PRESETS)


def test_hash_ignores_name_but_not_hardware(tmp_path: Path) -> None:
    base = hwconfig.load("tiny").to_dict()
    same = hwconfig.from_dict({**base, "name": "renamed", "description": "x"})
    other = hwconfig.from_dict({**base, "array_cols": 8})
    assert same.config_hash() == hwconfig.load("tiny").config_hash()
    assert other.config_hash() != same.config_hash()


def test_json_dump_round_trips(tmp_path: Path) -> None:
    cfg = hwconfig.load("edge-moe-zcu102")
    p = tmp_path / "c.json"
    p.write_text(cfg.to_json())
    assert hwconfig.load(p) == cfg
    assert json.loads(cfg.to_json())["derived"]["macs_per_cycle"] == 256


def test_verilog_header_carries_every_array_parameter() -> None:
    svh = hwconfig.load("tiny").verilog_header()
    assert "`define EM_ARRAY_ROWS 4" in svh and "`define EM_ARRAY_COLS 4" in svh
    assert hwconfig.load("tiny").config_hash() in svh


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


GOOD = 'name = "t"\narray_rows = 4\narray_cols = 4\n'


@pytest.mark.parametrize(
    "text, fragment",
    [
        (GOOD + "act_width = 12\n", "'act_width'"),
        (GOOD.replace("array_rows = 4", "array_rows = 12"), "'array_rows' must be a power of two"),
        (GOOD + "arry_cols = 3\n", "unknown key(s) 'arry_cols'"),
        (GOOD + "act_buffer_depth = 3\n", "'act_buffer_depth' is too small for one double-buffered tile"),
        (GOOD + "weight_buffer_depth = 1\n", "'weight_buffer_depth'"),
        (GOOD + "acc_buffer_depth = 2\n", "'acc_buffer_depth' is too small"),
        (GOOD + 'clock_mhz = "fast"\n', "'clock_mhz' must be a number"),
        (GOOD + "acc_width = 64\n", "'acc_width' must be in [24, 40]"),
        (GOOD + "[numerics]\nscore_frac_bits = 30\n", "'numerics.score_frac_bits'"),
        (GOOD + "[numerics]\nbogus = 1\n", "unknown key(s) 'bogus' in [numerics]"),
        ('array_rows = 4\narray_cols = 4\n', "missing required key 'name'"),
        ("name = \n", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        hwconfig.load(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_config_lists_presets() -> None:
    with pytest.raises(ConfigError, match="presets: edge-moe-zcu102"):
        hwconfig.load("no-such-board")
