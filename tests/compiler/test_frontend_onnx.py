"""ONNX frontend: our M3ViT export maps to exactly the PyTorch frontend's graph; plain ViTs in
several common spellings map to graphs that compute what onnxruntime computes; unsupported
graphs and broken files fail with messages naming the node (or file) at fault."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgemoe.compiler.errors import CompileError
from edgemoe.compiler.frontend_onnx import DEFAULT_TASK, META_MODEL, from_onnx
from edgemoe.compiler.frontend_torch import from_torch
from edgemoe.compiler.ir import Graph, patchify, run_float
from edgemoe.compiler.model import M3ViT, MoE, build_model, export_onnx

IMAGE = (3, 32, 32)
PATCH = 8


# --------------------------------------------------------------------------------------------
# Reference ViTs, written the ways PyTorch ViTs commonly are
# --------------------------------------------------------------------------------------------


class SeparateQKV(nn.Module):
    """q, k, v as three Linears; scores divided by sqrt(head_dim)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = (f(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for f in (self.q, self.k, self.v))
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class ChunkSDPA(nn.Module):
    """Fused qkv split with chunk(); PyTorch's scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3)
                   for t in self.qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.permute(0, 2, 1, 3).reshape(b, n, d))


class UnbindScaledQ(nn.Module):
    """Fused qkv reshaped to [3, B, H, N, dh] and unbound; q scaled before the product."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1)
        return self.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).flatten(2))


