"""`edgemoe numerics`: table, JSON and plots from the numerics error report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edgemoe.host import cli
from edgemoe.host.commands import numerics as command

REQUIRED = {"gelu", "softmax", "layernorm", "exp", "reciprocal", "rsqrt"}


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    return command.run(p.parse_args(argv))


def test_registered() -> None:
    assert cli.COMMANDS["numerics"] == "numerics"


def test_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--json", "--config", "tiny", "--plots", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert REQUIRED <= set(data)
    for name, figures in data.items():
        assert 0 <= figures["mean_abs_err"] <= figures["max_abs_err"], name
    assert data["gelu"]["max_abs_err"] <= 1e-3
    assert data["softmax"]["max_abs_err"] <= 2.0**-9
    assert data["layernorm"]["max_abs_err"] <= 1e-2
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == sorted(f"{n}.png" for n in REQUIRED)
    assert all((tmp_path / "plots" / n).read_bytes()[:4] == b"\x89PNG" for n in pngs)


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([]) == 0
    out = capsys.readouterr().out
    assert "edge-moe-zcu102" in out
    for name in REQUIRED:
        assert f"\n{name} " in out


def test_plots_into_a_file_is_a_user_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(cli.UserError, match="not a directory"):
        _run(["--plots", str(target)])
