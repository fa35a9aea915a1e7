"""edgemoe verilog: write the accelerator's SystemVerilog and generated headers for a config."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write the RTL sources and the headers generated from a hardware config into a folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hw", required=True, help="hardware config: preset name or TOML file")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")


def run(args: argparse.Namespace) -> int:
    from edgemoe.hw import config as hwconfig
    from edgemoe.hw.rtl.gen import write_design

    cfg = hwconfig.load(args.hw)
    files = write_design(cfg, args.output)
    print(f"wrote {len(files)} files for '{cfg.name}' (hash {cfg.config_hash()}) to {args.output}")
    for f in files:
        print(f"  {f.name}")
    return 0
