"""edgemoe run: run a binary on an input image or tensor, on a chosen backend."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..cli import UserError

HELP = "run a compiled binary on an image (PNG/JPEG) or a .npy tensor and save the outputs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgemoe.host import backends

    p.add_argument("binary", type=Path, help=".emb file from `edgemoe compile`")
    p.add_argument("--input", required=True, help="image file (PNG/JPEG, any size) or .npy float tensor [C,H,W]")
    p.add_argument("--task", help="task to run (default: the binary's first task)")
    p.add_argument("--backend", default="golden", choices=backends.names())
    p.add_argument("-o", "--output", type=Path, help="write outputs to this .npz file")
    p.add_argument("--compare", choices=("float",), help="compare with the float model (per layer, output, routing)")
    p.add_argument("--model", help="float model for --compare (default: the one the binary was compiled from)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="write the per-instruction trace (JSON lines: index, op, expert, written "
                        "regions with SHA-256) for comparison with another backend")


def run(args: argparse.Namespace) -> int:
    from edgemoe.host.accelerator import Accelerator

    acc = Accelerator(args.binary, backend=args.backend)
    task = args.task or acc.tasks[0]
    acc.binary.task(task)  # unknown task -> clear error before any work
    if args.trace:
        if not hasattr(acc.device, "trace_enabled"):
            raise UserError(f"backend {args.backend!r} does not record traces")
        acc.device.trace_enabled = True
    t0 = time.perf_counter()
    if args.compare:
        from edgemoe.host.fidelity import compare_float

        report = compare_float(acc, args.input, task, args.model)
        result = None
    else:
        report = None
        result = acc.run(args.input, task)
    seconds = time.perf_counter() - t0
    if args.compare:
        # compare_float ran the device once; read its output back for saving.
        t = acc.binary.task(task)
        raw = acc.read_tensor(t["output"]).astype(np.int64)
        output = raw * t["output"]["scale"]
    else:
        raw, output = result.raw, result.output
    if args.trace:
        from edgemoe.sim.golden import entry_to_json

        tmp = args.trace.with_name(args.trace.name + ".partial")
        tmp.write_text("".join(json.dumps(entry_to_json(e)) + "\n" for e in acc.device.trace))
        tmp.replace(args.trace)
    if args.output:
        tmp = args.output.with_name(args.output.name + ".partial.npz")
        np.savez(tmp, output=output.astype(np.float32), raw=raw, task=task)
        tmp.replace(args.output)
    info = {"task": task, "backend": args.backend, "seconds": round(seconds, 3),
            "output_shape": list(output.shape)}
    if result is not None:
        c = result.counters
        info.update(instructions_retired=c.instructions_retired, cycles=c.cycles,
                    dram_read_bytes=c.dram_read_bytes, dram_write_bytes=c.dram_write_bytes)
    if report is not None:
        info["fidelity"] = report
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"task {task} on {args.backend}: output {list(output.shape)} in {seconds:.3f} s"
          + (f" -> {args.output}" if args.output else ""))
    if result is not None:
        print(f"  instructions retired {info['instructions_retired']}, DRAM read {info['dram_read_bytes']} B, "
              f"written {info['dram_write_bytes']} B, cycles {info['cycles'] or 'n/a (golden model is not timed)'}")
    if report is not None:
        o = report["output"]
        print(f"  vs float ({report['precision']}): output cosine {o['cosine']:.6f}, max abs err {o['max_abs_err']:.4g} "
              f"(output max {o['ref_max_abs']:.3g})")
        if report["routing_agreement"]:
            print(f"  routing agreement with float: {100 * report['routing_agreement_mean']:.1f} % of tokens "
                  f"(per layer: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in report["routing_agreement"].items()) + ")")
        print(f"  {'layer':22s} {'op':10s} {'cosine':>9s} {'max abs err':>12s}")
        for layer in report["layers"]:
            print(f"  {layer['layer']:22s} {layer['op']:10s} {layer['cosine']:9.6f} {layer['max_abs_err']:12.4g}")
    return 0
