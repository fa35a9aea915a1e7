"""The package builds as a wheel that carries every module and data file and imports."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_and_imports(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300,
    )
    wheel = next(tmp_path.glob("edgemoe-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("hw", "compiler", "sim", "host"):
        local = {f"edgemoe/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / folder).rglob("*.py")}
        missing = local - set(names)
        assert not missing, f"modules left out of the wheel: {sorted(missing)}"
    assert "edgemoe/hw/configs/edge-moe-zcu102.toml" in names
    assert any(n.startswith("edgemoe/hw/rtl/") and n.endswith(".sv") for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import edgemoe.hw, edgemoe.compiler.binary, edgemoe.sim.golden, edgemoe.host.cli; "
        "assert edgemoe.hw.__file__.startswith(sys.argv[1]), edgemoe.hw.__file__; "
        "print(edgemoe.hw.load('tiny').config_hash())"
    )
    r = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
