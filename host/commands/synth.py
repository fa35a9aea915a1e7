"""edgemoe synth: Yosys resource estimate of RTL modules for a hardware config."""

from __future__ import annotations

import argparse
import json

HELP = "estimate FPGA resources (Yosys synth_xilinx) of the RTL modules for a hardware config"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hw", required=True, help="hardware config: preset name or TOML file")
    p.add_argument("--top", action="append", metavar="MODULE",
                   help="module to synthesise (repeatable; default: every module in hw/rtl)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import sys

    from edgemoe.hw import config as hwconfig
    from edgemoe.hw.rtl.gen import sources
    from edgemoe.hw.synth import PART_RESOURCES, part_family, synthesize

    cfg = hwconfig.load(args.hw)
    tops = args.top or [p.stem for p in sources()]
    rows = {}
    for top in tops:
        print(f"[synth] {top} for {cfg.name} ...", file=sys.stderr)
        rows[top] = synthesize(cfg, top).summary()
    if args.json:
        print(json.dumps({"config": cfg.name, "part": cfg.target_part, "modules": rows}, indent=2))
        return 0
    family = part_family(cfg.target_part)
    avail = PART_RESOURCES.get(family or "", {})
    print(f"{'module':22s} {'LUT':>9s} {'FF':>9s} {'DSP':>6s} {'BRAM36':>7s}")
    for top, r in rows.items():
        print(f"{top:22s} {r['LUT']:9d} {r['FF']:9d} {r['DSP']:6d} {r['BRAM36']:7.1f}")
    if avail:
        total = {k: sum(r[k] for r in rows.values()) for k in ("LUT", "FF", "DSP", "BRAM36")}
        pct = "  ".join(f"{k} {100 * total[k] / avail[k]:.1f}%" for k in total)
        print(f"total vs {cfg.target_part}: {pct}")
    return 0
