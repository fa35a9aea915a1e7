"""edgemoe compile: a model (preset, .pt checkpoint or .onnx file) -> an .emb binary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "compile a model (preset name, .pt checkpoint or .onnx file) to an accelerator binary"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="preset (edge-moe, m3vit-small, tiny), .pt checkpoint or .onnx file")
    p.add_argument("--hw", required=True, help="hardware config: preset name or TOML file")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .emb file")
    p.add_argument("--precision", choices=("w8a8", "w8a16"), default="w8a16")
    p.add_argument("--calib", type=int, default=8, metavar="N", help="calibration images (default 8)")
    p.add_argument("--dump", type=Path, metavar="DIR", help="write every stage for inspection")
    p.add_argument("--task", action="append", dest="tasks", metavar="TASK",
                   help="compile only this task (repeatable; default: every task of the model)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from edgemoe.compiler.pipeline import compile_model

    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[compile] {msg}", file=sys.stderr)

    binary = compile_model(args.model, args.hw, args.precision, args.calib, args.dump, progress, args.tasks)
    binary.save(args.output)
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 2**20:.2f} MiB, {len(binary.program)} instructions, "
          f"tasks: {', '.join(binary.tasks)}) in {time.perf_counter() - t0:.2f} s")
    return 0
