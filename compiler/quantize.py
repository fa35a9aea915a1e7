"""Calibration and quantization: float graph -> integer tensors, weights and requantizers.

Rules (see docs/compiler.md for the reasoning):

* Weights: int8, symmetric, one scale per output channel.
* Activations: symmetric, one scale per tensor, from the largest magnitude seen in calibration
  times a headroom factor (``HEADROOM``) so that other inputs do not saturate.
  ``w8a16``: every activation is int16. ``w8a8``: every activation that enters the MAC array is
  int8; the residual stream stays int16 (an 8-bit residual stream loses the small updates that
  later blocks add) and so do the task outputs.
* The residual stream (embedding output and every in-place residual update) has one scale, the
  largest magnitude over all blocks, because updates are added in place.
* A GELU output is in a power-of-two format Q(F) because the GELU unit works in fixed point.
* Attention queries and keys keep fewer bits (``QK_BITS_A16``) in w8a16 so that a dot product of
  ``head_dim`` terms cannot overflow a 32-bit accumulator.
* Scores and gate logits are int16 in the base-2 domain with ``score_frac_bits`` fraction bits,
  so exp() becomes a shift and a table lookup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics import fixedpoint
from edgemoe.hw.numerics.layernorm import layernorm_params

from .errors import CompileError
from .ir import Graph, Node, run_float

PRECISIONS = ("w8a8", "w8a16")
#: Bits of the attention queries and keys at w8a16 (Q and K are int16 containers).
QK_BITS_A16 = 12
LOG2E = 1.0 / math.log(2.0)


@dataclass
class QTensor:
    """How one tensor is stored: signed ``bits``-wide integers times ``scale``."""

    bits: int
    scale: float
    #: Fraction bits when the scale is a power of two that the hardware relies on (GELU, scores).
    frac: int | None = None

    @property
    def bytes_per_element(self) -> int:
        return self.bits // 8

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1


@dataclass
class QNode:
    """Integer parameters of one node, ready to lay out in DRAM."""

    node: Node
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class QGraph:
    graph: Graph
    precision: str
    tensors: dict[str, QTensor]
    nodes: list[QNode]
    #: The largest calibration magnitude of every tensor (for reports).
    ranges: dict[str, float]


# --------------------------------------------------------------------------- calibration
def calibrate(graph: Graph, samples: list[np.ndarray]) -> dict[str, Any]:
    """Largest magnitudes of every tensor, and of the internals that get their own format."""
    if not samples:
        raise CompileError("calibration needs at least one sample input (--calib N with N >= 1)")
    ranges: dict[str, float] = {}
    extra: dict[str, float] = {}

    def see(key: str, value: np.ndarray, table: dict[str, float]) -> None:
        if value.size:
            table[key] = max(table.get(key, 0.0), float(np.max(np.abs(value))))

    for x in samples:
        trace: dict[str, Any] = {}
        env = run_float(graph, x, trace)
        for name, value in env.items():
            see(name, value, ranges)
        for n in graph.nodes:
            if n.op == "linear" and n.attrs.get("gelu"):
                see(n.name + ".pre_gelu", trace[n.name + ".pre_gelu"], extra)
            elif n.op == "attention":
                xin = env[n.inputs[0]]
                d = xin.shape[1] // 3
                see(n.name + ".q", xin[:, :d], extra)
                see(n.name + ".k", xin[:, d : 2 * d], extra)
                see(n.name + ".v", xin[:, 2 * d :], extra)
            elif n.op == "moe":
                for pre in trace.get(n.name + ".hidden", []):
                    see(n.name + ".hidden", pre, extra)
    return {"ranges": ranges, "internal": extra}


# --------------------------------------------------------------------------- formats
#: Range kept above the calibrated maximum, per width: inputs unlike the calibration images
#: must not saturate. 16-bit tensors can afford a factor of 2 (one of 15 bits); 8-bit ones
#: cannot, their resolution matters more.
HEADROOM = {8: 1.0, 12: 2.0, 16: 2.0}


def _scale_for(maxabs: float, bits: int) -> float:
    qmax = (1 << (bits - 1)) - 1
    return max(maxabs, 1e-6) * HEADROOM.get(bits, 1.0) / qmax


def _pow2_format(maxabs: float, bits: int) -> QTensor:
    """Q(F) with the most fraction bits that still holds ``maxabs`` (F in [0, 15])."""
    int_bits = max(0, math.ceil(math.log2(max(maxabs, 1e-6) * 1.0001)))
    frac = min(15, max(0, bits - 1 - int_bits))
    return QTensor(bits, 2.0 ** -frac, frac)


def _weight_q(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8: w[k, n] -> (wq int8 [k, n], scale [n])."""
    sw = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
    wq = np.clip(np.round(w / sw), -127, 127).astype(np.int8)
    return wq, sw


