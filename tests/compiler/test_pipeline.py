"""Compiler pipeline on the tiny model: determinism, memory plan, dumps, error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgemoe.compiler import binary as binfmt
from edgemoe.compiler.errors import CompileError
from edgemoe.compiler.ir import run_float
from edgemoe.compiler.pipeline import compile_model, load_frontend, model_input
from edgemoe.hw import isa


def test_compile_is_deterministic(tiny_binary_path: Path) -> None:
    again = compile_model("tiny", "tiny", "w8a16", calib=2).to_bytes()
    assert again == tiny_binary_path.read_bytes()


def test_program_shape(tiny_binary_path: Path) -> None:
    b = binfmt.load(tiny_binary_path)
    assert b.tasks == ["seg", "depth"]
    for task in b.tasks:
        t = b.task(task)
        ops = [i.op for i in b.program[t["insn_index"] : t["insn_index"] + t["insn_count"]]]
        assert ops[-1] == "END" and ops.count("END") == 1
        assert ops.count("GATE_TOPK") == 1 and ops.count("EXPERT_LOOP") == 1  # tiny: block 1 is MoE
        assert ops.count("ATTN_QK") == 2 * 2  # 2 blocks x 2 heads
        loop = ops.index("EXPERT_LOOP")
        assert ops[loop + 1 : loop + 3] == ["MATMUL", "MATMUL"]


def test_memory_plan_never_overlaps_live_operands(tiny_binary_path: Path) -> None:
    """No instruction's output may overlap an input it still reads, except in-place residuals."""
    b = binfmt.load(tiny_binary_path)
    mem = b.meta["memory"]
    assert mem["insn_addr"] < mem["weights_addr"] < mem["act_addr"] <= mem["dram_bytes"]
    for insn in b.program:
        if insn.op == "MATMUL" and not insn["expert"]:
            xb = 2 if insn["x16"] else 1
            yb = 2 if insn["y16"] else 1
            x = (insn["x_addr"], insn["x_addr"] + insn["m"] * insn["x_stride"] * xb)
            y = (insn["y_addr"], insn["y_addr"] + insn["m"] * insn["y_stride"] * yb)
            assert x[1] <= y[0] or y[1] <= x[0], isa.format_instruction(insn)
            assert insn["w_addr"] >= mem["weights_addr"] and insn["w_addr"] < mem["act_addr"]


def test_float_graph_matches_pytorch() -> None:
    import torch

    from edgemoe.compiler.calibration import natural_image
    from edgemoe.compiler.model import build_model, preprocess

    model = build_model("tiny")
    graphs, meta = load_frontend(model)
    img = natural_image("coffee")
    x = model_input(img, meta)
    for task, g in graphs.items():
        ref = model(preprocess(img, model.config), task)[0].detach().double().numpy()
        with torch.no_grad():
            got = run_float(g, x)[g.output]
        assert np.max(np.abs(got - ref)) < 1e-4


def test_dump_writes_every_stage(tmp_path: Path) -> None:
    compile_model("tiny", "tiny", "w8a8", calib=1, dump=tmp_path)
    for name in ("ir.txt", "quant.json", "program.s", "memory.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "EXPERT_LOOP" in (tmp_path / "program.s").read_text()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model="no-such-model"), "unknown model 'no-such-model'"),
        (dict(model="missing.pt"), "missing.pt: no such checkpoint file"),
        (dict(precision="w4a4"), "unknown precision 'w4a4'"),
        (dict(calib=0), "--calib must be at least 1"),
    ],
)
def test_errors_name_the_problem(kwargs, message: str) -> None:
    args = dict(model="tiny", hw="tiny", precision="w8a16", calib=1) | kwargs
    with pytest.raises(CompileError, match=message):
        compile_model(args.pop("model"), args.pop("hw"), **args)


def test_checkpoint_compiles_to_the_same_program(tmp_path: Path, tiny_binary_path: Path) -> None:
    from edgemoe.compiler.model import build_model, save_model

    ckpt = save_model(build_model("tiny"), tmp_path / "tiny.pt")
    b = compile_model(str(ckpt), "tiny", "w8a16", calib=2)
    ref = binfmt.load(tiny_binary_path)
    assert b.insn == ref.insn and b.weights == ref.weights
    assert b.meta["source"] == {"kind": "pt", "path": str(ckpt.resolve())}


def test_bad_checkpoint_is_a_compile_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CompileError, match="bad.pt: cannot load checkpoint"):
        compile_model(str(bad), "tiny", "w8a16", calib=1)


def test_onnx_export_compiles_to_the_same_program(tmp_path: Path) -> None:
    from edgemoe.compiler.model import build_model, export_onnx

    onnx_path = export_onnx(build_model("tiny"), "depth", tmp_path / "tiny-depth.onnx")
    from_onnx = compile_model(str(onnx_path), "tiny", "w8a16", calib=2)
    from_torch = compile_model("tiny", "tiny", "w8a16", calib=2, tasks=["depth"])
    assert from_onnx.insn == from_torch.insn
    assert from_onnx.weights == from_torch.weights
    assert from_onnx.meta["tasks"] == from_torch.meta["tasks"]


def test_unknown_task_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="the model has no task\\(s\\) 'nope'; its tasks are: seg, depth"):
        compile_model("tiny", "tiny", "w8a16", calib=1, tasks=["nope"])
