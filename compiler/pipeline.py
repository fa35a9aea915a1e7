"""The compiler pipeline: model -> graph IR -> quantized graphs -> instructions -> binary.

Each stage can be written to a folder for inspection (``--dump DIR``): ``ir.txt`` (the float
graph), ``quant.json`` (formats and calibration ranges), ``program.s`` (annotated disassembly)
and ``memory.json`` (the DRAM plan).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgemoe.hw import config as hwconfig
from edgemoe.hw import isa
from edgemoe.hw.config import HardwareConfig

from . import binary as binfmt
from .calibration import calibration_images
from .errors import CompileError
from .ir import Graph, patchify
from .lower import lower
from .quantize import QGraph, quantize

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def model_source(model: Any) -> dict[str, Any]:
    """How to rebuild the float model later (for ``edgemoe run --compare float``)."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix in (".onnx", ".pt", ".pth"):
            return {"kind": path.suffix.lstrip("."), "path": str(path.resolve())}
        return {"kind": "preset", "name": str(model), "seed": 0}
    return {"kind": "module"}


def load_frontend(model: Any) -> tuple[dict[str, Graph], dict[str, Any]]:
    """Graphs per task and the model description for any supported model spec.

    ``model``: an M3ViT module, a preset name, a ``.pt`` checkpoint or an ``.onnx`` file.
    """
    from . import model as m3vit
    from .frontend_torch import from_torch

    if isinstance(model, (str, Path)):
        text = str(model)
        path = Path(text)
        if path.suffix == ".onnx":
            from .frontend_onnx import from_onnx

            return from_onnx(path)
        if path.suffix in (".pt", ".pth"):
            if not path.exists():
                raise CompileError(f"{path}: no such checkpoint file")
            try:
                module = m3vit.load_model(path)
            except (ValueError, RuntimeError, OSError) as e:
                raise CompileError(f"{path}: cannot load checkpoint: {e}") from None
        elif text in m3vit.PRESETS:
            module = m3vit.build_model(text)
        else:
            raise CompileError(
                f"unknown model {text!r}: give a preset ({', '.join(m3vit.PRESETS)}), "
                f"a .pt checkpoint or an .onnx file"
            )
    else:
        module = model
    graphs = from_torch(module)
    return graphs, module.config.to_dict()


def model_input(image: np.ndarray, model_meta: dict[str, Any]) -> np.ndarray:
    """HxWx3 uint8 image -> the graph input (patch matrix) using the model's preprocessing."""
    from .model import ModelConfig, preprocess

    cfg = ModelConfig.from_dict(model_meta)
    x = preprocess(image, cfg)[0].double().numpy()
    return patchify(x, cfg.patch)


def compile_model(
    model: Any,
    hw: str | HardwareConfig,
    precision: str = "w8a16",
    calib: int = 8,
    dump: str | Path | None = None,
    progress: Progress = _quiet,
    tasks: list[str] | None = None,
) -> binfmt.Binary:
    """Compile ``model`` for hardware ``hw``; ``tasks`` restricts the binary to those tasks."""
    cfg = hwconfig.load(hw) if not isinstance(hw, HardwareConfig) else hw
    t0 = time.perf_counter()
    graphs, model_meta = load_frontend(model)
    if tasks:
        unknown = [t for t in tasks if t not in graphs]
        if unknown:
            raise CompileError(
                f"the model has no task(s) {', '.join(map(repr, unknown))}; its tasks are: "
                f"{', '.join(graphs)}"
            )
        graphs = {t: graphs[t] for t in tasks}
        model_meta = {**model_meta, "tasks": {t: model_meta["tasks"][t] for t in tasks}}
    progress(f"frontend: {len(graphs)} task graph(s), {sum(len(g.nodes) for g in graphs.values())} nodes "
             f"({time.perf_counter() - t0:.2f} s)")
    if calib < 1:
        raise CompileError(f"--calib must be at least 1 (got {calib})")
    samples = [model_input(img, model_meta) for img in calibration_images(calib)]
    qgraphs = quantize(graphs, samples, precision, cfg)
    progress(f"quantize: {precision}, {calib} calibration image(s) ({time.perf_counter() - t0:.2f} s)")
    linked = lower(qgraphs, cfg)
    n_insn = len(linked.insn) // isa.INSTRUCTION_BYTES
    progress(f"lower: {n_insn} instructions, {len(linked.weights) / 2**20:.2f} MiB weights, "
             f"{linked.memory['act_bytes'] / 2**10:.0f} KiB activations ({time.perf_counter() - t0:.2f} s)")
    first = next(iter(graphs.values()))
    meta = {
        "model": model_meta,
        "source": model_source(model),
        "preprocess": first.meta.get("preprocess", "imagenet"),
        "hardware": {"name": cfg.name, "hash": cfg.config_hash()},
        "precision": precision,
        "calibration": {"images": calib},
        "memory": linked.memory,
        "tasks": linked.tasks,
        "macs": {task: _macs(qg) for task, qg in qgraphs.items()},
    }
    out = binfmt.Binary(cfg.config_hash(), meta, linked.insn, linked.weights)
    if dump is not None:
        write_dump(Path(dump), graphs, qgraphs, out)
        progress(f"dump: wrote {dump}")
    return out


def _macs(qg: QGraph) -> int:
    """Multiply-accumulates of one frame (MoE counted at top-k experts per token)."""
    shapes = qg.graph.shapes()
    total = 0
    for n in qg.graph.nodes:
        m = shapes[n.output][0]
        if n.op == "linear":
            total += m * n.params["w"].shape[0] * n.params["w"].shape[1]
        elif n.op == "attention":
            total += 2 * m * m * n.attrs["dim"]
        elif n.op == "moe":
            d, he = n.params["w1"].shape[1:]
            total += m * d * n.params["gate_w"].shape[1] + m * n.attrs["k"] * 2 * d * he
    return total


def write_dump(folder: Path, graphs: dict[str, Graph], qgraphs: dict[str, QGraph], b: binfmt.Binary) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for task, g in graphs.items():
        shapes = g.shapes()
        lines.append(f"graph {g.name} task={task} input={g.input}{list(g.input_shape)} output={g.output}")
        for n in g.nodes:
            params = ", ".join(f"{k}{list(v.shape)}" for k, v in n.params.items())
            lines.append(f"  {n.output}{list(shapes[n.output])} = {n.op}({', '.join(n.inputs)}) "
                         f"attrs={n.attrs} params=[{params}]  # {n.name}")
    (folder / "ir.txt").write_text("\n".join(lines) + "\n")
    quant = {
        task: {
            "precision": qg.precision,
            "tensors": {t: {"bits": q.bits, "scale": q.scale, "frac": q.frac, "calibrated_max": qg.ranges.get(t)}
                        for t, q in qg.tensors.items()},
        }
        for task, qg in qgraphs.items()
    }
    (folder / "quant.json").write_text(json.dumps(quant, indent=2))
    comments = {int(k): v for t in b.meta["tasks"].values() for k, v in t["comments"].items()}
    (folder / "program.s").write_text(isa.disassemble(b.program, comments))
    (folder / "memory.json").write_text(json.dumps(b.meta["memory"], indent=2))
