"""edgemoe doctor: report the versions of everything the toolchain needs, and what is missing.

Python packages are looked up by their installed metadata, not imported, so the check is fast
(no torch import) and cannot crash half way. External tools come from
:mod:`edgemoe.sim.toolchain`, the same discovery the simulation runner uses. Exits 1 when
anything is missing or unusable, so scripts and CI can gate on it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from pathlib import Path

from edgemoe.sim.toolchain import Tool, tools

HELP = "check Python, the Python packages and the external tools (Verilator, g++, make, Yosys)"

#: package -> how to install it
PACKAGES: dict[str, str] = {
    "numpy": "pip install -e .",
    "torch": "pip install -e '.[compiler]' (the CPU build, torch==2.13.*)",
    "onnx": "pip install -e '.[compiler]'",
    "onnxruntime": "pip install -e '.[compiler]'",
    "cocotb": "pip install -e '.[sim]'",
}

MIN_PYTHON = (3, 10)


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # no options


def _python() -> Tool:
    old = sys.version_info[:2] < MIN_PYTHON
    return Tool(
        "python",
        Path(sys.executable),
        platform.python_version(),
        "use Python >= 3.10 for the venv",
        "too old" if old else None,
    )


def _package(name: str, hint: str) -> Tool:
    try:
        version: str | None = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return Tool(name, None, version, hint)


def run(args: argparse.Namespace) -> int:
    del args
    checks = [_python(), *(_package(n, h) for n, h in PACKAGES.items()), *tools()]
    for tool in checks:
        print(f"  {tool.name:12s} {tool.status()}")
    missing = [t.name for t in checks if not t.found]
    if missing:
        print(f"edgemoe doctor: missing or unusable: {', '.join(missing)}", file=sys.stderr)
        return 1
    print("edgemoe doctor: everything is present")
    return 0