class ManualLayerNorm(nn.Module):
    """LayerNorm written out: exported as ReduceMean, Sub, Pow, Add, Sqrt, Div, Mul, Add."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight, self.bias = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def erf_gelu(x: Tensor) -> Tensor:
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, attention: type[nn.Module],
                 norm: Callable[[int], nn.Module], act: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.norm1, self.attn, self.norm2 = norm(dim), attention(dim, heads), norm(dim)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), act, nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """A pre-norm ViT; ``head_on`` is "cls" (classification) or "patches" (dense prediction)."""

    def __init__(self, attention: type[nn.Module], norm: Callable[[int], nn.Module] = nn.LayerNorm,
                 act: Callable[[Tensor], Tensor] | None = None, head_on: str = "cls",
                 dim: int = 48, depth: int = 2, heads: int = 3, hidden: int = 96,
                 outputs: int = 10) -> None:
        super().__init__()
        tokens = (IMAGE[1] // PATCH) * (IMAGE[2] // PATCH) + 1
        self.patch_embed = nn.Conv2d(IMAGE[0], dim, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*(Block(dim, heads, hidden, attention, norm, act or nn.GELU())
                                      for _ in range(depth)))
        self.norm, self.head, self.head_on = norm(dim), nn.Linear(dim, outputs), head_on
        with torch.no_grad():  # nothing left at 0 or 1, so a dropped term shows
            for p in self.parameters():
                p.add_(0.05 * torch.randn_like(p))

    def forward(self, x: Tensor) -> Tensor:
        if self.head_on == "cls":
            tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        else:
            tokens = self.patch_embed(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.cls_token.shape[-1])
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0]) if self.head_on == "cls" else self.head(x[:, 1:])


def export(module: nn.Module, path: Path, dynamo: bool = False, opset: int = 17,
           dynamic_batch: bool = False) -> Path:
    """torch.onnx.export of a batch-1 image model (dynamo=False: the TorchScript exporter)."""
    torch.manual_seed(0)
    axes = {"image": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, *IMAGE),), str(path), dynamo=dynamo,
                          opset_version=opset, input_names=["image"], output_names=["logits"],
                          dynamic_axes=axes)
    return path


def seeded(factory: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return factory().eval()


DENSE = {
    "separate": lambda: ViT(SeparateQKV),
    "sdpa": lambda: ViT(ChunkSDPA, act=lambda x: F.gelu(x, approximate="none"), head_on="patches"),
    "manual": lambda: ViT(UnbindScaledQ, norm=ManualLayerNorm, act=erf_gelu),
}


def check_matches_onnxruntime(graph: Graph, path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((1, *IMAGE)).astype(np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"image": x})[0]
    got = run_float(graph, patchify(x[0].astype(np.float64), PATCH))[graph.output]
    assert got.size == want.size
    assert np.abs(got.reshape(want.shape) - want).max() < 1e-4


# --------------------------------------------------------------------------------------------
# M3ViT exported by export_onnx
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> M3ViT:
    return build_model("tiny")


@pytest.fixture(scope="module")
def tiny_onnx(tiny: M3ViT, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {task: export_onnx(tiny, task, folder / f"tiny_{task}.onnx") for task in tiny.config.tasks}


def assert_same_nodes(got: Graph, want: Graph) -> None:
    """Node for node: names, ops, wiring, attrs, and float64 params equal bit for bit."""
    assert [n.name for n in got.nodes] == [n.name for n in want.nodes]
    for a, b in zip(got.nodes, want.nodes):
        assert (a.op, a.inputs, a.output, a.attrs) == (b.op, b.inputs, b.output, b.attrs), a.name
        assert a.params.keys() == b.params.keys(), a.name
        for key in a.params:
            assert a.params[key].dtype == np.float64, (a.name, key)
            assert np.array_equal(a.params[key], b.params[key]), (a.name, key)


@pytest.mark.parametrize("task", ["seg", "depth"])
def test_m3vit_export_equals_torch_frontend(tiny: M3ViT, tiny_onnx: dict[str, Path], task: str) -> None:
    graphs, meta = from_onnx(tiny_onnx[task])
    want = from_torch(tiny)[task]
    got = graphs[task]
    assert list(graphs) == [task]
    assert_same_nodes(got, want)
    assert (got.name, got.task, got.input, got.input_shape, got.output) == \
           (want.name, want.task, want.input, want.input_shape, want.output)
    config = {**tiny.config.to_dict(), "tasks": {task: tiny.config.tasks[task]}}
    assert meta == config
    assert got.meta == {"model": config}


def test_m3vit_config_recovered_from_graph_alone(tiny: M3ViT, tiny_onnx: dict[str, Path],
                                                 tmp_path: Path) -> None:
    """Without metadata_props the config comes from the graph; only name and task are generic."""
    proto = onnx.load(str(tiny_onnx["seg"]))
    del proto.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(proto, str(path))
    graphs, meta = from_onnx(path)
    want = {**tiny.config.to_dict(), "name": "bare", "tasks": {DEFAULT_TASK: 19}}
    assert meta == want
    got, ref = graphs[DEFAULT_TASK], from_torch(tiny)["seg"]
    assert [n.name for n in got.nodes][-1] == f"head.{DEFAULT_TASK}"
    for a, b in zip(got.nodes[:-1], ref.nodes[:-1]):
        assert a.name == b.name and all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_metadata_that_contradicts_the_graph_is_rejected(tiny_onnx: dict[str, Path],
                                                         tmp_path: Path) -> None:
    proto = onnx.load(str(tiny_onnx["seg"]))
    for prop in proto.metadata_props:
        if prop.key == META_MODEL:
            prop.value = json.dumps({**json.loads(prop.value), "heads": 4})
    path = tmp_path / "lying.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(CompileError, match=r"lying\.onnx.*heads=4.*heads=2"):
        from_onnx(path)


def test_moe_that_routes_differently_is_rejected(tmp_path: Path) -> None:
    """The routing region is checked numerically: here each expert gets the other slot's score,
    which uses only routing ops (a Slice with step -1) but is another model."""
    model = build_model("tiny")

    def swapped(self: MoE, tokens: Tensor, task: str) -> tuple[Tensor, Tensor, Tensor]:
        logits, experts, scores = MoE.route(self, tokens, task)
        return logits, experts, scores.flip(-1)

    model.blocks[1].moe.route = swapped.__get__(model.blocks[1].moe)
    path = export_onnx(model, "seg", tmp_path / "swapped.onnx")
    with pytest.raises(CompileError, match=r"TopK.*does not compute the IR moe semantics"):
        from_onnx(path)


# --------------------------------------------------------------------------------------------
# Dense ViTs from plain PyTorch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(DENSE))
def test_dense_vit_matches_onnxruntime(variant: str, tmp_path: Path) -> None:
    module = seeded(DENSE[variant])
    path = export(module, tmp_path / f"{variant}.onnx")
    graphs, meta = from_onnx(path)
    graph = graphs[DEFAULT_TASK]
    check_matches_onnxruntime(graph, path)
    patch_head = variant == "sdpa"
    assert meta == {
        "name": variant, "image_size": list(IMAGE), "patch": PATCH, "dim": 48, "depth": 2,
        "heads": 3, "mlp_hidden": 96, "num_experts": 0, "expert_hidden": 0, "top_k": 0,
        "tasks": {DEFAULT_TASK: 10}, "ln_eps": 1e-6 if variant == "manual" else 1e-5,
        "moe_blocks": [],
    }
    assert [n.op for n in graph.nodes] == ["linear", "embed"] + [
        "layernorm", "linear", "attention", "linear", "layernorm", "linear", "linear"] * 2 + [
        "layernorm", "linear"]
    assert graph.node(f"head.{DEFAULT_TASK}").attrs == {"rows": (1, 17) if patch_head else (0, 1)}


def test_separate_projections_fuse_to_q_k_v_columns(tmp_path: Path) -> None:
    module = seeded(DENSE["separate"])
    graph = from_onnx(export(module, tmp_path / "separate.onnx"))[0][DEFAULT_TASK]
    attn = module.blocks[1].attn
    qkv = graph.node("block1.qkv")
    want_w = torch.cat([attn.q.weight, attn.k.weight, attn.v.weight]).T.double().detach().numpy()
    want_b = torch.cat([attn.q.bias, attn.k.bias, attn.v.bias]).double().detach().numpy()
    assert np.array_equal(qkv.params["w"], want_w) and np.array_equal(qkv.params["b"], want_b)
    assert graph.node("block1.attn_core").attrs == {"heads": 3, "dim": 48}


def test_dynamo_export_matches_onnxruntime(tmp_path: Path) -> None:
    """The torch.export-based exporter (at opset 18: its opset-17 down-conversion of Split is
    invalid ONNX) spells Split, SDPA and the head differently; the result is the same."""
    path = export(seeded(DENSE["sdpa"]), tmp_path / "dynamo.onnx", dynamo=True, opset=18)
    check_matches_onnxruntime(from_onnx(path)[0][DEFAULT_TASK], path)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unsupported_op_names_node_op_and_supported_ops(tmp_path: Path) -> None:
    path = export(seeded(lambda: ViT(SeparateQKV, act=nn.ReLU())), tmp_path / "relu.onnx")
    relu = next(n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Relu")
    with pytest.raises(CompileError) as info:
        from_onnx(path)
    message = str(info.value)
    assert f"node {relu!r} (op Relu): not supported; supported ops are" in message
    assert "LayerNormalization" in message and "relu.onnx" in message


def test_dynamic_batch_is_rejected(tmp_path: Path) -> None:
    path = export(seeded(DENSE["separate"]), tmp_path / "dyn.onnx", dynamic_batch=True)
    with pytest.raises(CompileError, match=r"input 'image' has shape \['batch', 3, 32, 32\]"):
        from_onnx(path)


def test_unfusable_scaled_activation_names_the_node(tmp_path: Path) -> None:
    """An attention scale other than 1/sqrt(head_dim) has no IR form."""

    class DoubleScale(SeparateQKV):
        def forward(self, x: Tensor) -> Tensor:
            b, n, d = x.shape
            q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
            attn = torch.softmax(q @ k.transpose(-2, -1) * 0.5, dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))

    path = export(seeded(lambda: ViT(DoubleScale)), tmp_path / "scale.onnx")
    with pytest.raises(CompileError, match=r"node '[^']*MatMul[^']*' \(op MatMul\): attention scale 0.5"):
        from_onnx(path)


def test_broken_files_name_the_file(tiny_onnx: dict[str, Path], tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(tiny_onnx["seg"].read_bytes()[:5000])
    with pytest.raises(CompileError, match=r"truncated\.onnx: not a valid ONNX model"):
        from_onnx(truncated)
    with pytest.raises(CompileError, match=r"missing\.onnx: no such ONNX file"):
        from_onnx(tmp_path / "missing.onnx")


def test_frontend_writes_nothing(tiny_onnx: dict[str, Path]) -> None:
    folder = tiny_onnx["seg"].parent
    before = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    from_onnx(tiny_onnx["seg"])
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == before


@pytest.mark.parametrize("variant", ["separate", "sdpa"])
def test_dense_vit_compiles_and_runs_close_to_onnxruntime(variant: str, tmp_path: Path) -> None:
    """A generic ViT from ONNX goes through the whole flow: compile, golden model, dequantize."""
    from edgemoe.compiler.pipeline import compile_model
    from edgemoe.host.accelerator import Accelerator
    from edgemoe.host.fidelity import cosine

    path = export(seeded(DENSE[variant]), tmp_path / f"{variant}.onnx")
    acc = Accelerator(compile_model(str(path), "tiny", "w8a16", calib=2))
    from edgemoe.compiler.calibration import FIDELITY_IMAGE, natural_image

    x = acc.preprocess(natural_image(FIDELITY_IMAGE))[None].astype(np.float32)  # held-out image
    want = ort.InferenceSession(str(path)).run(None, {"image": x})[0]
    got = acc.run(x, DEFAULT_TASK).output
    assert cosine(got.reshape(want.shape), want) > 0.999
