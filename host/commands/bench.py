"""edgemoe bench: measure compile time and golden-model frame time (figures, not pass/fail)."""

from __future__ import annotations

import argparse
import json
import statistics
import time

HELP = "benchmark the compiler (compile) or the golden model (golden) on a model preset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("compile", "golden"))
    p.add_argument("--model", default="edge-moe", help="model preset (default edge-moe)")
    p.add_argument("--hw", default="edge-moe-zcu102", help="hardware config (default edge-moe-zcu102)")
    p.add_argument("--precision", choices=("w8a8", "w8a16"), default="w8a16")
    p.add_argument("--calib", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")


def _stats(times: list[float]) -> dict[str, float]:
    return {"min_s": round(min(times), 4), "median_s": round(statistics.median(times), 4),
            "max_s": round(max(times), 4)}


def run(args: argparse.Namespace) -> int:
    from edgemoe.compiler.calibration import FIDELITY_IMAGE, natural_image
    from edgemoe.compiler.model import build_model
    from edgemoe.compiler.pipeline import compile_model

    build_model(args.model)  # warm imports so the first repetition is not an outlier
    if args.what == "compile":
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            b = compile_model(args.model, args.hw, args.precision, args.calib)
            times.append(time.perf_counter() - t0)
        out = {"benchmark": "compile", "model": args.model, "hw": args.hw, "precision": args.precision,
               "calib": args.calib, "instructions": len(b.program), **_stats(times)}
    else:
        from edgemoe.host.accelerator import Accelerator

        acc = Accelerator(compile_model(args.model, args.hw, args.precision, args.calib))
        img = natural_image(FIDELITY_IMAGE)
        task = acc.tasks[0]
        patches = acc.patches(img)
        t = acc.binary.task(task)
        mem = acc.binary.meta["memory"]
        times = []
        for _ in range(args.repeat):
            acc.place_input(task, patches)
            t0 = time.perf_counter()
            counters = acc.driver.run(mem["insn_addr"] + 32 * t["insn_index"], t["insn_count"])
            times.append(time.perf_counter() - t0)
        macs = acc.binary.meta["macs"][task]
        out = {"benchmark": "golden", "model": args.model, "hw": args.hw, "precision": args.precision,
               "task": task, "instructions_retired": counters.instructions_retired,
               "macs_per_frame": macs, "frames_per_s": round(1 / min(times), 3),
               "simulated_gmac_per_s": round(macs / min(times) / 1e9, 3), **_stats(times)}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(" ".join(f"{k}={v}" for k, v in out.items()))
    return 0
