"""PyTorch frontend: an :class:`~edgemoe.compiler.model.M3ViT` module -> one Graph per task."""

from __future__ import annotations

import numpy as np

from .errors import CompileError
from .ir import Graph, Node


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _linear(name: str, mod, x: str, out: str, **attrs) -> Node:
    """nn.Linear stores weight [out, in]; the IR uses w [in, out]."""
    return Node("linear", name, [x] + attrs.pop("residual", []), out,
                {"w": _np(mod.weight).T.copy(), "b": _np(mod.bias)}, attrs)


def from_torch(model) -> dict[str, Graph]:
    """Translate every task of ``model``; raises CompileError for anything it cannot map."""
    from .model import M3ViT

    if not isinstance(model, M3ViT):
        raise CompileError(f"the PyTorch frontend takes an M3ViT module, got {type(model).__name__}")
    cfg = model.config
    return {task: _task_graph(model, task) for task in cfg.tasks}


def _task_graph(model, task: str) -> Graph:
    cfg = model.config
    d = cfg.dim
    conv = model.patch_embed
    nodes: list[Node] = [
        Node("linear", "patch_embed", ["patches"], "patch_tokens",
             {"w": _np(conv.weight).reshape(d, -1).T.copy(), "b": _np(conv.bias)}),
        Node("embed", "embed", ["patch_tokens"], "x0",
             {"cls": _np(model.cls_token).reshape(d), "pos": _np(model.pos_embed).reshape(-1, d)}),
    ]
    x = "x0"
    for i, blk in enumerate(model.blocks):
        b = f"block{i}"
        nodes += [
            Node("layernorm", f"{b}.norm1", [x], f"{b}.ln1",
                 {"gamma": _np(blk.norm1.weight), "beta": _np(blk.norm1.bias)}, {"eps": blk.norm1.eps}),
            _linear(f"{b}.qkv", blk.attn.qkv, f"{b}.ln1", f"{b}.qkv"),
            Node("attention", f"{b}.attn_core", [f"{b}.qkv"], f"{b}.heads",
                 attrs={"heads": blk.attn.heads, "dim": d}),
            _linear(f"{b}.proj", blk.attn.proj, f"{b}.heads", f"{b}.attn", residual=[x]),
            Node("layernorm", f"{b}.norm2", [f"{b}.attn"], f"{b}.ln2",
                 {"gamma": _np(blk.norm2.weight), "beta": _np(blk.norm2.bias)}, {"eps": blk.norm2.eps}),
        ]
        if blk.moe is not None:
            moe = blk.moe
            gate = moe.gates[task]
            nodes.append(Node(
                "moe", f"{b}.moe", [f"{b}.ln2", f"{b}.attn"], f"{b}.mlp",
                {
                    "gate_w": _np(gate.weight).T.copy(), "gate_b": _np(gate.bias),
                    "w1": np.stack([_np(e.fc1.weight).T for e in moe.experts]),
                    "b1": np.stack([_np(e.fc1.bias) for e in moe.experts]),
                    "w2": np.stack([_np(e.fc2.weight).T for e in moe.experts]),
                    "b2": np.stack([_np(e.fc2.bias) for e in moe.experts]),
                },
                {"k": moe.top_k},
            ))
        else:
            nodes += [
                _linear(f"{b}.fc1", blk.mlp.fc1, f"{b}.ln2", f"{b}.hidden", gelu=True),
                _linear(f"{b}.fc2", blk.mlp.fc2, f"{b}.hidden", f"{b}.mlp", residual=[f"{b}.attn"]),
            ]
        x = f"{b}.mlp"
    nodes += [
        Node("layernorm", "norm", [x], "final",
             {"gamma": _np(model.norm.weight), "beta": _np(model.norm.bias)}, {"eps": model.norm.eps}),
        _linear(f"head.{task}", model.heads[task], "final", f"out.{task}", rows=(1, cfg.num_tokens)),
    ]
    g = Graph(
        name=cfg.name, task=task, input="patches",
        input_shape=(cfg.num_patches, cfg.patch_dim), output=f"out.{task}", nodes=nodes,
        meta={"model": cfg.to_dict()},
    )
    g.validate()
    return g
