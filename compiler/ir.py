"""Graph IR: a transformer-level dataflow graph of one task of one image.

Tensors are 2-D ``[rows, cols]`` float matrices (tokens x channels): the accelerator processes one
image at a time, so the batch dimension is gone. Nodes are the layer-level operations the ISA
can run; both frontends (PyTorch and ONNX) produce this IR and everything after them (calibration,
quantization, lowering) consumes it. :func:`run_float` executes a graph in float64 NumPy: it is the
reference that calibration observes and the fidelity report compares against.

Operations (``Node.op``) and their float semantics:

``linear``      y = x[rows] @ W + b, then GELU if ``gelu``, then + residual if a second input
                is given. ``rows`` (optional ``(start, stop)``) selects input rows, as the task
                heads do with the patch tokens.
``embed``       y = concat(cls, x) + pos: class token and position embedding.
``layernorm``   y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis.
``attention``   multi-head self attention on a fused ``qkv`` input (columns [q | k | v], each
                split into ``heads`` contiguous groups); output columns are the heads in order.
``moe``         y = residual + sum over the top-k experts e of gate score_e * expert_e(x), where
                expert_e(x) = GELU(x @ W1_e + b1_e) @ W2_e + b2_e and the scores are the softmax
                of x @ Wg + bg kept without renormalisation. Inputs: (x, residual).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OPS = ("linear", "embed", "layernorm", "attention", "moe")


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    output: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """One task's graph. ``input`` is the patch matrix [num_patches, C*p*p]."""

    name: str
    task: str
    input: str
    input_shape: tuple[int, int]
    output: str
    nodes: list[Node] = field(default_factory=list)
    #: Model-level facts the host needs (image shape, patch size, normalisation, tasks).
    meta: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producers(self) -> dict[str, Node]:
        return {n.output: n for n in self.nodes}

    def shapes(self) -> dict[str, tuple[int, int]]:
        """Shape of every tensor, derived from the input shape and the parameters."""
        shapes = {self.input: tuple(self.input_shape)}
        for n in self.nodes:
            x = shapes[n.inputs[0]]
            if n.op == "linear":
                rows = n.attrs.get("rows")
                m = x[0] if rows is None else rows[1] - rows[0]
                shapes[n.output] = (m, n.params["w"].shape[1])
            elif n.op == "embed":
                shapes[n.output] = (x[0] + 1, x[1])
            elif n.op == "attention":
                shapes[n.output] = (x[0], x[1] // 3)
            else:  # layernorm, moe keep the shape
                shapes[n.output] = x
        return shapes

    def validate(self) -> None:
        known = {self.input}
        for n in self.nodes:
            if n.op not in OPS:
                raise ValueError(f"node {n.name}: unknown op {n.op!r}")
            for i in n.inputs:
                if i not in known:
                    raise ValueError(f"node {n.name}: input {i!r} is not defined before it")
            if n.output in known:
                raise ValueError(f"node {n.name}: output {n.output!r} is defined twice")
            known.add(n.output)
        if self.output not in known:
            raise ValueError(f"graph output {self.output!r} is not produced")


# --------------------------------------------------------------------------- float reference
def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU in float64 (NumPy has no erf; torch's is vectorised and exact)."""
    import torch

    with torch.no_grad():
        erf = torch.special.erf(torch.from_numpy(np.asarray(x, dtype=np.float64) / math.sqrt(2.0))).numpy()
    return 0.5 * x * (1.0 + erf)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def topk_route(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Experts [tokens, k] by decreasing probability (ties: lower index) and their scores."""
    probs = softmax(logits)
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=-1)


def run_node(n: Node, ins: list[np.ndarray], trace: dict[str, Any] | None = None) -> np.ndarray:
    p, a = n.params, n.attrs
    x = ins[0]
    if n.op == "linear":
        rows = a.get("rows")
        if rows is not None:
            x = x[rows[0] : rows[1]]
        y = x @ p["w"] + p["b"]
        if a.get("gelu"):
            if trace is not None:
                trace[n.name + ".pre_gelu"] = y
            y = gelu(y)
        if len(ins) > 1:
            y = y + ins[1]
        return y
    if n.op == "embed":
        return np.concatenate([p["cls"][None, :], x], axis=0) + p["pos"]
    if n.op == "layernorm":
        return layernorm(x, p["gamma"], p["beta"], a["eps"])
    if n.op == "attention":
        heads = a["heads"]
        d = x.shape[1] // 3
        dh = d // heads
        out = np.empty((x.shape[0], d))
        for h in range(heads):
            q = x[:, h * dh : (h + 1) * dh]
            k = x[:, d + h * dh : d + (h + 1) * dh]
            v = x[:, 2 * d + h * dh : 2 * d + (h + 1) * dh]
            out[:, h * dh : (h + 1) * dh] = softmax(q @ k.T / math.sqrt(dh)) @ v
        return out
    if n.op == "moe":
        residual = ins[1]
        logits = x @ p["gate_w"] + p["gate_b"]
        experts, scores = topk_route(logits, a["k"])
        if trace is not None:
            trace[n.name + ".route"] = experts
            trace[n.name + ".gate_logits"] = logits
        y = residual.copy()
        for e in range(p["w1"].shape[0]):
            tok, slot = np.nonzero(experts == e)
            if tok.size == 0:
                continue
            pre = x[tok] @ p["w1"][e] + p["b1"][e]
            if trace is not None:
                trace.setdefault(n.name + ".hidden", []).append(pre)
            h = gelu(pre)
            y[tok] += scores[tok, slot][:, None] * (h @ p["w2"][e] + p["b2"][e])
        return y
    raise ValueError(f"node {n.name}: unknown op {n.op!r}")


def run_float(graph: Graph, x: np.ndarray, trace: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Execute ``graph`` in float64; returns every tensor by name.

    ``trace`` (if given) receives internals: ``<node>.pre_gelu`` of GELU linears,
    ``<node>.route``, ``<node>.gate_logits`` and ``<node>.hidden`` (pre-GELU, per expert) of MoE.
    """
    import torch

    from edgemoe.hw.blas import single_blas_thread

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only contend (see edgemoe.hw.blas)
    try:
        with single_blas_thread():
            env = {graph.input: np.asarray(x, dtype=np.float64)}
            for n in graph.nodes:
                env[n.output] = run_node(n, [env[i] for i in n.inputs], trace)
    finally:
        torch.set_num_threads(threads)
    return env


def patchify(image: np.ndarray, patch: int) -> np.ndarray:
    """[C, H, W] -> [num_patches, C*patch*patch]: the layout of every graph's input.

    Patches in row-major grid order; within a patch, index c*patch*patch + y*patch + x, which is
    the order of a Conv2d weight [D, C, patch, patch] flattened to [D, C*patch*patch].
    """
    c, h, w = image.shape
    gy, gx = h // patch, w // patch
    x = image[:, : gy * patch, : gx * patch].reshape(c, gy, patch, gx, patch)
    return x.transpose(1, 3, 0, 2, 4).reshape(gy * gx, c * patch * patch)
