"""edgemoe inspect: header, sections, memory plan, MACs and predicted cycles of a binary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "describe an .emb binary: header, sections, disassembly, MACs, predicted cycles, DRAM"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path)
    p.add_argument("--hw", help="hardware config for the cycle model (default: the one it was built for)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--disasm", action="store_true", help="include the disassembly")


def summarize(path: Path, hw: str | None) -> dict:
    from edgemoe.compiler import binary as binfmt
    from edgemoe.compiler.cyclemodel import program_cost
    from edgemoe.hw import config as hwconfig

    b = binfmt.load(path)
    cfg = hwconfig.load(hw or b.meta["hardware"]["name"])
    b.check_config(cfg)
    out = {
        "file": str(path),
        "size_bytes": path.stat().st_size,
        "format_version": binfmt.FORMAT_VERSION,
        "hardware": {**b.meta["hardware"], "macs_per_cycle": cfg.macs_per_cycle, "clock_mhz": cfg.clock_mhz},
        "model": b.meta["model"]["name"],
        "precision": b.meta["precision"],
        "sections": {"meta": len(b.meta), "insn_bytes": len(b.insn), "weights_bytes": len(b.weights)},
        "memory": b.meta["memory"],
        "tasks": {},
    }
    for task in b.tasks:
        t = b.task(task)
        insns = b.program[t["insn_index"] : t["insn_index"] + t["insn_count"]]
        costs = program_cost(insns, cfg)
        layers = []
        for layer in t["layers"]:
            sl = costs[layer["first"] : layer["first"] + layer["count"]]
            cyc = sum(c.cycles for c in sl)
            macs = sum(c.macs for c in sl)
            layers.append({"name": layer["name"], "op": layer["op"], "instructions": layer["count"],
                           "macs": macs, "cycles": cyc,
                           "utilization": macs / (cyc * cfg.macs_per_cycle) if cyc else 0.0})
        cycles = sum(c.cycles for c in costs)
        macs = sum(c.macs for c in costs)
        out["tasks"][task] = {
            "instructions": t["insn_count"],
            "macs": b.meta["macs"][task],
            "predicted_cycles": cycles,
            "predicted_ms": cycles / (cfg.clock_mhz * 1e3),
            "predicted_fps": cfg.clock_mhz * 1e6 / cycles if cycles else 0.0,
            "mac_utilization": macs / (cycles * cfg.macs_per_cycle) if cycles else 0.0,
            "dram_traffic_bytes": sum(c.dram_bytes for c in costs),
            "input": t["input"],
            "output": t["output"],
            "layers": layers,
        }
    return out


def run(args: argparse.Namespace) -> int:
    info = summarize(args.file, args.hw)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    m = info["memory"]
    print(f"{info['file']}: edgemoe binary v{info['format_version']}, {info['size_bytes'] / 2**20:.2f} MiB")
    print(f"  model {info['model']}, precision {info['precision']}, hardware {info['hardware']['name']} "
          f"(hash {info['hardware']['hash']}, {info['hardware']['macs_per_cycle']} MAC/cycle, "
          f"{info['hardware']['clock_mhz']:g} MHz)")
    print(f"  sections: instructions {info['sections']['insn_bytes']} B, weights {info['sections']['weights_bytes']} B")
    print(f"  DRAM: insn @0x{m['insn_addr']:08x}, weights @0x{m['weights_addr']:08x} ({m['weights_bytes']} B), "
          f"activations @0x{m['act_addr']:08x} ({m['act_bytes']} B), footprint {m['dram_bytes'] / 2**20:.2f} MiB")
    for task, t in info["tasks"].items():
        print(f"\n  task {task}: {t['instructions']} instructions, {t['macs'] / 1e6:.1f} M MACs, "
              f"predicted {t['predicted_cycles']} cycles = {t['predicted_ms']:.3f} ms "
              f"({t['predicted_fps']:.1f} frame/s), MAC utilization {100 * t['mac_utilization']:.1f} %")
        print(f"    input  {t['input']['shape']} int{t['input']['bits']} @0x{t['input']['addr']:08x}")
        print(f"    output {t['output']['shape']} int{t['output']['bits']} @0x{t['output']['addr']:08x}")
        print(f"    {'layer':24s} {'op':10s} {'insns':>5s} {'MMACs':>8s} {'cycles':>9s} {'util':>6s}")
        for layer in t["layers"]:
            print(f"    {layer['name']:24s} {layer['op']:10s} {layer['instructions']:5d} "
                  f"{layer['macs'] / 1e6:8.2f} {layer['cycles']:9d} {100 * layer['utilization']:5.1f}%")
    if args.disasm:
        from edgemoe.host.commands import disasm

        print()
        disasm.run(argparse.Namespace(file=args.file, task=None, no_comments=False))
    return 0
