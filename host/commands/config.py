"""edgemoe config: validate a hardware config and print it with its derived values."""

from __future__ import annotations

import argparse

from edgemoe.hw import config as hwconfig

HELP = "validate a hardware config (preset name or TOML file) and print it with derived values"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="preset name or path to a TOML file")
    p.add_argument("--json", action="store_true", help="print JSON (fields and derived values)")
    p.add_argument("--verilog-header", action="store_true", help="print the generated .svh header")
    p.add_argument("--list", action="store_true", help="list the presets")


def run(args: argparse.Namespace) -> int:
    if args.list or args.config is None:
        for name in hwconfig.preset_names():
            cfg = hwconfig.load(name)
            print(f"{name:18s} {cfg.description}")
        return 0
    cfg = hwconfig.load(args.config)
    if args.json:
        print(cfg.to_json())
    elif args.verilog_header:
        print(cfg.verilog_header(), end="")
    else:
        print(f"{cfg.name}: valid ({cfg.description})")
        for k, v in cfg.to_dict().items():
            if k in ("name", "description", "numerics"):
                continue
            print(f"  {k:22s} {v}")
        for k, v in cfg.to_dict()["numerics"].items():
            print(f"  numerics.{k:13s} {v}")
        print("derived:")
        for k, v in cfg.derived().items():
            print(f"  {k:22s} {v}")
    return 0