def _requant_params(real: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return fixedpoint.quantize_multipliers(np.asarray(real, dtype=np.float64))
    except ValueError as e:
        raise CompileError(f"{what}: {e}") from None


def _bias_q(b: np.ndarray, acc_scale: np.ndarray, what: str) -> np.ndarray:
    q = np.round(b / acc_scale)
    if np.any(np.abs(q) > 2**31 - 1):
        raise CompileError(f"{what}: bias does not fit int32 at the accumulator scale")
    return q.astype(np.int64)


def _linear_params(w, b, sx: float, sy: np.ndarray | float, what: str) -> dict[str, Any]:
    wq, sw = _weight_q(w)
    acc_scale = sx * sw
    mult, shift = _requant_params(acc_scale / sy, what)
    return {"w": wq, "bias": _bias_q(b, acc_scale, what), "mult": mult, "shift": shift}


# --------------------------------------------------------------------------- quantize
def quantize(
    graphs: dict[str, Graph], samples: list[np.ndarray], precision: str, cfg: HardwareConfig
) -> dict[str, QGraph]:
    """Quantize every task's graph with ranges calibrated over all tasks.

    Tensors and nodes with the same name in several tasks (the shared trunk and experts) get the
    same formats and parameters, so their DRAM images are identical and stored once.
    """
    if precision not in PRECISIONS:
        raise CompileError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "w8a16" and cfg.act_width < 16:
        raise CompileError(
            f"precision w8a16 needs 16-bit activations but hardware config '{cfg.name}' has "
            f"act_width = {cfg.act_width}"
        )
    ranges: dict[str, float] = {}
    internal: dict[str, float] = {}
    for graph in graphs.values():
        graph.validate()
        cal = calibrate(graph, samples)
        for table, new in ((ranges, cal["ranges"]), (internal, cal["internal"])):
            for k, v in new.items():
                table[k] = max(table.get(k, 0.0), v)
    residual = set()
    for graph in graphs.values():
        residual |= _residual_stream(graph)
    res_q = QTensor(16, _scale_for(max(ranges[t] for t in residual), 16))
    return {
        task: _quantize_graph(g, ranges, internal, res_q, precision, cfg)
        for task, g in graphs.items()
    }


def _residual_stream(graph: Graph) -> set[str]:
    """The embedding output and every tensor updated in place from it."""
    out = set()
    for n in graph.nodes:
        if n.op == "embed" or (n.op == "linear" and len(n.inputs) > 1) or n.op == "moe":
            out.add(n.output)
    return out


def _quantize_graph(
    graph: Graph,
    ranges: dict[str, float],
    internal: dict[str, float],
    res_q: QTensor,
    precision: str,
    cfg: HardwareConfig,
) -> QGraph:
    narrow = 8 if precision == "w8a8" else 16
    fz = cfg.numerics.score_frac_bits
    producers = graph.producers()

    residual = _residual_stream(graph)
    tensors: dict[str, QTensor] = {}
    tensors[graph.input] = QTensor(narrow, _scale_for(ranges[graph.input], narrow))
    for n in graph.nodes:
        if n.output in residual:
            tensors[n.output] = res_q
        elif n.output == graph.output:
            tensors[n.output] = QTensor(16, _scale_for(ranges[n.output], 16))
        elif n.op == "linear" and n.attrs.get("gelu"):
            tensors[n.output] = _pow2_format(internal[n.name + ".pre_gelu"], narrow)
        elif n.op == "linear" and any(c.op == "embed" for c in graph.nodes if c.inputs[0] == n.output):
            tensors[n.output] = res_q  # patch embedding lands in the residual stream
        else:
            tensors[n.output] = QTensor(narrow, _scale_for(ranges[n.output], narrow))

    qnodes: list[QNode] = []
    for n in graph.nodes:
        sx = tensors[n.inputs[0]].scale
        yq = tensors[n.output]
        what = f"node {n.name} ({n.op})"
        if n.op == "linear":
            consumer = [c for c in graph.nodes if n.output in c.inputs]
            sy: Any = yq.scale
            if consumer and consumer[0].op == "attention":
                sy = _qkv_scales(consumer[0], internal, narrow, n.params["w"].shape[1])
            p = _linear_params(n.params["w"], n.params["b"], sx, sy, what)
            p["gelu_frac"] = yq.frac if n.attrs.get("gelu") else 0
            if n.attrs.get("gelu") and yq.frac is None:
                raise CompileError(f"{what}: GELU output needs a power-of-two format")
            qnodes.append(QNode(n, p))
        elif n.op == "embed":
            cls_pos = n.params["cls"] + n.params["pos"][0]
            qnodes.append(
                QNode(n, {
                    "cls_row": _q(cls_pos, yq),
                    "pos_rows": _q(n.params["pos"][1:], yq),
                })
            )
        elif n.op == "layernorm":
            g, b = n.params["gamma"], n.params["beta"]
            gq, bq, eps_q, mult, shift = layernorm_params(
                g, b, n.attrs["eps"], sx, yq.scale, g.shape[0], cfg
            )
            qnodes.append(QNode(n, {"gamma": gq, "beta": bq, "eps_q": eps_q, "mult": mult, "shift": shift}))
        elif n.op == "attention":
            qkv = producers[n.inputs[0]]
            d = n.attrs["dim"]
            dh = d // n.attrs["heads"]
            sq, sk, sv = (_qkv_scales(n, internal, narrow, 3 * d)[[0, d, 2 * d]])
            mz, sz = _requant_params(np.array([sq * sk / math.sqrt(dh) * LOG2E * 2**fz]), what + " scores")
            prob_frac = cfg.act_width - 1
            mo, so = _requant_params(np.array([sv * 2.0**-prob_frac / yq.scale]), what + " output")
            del qkv
            qnodes.append(QNode(n, {"qk_mult": int(mz[0]), "qk_shift": int(sz[0]),
                                    "av_mult": int(mo[0]), "av_shift": int(so[0])}))
        elif n.op == "moe":
            p = n.params
            gate = _linear_params(p["gate_w"], p["gate_b"], sx, 1.0 / (LOG2E * 2**fz), what + " gate")
            hidden = _pow2_format(internal.get(n.name + ".hidden", 1.0), narrow)
            experts = []
            for e in range(p["w1"].shape[0]):
                fc1 = _linear_params(p["w1"][e], p["b1"][e], sx, hidden.scale, f"{what} expert {e} fc1")
                fc2 = _linear_params(p["w2"][e], p["b2"][e], hidden.scale, res_q.scale, f"{what} expert {e} fc2")
                experts.append((fc1, fc2))
            qnodes.append(QNode(n, {"gate": gate, "experts": experts, "hidden": hidden, "k": n.attrs["k"]}))
        else:  # pragma: no cover - validate() rejects unknown ops
            raise CompileError(f"{what}: cannot quantize op {n.op!r}")
    return QGraph(graph, precision, tensors, qnodes, ranges)


def _q(x: np.ndarray, qt: QTensor) -> np.ndarray:
    return np.clip(np.round(x / qt.scale), -qt.qmax, qt.qmax).astype(np.int64)


def _qkv_scales(attn: Node, internal: dict[str, float], narrow: int, width: int) -> np.ndarray:
    """Per-column output scale of the fused qkv projection: one scale each for q, k and v."""
    d = width // 3
    qk_bits = QK_BITS_A16 if narrow == 16 else narrow
    sq = _scale_for(internal[attn.name + ".q"], qk_bits)
    sk = _scale_for(internal[attn.name + ".k"], qk_bits)
    sv = _scale_for(internal[attn.name + ".v"], narrow)
    return np.concatenate([np.full(d, sq), np.full(d, sk), np.full(d, sv)])
