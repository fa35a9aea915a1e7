"""Fidelity of the accelerator against the float model: per layer, at the output, and routing.

The float reference is the graph IR executed in float64 (:func:`edgemoe.compiler.ir.run_float`),
built from the same model the binary was compiled from (recorded in the binary, or given). The
accelerator's intermediate tensors are read from DRAM right after the instruction that finishes
each layer, which needs the golden backend's retire hook; the output comparison alone works with
any backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgemoe.compiler.ir import run_float
from edgemoe.hw import layouts
from edgemoe.hw.numerics import fixedpoint

from .accelerator import Accelerator, InputLike
from .errors import RuntimeUserError


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den else float(np.array_equal(a, b))


def _metrics(device: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    return {
        "cosine": cosine(device, ref),
        "max_abs_err": float(np.max(np.abs(device - ref))),
        "ref_max_abs": float(np.max(np.abs(ref))),
    }


def float_graphs(acc: Accelerator, model: Any = None):
    """The float graphs of the model the binary came from (or of ``model`` if given)."""
    from edgemoe.compiler.pipeline import load_frontend

    if model is None:
        src = acc.binary.meta.get("source", {})
        if src.get("kind") == "preset":
            model = src["name"]
        elif src.get("kind") in ("pt", "onnx"):
            model = src["path"]
        else:
            raise RuntimeUserError(
                "the binary was compiled from an in-memory module; pass the float model with --model"
            )
    graphs, _ = load_frontend(model)
    return graphs


def compare_float(acc: Accelerator, source: InputLike, task: str, model: Any = None) -> dict[str, Any]:
    graphs = float_graphs(acc, model)
    if task not in graphs:
        raise RuntimeUserError(f"the float model has no task {task!r}")
    meta = acc.binary.task(task)
    patches = acc.patches(source)
    trace: dict[str, Any] = {}
    ref = run_float(graphs[task], patches, trace)

    # Snapshots of every recorded tensor and route table, taken as their instruction retires.
    by_index: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for name, spec in meta["tensors"].items():
        by_index.setdefault(spec["after"], []).append((name, spec))
    for route in meta["routes"]:
        by_index.setdefault(route["after"], []).append(("route:" + route["name"], route))
    snaps: dict[str, np.ndarray] = {}
    device = acc.device
    per_layer = hasattr(device, "on_retire")
    if per_layer:
        def hook(entry) -> None:
            for name, spec in by_index.get(entry.index, []):
                if name.startswith("route:"):
                    nbytes = layouts.route_table_bytes(spec["e"], spec["capacity"])
                    snaps[name] = np.frombuffer(device.read_dram(spec["addr"], nbytes), np.uint8).copy()
                else:
                    snaps[name] = fixedpoint.dequantize(acc.read_tensor(spec).astype(np.int64), spec["scale"])

        device.on_retire = hook
    try:
        result = acc.run(source, task)
    finally:
        if per_layer:
            device.on_retire = None

    graph = graphs[task]
    layers = []
    for node in graph.nodes:
        if node.output in snaps and node.output in ref and node.op != "attention" and not _segmented(node, graph):
            layers.append({"layer": node.name, "op": node.op, **_metrics(snaps[node.output], ref[node.output])})
    routing = {}
    for route in meta["routes"]:
        key = "route:" + route["name"]
        if key not in snaps:
            continue
        table = layouts.unpack_route_table(snaps[key], route["e"], route["capacity"])
        chosen = [set() for _ in range(route["capacity"])]
        for e in range(route["e"]):
            for tok in table.token[e][: table.count[e]]:
                chosen[int(tok)].add(e)
        float_route = trace[route["name"] + ".route"]
        agree = [chosen[t] == set(map(int, float_route[t])) for t in range(route["capacity"])]
        routing[route["name"]] = float(np.mean(agree))
    out = {
        "task": task,
        "precision": acc.binary.meta["precision"],
        "output": _metrics(result.output, ref[graph.output]),
        "layers": layers,
        "routing_agreement": routing,
        "routing_agreement_mean": float(np.mean(list(routing.values()))) if routing else None,
    }
    return out


def _segmented(node, graph) -> bool:
    """The fused qkv output has one scale per q/k/v segment; it is not compared as one tensor."""
    return any(c.op == "attention" and c.inputs[0] == node.output for c in graph.nodes)
