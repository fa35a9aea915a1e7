"""ONNX frontend: a ViT / M³ViT ``.onnx`` file -> the graph IR of its one task.

The file is read in three passes, so that the many ways exporters spell the same layer all land
on the same IR (and an M³ViT exported by :func:`~edgemoe.compiler.model.export_onnx` gives the
graph :func:`~edgemoe.compiler.frontend_torch.from_torch` gives, node for node):

1. **Abstract interpretation** (:class:`_Interpreter`). The ONNX nodes run in order over
   abstract values instead of tensors. Constants (initializers, ``Constant``, shape arithmetic
   on the static shapes of batch 1) are evaluated. An activation is a :class:`_View`: the name of
   a 2-D *raw* tensor ``[tokens, channels]`` plus an index array with the ONNX tensor's shape
   that says where each element lives in that tensor, so Reshape / Transpose / Flatten / Split /
   Gather / Slice of any kind are exact bookkeeping and the attention heads can be read off the
   indices. Multi-node patterns (LayerNorm and GELU decompositions, attention scores and
   probabilities) are partial values that complete into one raw node. Each compute step becomes
   a small *raw* node (``linear``, ``add_const``, ``mul_const``, ``gelu``, ``add``, ``rows``,
   ``layernorm``, ``embed``, ``softmax``, ``attention``, ``moe``).
2. **Fusion** (:func:`_fuse`): biases, GELU, row selections and residual adds fold into the
   linear layer before them, LayerNorm gains into the LayerNorm, the position embedding into the
   embedding, separate q/k/v projections into one fused ``qkv`` linear, the gate into the MoE.
3. **Structure** (:class:`_Parser`): the fused raw graph is walked from the input as a pre-norm
   ViT (patch embedding, class token + position embedding, blocks, final LayerNorm, head) and
   each node gets the canonical name the PyTorch frontend uses.

MoE layers are the exception to pass 1: the routing bookkeeping (TopK, Equal, NonZero, Gather or
GatherND, ScatterElements or ScatterND, ...) differs between exporters, so the nodes downstream of
the gate's TopK are taken as one opaque region. Its expert MLPs are found structurally (a dense
layer fed by a gather of the layer input, selected by ``Equal(expert indices, e)``) and the
region is then *run* on random tokens and compared with the IR ``moe`` semantics, so a region
that routes differently (renormalised scores, another k, a missing GELU) is rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from .errors import CompileError
from .ir import Graph, Node, run_node

#: Oldest default-domain opset accepted (LayerNormalization is in the default domain from 17).
MIN_OPSET = 17
#: Task name of graphs that carry no edgemoe metadata (plain ViTs).
DEFAULT_TASK = "output"
#: metadata_props keys written by :func:`edgemoe.compiler.model.export_onnx`.
META_MODEL = "edgemoe.model"
META_TASK = "edgemoe.task"

#: Ops that only rearrange elements; they map a view to a view (and a routed value to a routed one).
_LAYOUT_OPS = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Slice",
               "Split", "Expand", "Identity", "Cast")
#: Ops with their own handler outside MoE regions.
_COMPUTE_OPS = ("Add", "Concat", "Conv", "Div", "Erf", "Gelu", "Gemm", "LayerNormalization",
                "MatMul", "Mul", "Pow", "Reciprocal", "ReduceMean", "Shape", "Size", "Softmax",
                "Sqrt", "Sub", "TopK")
#: Ops accepted inside an MoE region (routing bookkeeping and the expert MLPs).
_REGION_OPS = frozenset(_LAYOUT_OPS + (
    "Add", "Concat", "ConstantOfShape", "Div", "Equal", "Erf", "Gelu", "GatherElements",
    "GatherND", "Gemm", "Less", "MatMul", "Mul", "NonZero", "Range", "ScatterElements",
    "ScatterND", "Shape", "Size", "Sub", "Tile", "Where"))
SUPPORTED_OPS = tuple(sorted(set(_LAYOUT_OPS + _COMPUTE_OPS) | {"Constant"}))

#: Relative tolerance when recognising float32 constants (1/sqrt(2), 0.5, 1/sqrt(head_dim)).
_CONST_RTOL = 1e-5
#: Tolerance of the MoE region check (float32 ONNX evaluation vs float64 IR), relative to the
#: largest output magnitude.
_MOE_RTOL = 1e-4


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def from_onnx(path: str | Path) -> tuple[dict[str, Graph], dict[str, Any]]:
    """Translate one ONNX file into ``({task: Graph}, model_meta)``.

    ``model_meta`` has the keys of ``ModelConfig.to_dict()`` with ``tasks`` holding just this
    file's task. Files written by ``export_onnx`` carry the model config and task in their
    metadata_props (checked against the graph); other ViTs get the task name ``"output"``, the
    file stem as name and ``num_experts = expert_hidden = top_k = 0`` when they have no MoE.
    Raises CompileError naming the file, or the ONNX node and op type, for anything it cannot map.
    """
    path = Path(path)
    model = _load(path)
    try:
        return _translate(model, path)
    except CompileError as e:
        raise CompileError(f"{path}: {e}") from None


def _translate(model: onnx.ModelProto, path: Path) -> tuple[dict[str, Graph], dict[str, Any]]:
    """The three passes of the module doc, then the model config."""
    props = {p.key: p.value for p in model.metadata_props}
    stored = _stored_config(props)
    task = props[META_TASK] if stored is not None else DEFAULT_TASK
    interp = _Interpreter(model)
    raw, output = interp.run()
    _fuse(raw)
    for node in raw:
        if node.op == "moe":
            interp.verify_moe(node)
    nodes, facts = _Parser(raw, interp.input_src, output, task, interp.shapes).parse()
    config = _model_config(facts, interp.image, interp.patch, task, stored, path.stem)
    if stored is not None:
        _use_stored_eps(nodes, config["ln_eps"])
    graph = Graph(
        name=config["name"], task=task, input=_Parser.INPUT,
        input_shape=interp.shapes[interp.input_src], output=f"out.{task}", nodes=nodes,
        meta={"model": config},
    )
    graph.validate()
    return {task: graph}, config


def _load(path: Path) -> onnx.ModelProto:
    """Read and check the file; every failure names the file."""
    if not path.is_file():
        raise CompileError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except (OSError, ValueError, DecodeError, onnx.checker.ValidationError) as e:
        raise CompileError(f"{path}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise CompileError(f"{path}: opset {opset} is too old; export with opset >= {MIN_OPSET}")
    return model


def _stored_config(props: dict[str, str]) -> dict[str, Any] | None:
    """The model config that ``export_onnx`` stored in metadata_props, if any."""
    if META_MODEL not in props:
        return None
    try:
        config = json.loads(props[META_MODEL])
    except json.JSONDecodeError as e:
        raise CompileError(f"metadata {META_MODEL!r} is not JSON ({e})") from None
    task = props.get(META_TASK)
    if not isinstance(config, dict) or task not in config.get("tasks", {}):
        raise CompileError(f"metadata {META_MODEL!r} has no task {task!r} (metadata {META_TASK!r})")
    return config


# --------------------------------------------------------------------------------------------
# Abstract values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _View:
    """An activation: element ``i`` of the ONNX tensor is ``scale * src.flat[idx.flat[i]]``.

    ``src`` names a 2-D raw tensor; ``idx`` has the ONNX tensor's shape. ``scale`` is a pending
    scalar factor, allowed only where a pattern absorbs it (attention scores, GELU).
    """

    src: str
    idx: np.ndarray
    scale: float = 1.0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.idx.shape)

    def same(self, other: Any) -> bool:
        """Same elements in the same layout (the scale aside)."""
        return (isinstance(other, _View) and other.src == self.src
                and np.array_equal(other.idx, self.idx))

    def relaid(self, idx: np.ndarray) -> _View:
        return _View(self.src, np.ascontiguousarray(idx), self.scale)


@dataclass(frozen=True, eq=False)
class _Image:
    """The graph input [1, C, H, W]; only a patch-embedding Conv may read it."""

    shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class _Moment:
    """A step of a decomposed LayerNorm over the last axis of ``x``.

    Stages: ``mean`` → ``centered`` (x - mean) → ``sqdev`` → ``var`` → ``var_eps`` → ``std`` →
    ``inv_std``; ``centered / std`` (or ``centered * inv_std``) completes the LayerNorm.
    """

    x: _View
    stage: str
    eps: float = 0.0


@dataclass(frozen=True, eq=False)
class _GeluPart:
    """``coef * [x] * (erf(x/√2) [+ 1])``: a step of the erf GELU decomposition of ``x``."""

    x: _View
    coef: float
    has_x: bool
    plus_one: bool


@dataclass(frozen=True, eq=False)
class _Scores:
    """``scale * q @ kᵀ`` of attention (``softmax`` once normalised); ``k`` is the kᵀ view."""

    q: _View
    k: _View
    scale: float
    softmax: bool = False


@dataclass(eq=False)
class _Region:
    """An MoE layer's routing region: everything downstream of its gate's TopK."""

    topk: onnx.NodeProto
    probs: str
    k: int
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    output: str | None = None
    #: Raw tensor the experts gather tokens from (seen while interpreting the region).
    gathered: str | None = None
    #: Raw tensor the gate reads (the layer input) and the raw tensors of the gate chain
    #: softmax(linear [+ bias]); both set when the region closes.
    source: str = ""
    gate: set[str] = field(default_factory=set)


@dataclass(frozen=True, eq=False)
class _Routed:
    """A tensor computed inside an MoE region (data dependent; not interpreted)."""

    region: _Region


Value = Any  # np.ndarray | _View | _Image | _Moment | _GeluPart | _Scores | _Routed | None
#: An op handler: (node, input values) -> output values.
Handler = Callable[[onnx.NodeProto, list[Value]], list[Value]]


@dataclass(eq=False)
class _Raw:
    """A raw node: one compute step on 2-D tensors; ``origin`` is the ONNX node it came from."""

    op: str
    inputs: list[str]
    output: str
    origin: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def _label(node: onnx.NodeProto) -> str:
    return node.name or f"<unnamed {node.op_type} -> {node.output[0]}>"


def _fail(node: onnx.NodeProto, message: str) -> NoReturn:
    raise CompileError(f"node {_label(node)!r} (op {node.op_type}): {message}")


def _kind(value: Value) -> str:
    """How a value is described in error messages."""
    if isinstance(value, np.ndarray):
        return f"constant{list(value.shape)}"
    if isinstance(value, _View):
        scaled = "" if value.scale == 1.0 else f" scaled by {value.scale:g}"
        return f"activation{list(value.shape)}{scaled}"
    names = {_Image: "the image input", _Moment: "part of a LayerNorm", _GeluPart: "part of a GELU",
             _Scores: "attention scores", _Routed: "an MoE routing value"}
    return names.get(type(value), "nothing")


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _close(value: float, target: float) -> bool:
    return abs(value - target) <= _CONST_RTOL * abs(target)


def _scalar(value: Value) -> float | None:
    """The value of a one-element float constant, else None."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiu":
        return float(value.reshape(-1)[0])
    return None


def _decimal(value: np.ndarray) -> float:
    """A float constant as the shortest decimal that its dtype rounds back to it.

    Exporters store eps (1e-6) as float32 (9.99999997e-07); the shortest round-trip decimal
    recovers the number the model was written with.
    """
    return float(str(value.reshape(-1)[0]))


def _std_idx(shape: tuple[int, ...]) -> np.ndarray:
    """Indices of a tensor laid out row-major over a whole raw tensor."""
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# --------------------------------------------------------------------------------------------
# Pass 1: abstract interpretation
# --------------------------------------------------------------------------------------------


class _Interpreter:
    """Runs the ONNX graph over abstract values, emitting raw nodes (see the module doc)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.opsets = {o.domain or "": o.version for o in model.opset_import}
        self.values: dict[str, Value] = {}
        self.raw: list[_Raw] = []
        self.shapes: dict[str, tuple[int, int]] = {}
        self.producer: dict[str, _Raw] = {}
        self.regions: dict[int, _Region] = {}
        self.onnx_producer: dict[str, onnx.NodeProto] = {}
        self.onnx_users: dict[str, list[onnx.NodeProto]] = {}
        self.order: dict[int, int] = {}
        self.input_src = ""
        self.image: tuple[int, ...] = ()
        self.patch = 0

    # ---- driver ---------------------------------------------------------------------------
    def run(self) -> tuple[list[_Raw], _View]:
        """Interpret every node the output depends on; returns the raw nodes and output view."""
        self._bind_inputs()
        if len(self.graph.output) != 1:
            raise CompileError(f"the graph has {len(self.graph.output)} outputs; expected one "
                               f"(one task per file)")
        nodes = self._live_nodes(self.graph.output[0].name)
        for i, node in enumerate(nodes):
            self.order[id(node)] = i
            for name in node.output:
                self.onnx_producer[name] = node
            for name in node.input:
                self.onnx_users.setdefault(name, []).append(node)
        for node in nodes:
            self._step(node)
        out = self.values.get(self.graph.output[0].name)
        if not isinstance(out, _View):
            raise CompileError(f"graph output {self.graph.output[0].name!r} is "
                               f"{_kind(out)}, not an activation the IR can produce")
        return self.raw, out

    def _bind_inputs(self) -> None:
        """Initializers become constants; the one real input must be a static [1, C, H, W]."""
        for init in self.graph.initializer:
            self.values[init.name] = numpy_helper.to_array(init)
        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise CompileError(f"the graph has {len(inputs)} inputs "
                               f"({', '.join(i.name for i in inputs)}); expected one image input")
        inp = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in inp.type.tensor_type.shape.dim]
        if len(dims) != 4 or not all(isinstance(d, int) and d > 0 for d in dims) or dims[0] != 1:
            raise CompileError(f"input {inp.name!r} has shape {dims}; expected a static "
                               f"[1, C, H, W] (export with a fixed batch of 1, no dynamic axes)")
        self.image = tuple(dims)
        self.values[inp.name] = _Image(tuple(dims))

    def _live_nodes(self, output: str) -> list[onnx.NodeProto]:
        """The nodes the output depends on, in graph (topological) order."""
        producer = {o: n for n in self.graph.node for o in n.output}
        live: set[int] = set()
        stack = [output]
        seen: set[str] = set()
        while stack:
            name = stack.pop()
            if name in seen or name not in producer:
                continue
            seen.add(name)
            node = producer[name]
            live.add(id(node))
            stack.extend(i for i in node.input if i)
        return [n for n in self.graph.node if id(n) in live]

    def _step(self, node: onnx.NodeProto) -> None:
        ins = [self._input(node, name) for name in node.input]
        if all(isinstance(v, np.ndarray) or v is None for v in ins):
            outs = self._evaluate(node, ins)
        elif any(isinstance(v, _Routed) for v in ins):
            outs = self._routed(node, ins)
        else:
            handler = self._handler(node)
            outs = handler(node, ins)
        for name, value in zip(node.output, outs):
            if name:
                self.values[name] = value

    def _input(self, node: onnx.NodeProto, name: str) -> Value:
        if not name:
            return None
        if name not in self.values:
            _fail(node, f"input {name!r} is an output the frontend does not model")
        return self.values[name]

    def _handler(self, node: onnx.NodeProto) -> Handler:
        known = node.domain in ("", "ai.onnx") or (node.domain == "com.microsoft"
                                                   and node.op_type == "Gelu")
        handler = getattr(self, f"_op_{node.op_type}", None)
        if not known or handler is None:
            domain = f" in domain {node.domain!r}" if node.domain else ""
            _fail(node, f"not supported{domain}; supported ops are {', '.join(SUPPORTED_OPS)}")
        return handler

    def _evaluate(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        """Fold a node whose inputs are all constant."""
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            return [numpy_helper.to_array(node.attribute[0].t)]
        feeds = {name: v for name, v in zip(node.input, ins) if name}
        try:
            return list(ReferenceEvaluator(node, opsets=self.opsets).run(None, feeds))
        except Exception as e:  # the reference runtime raises many types
            _fail(node, f"cannot evaluate this constant expression ({type(e).__name__}: {e})")

    # ---- raw nodes --------------------------------------------------------------------------
    def _emit(self, op: str, inputs: list[str], shape: tuple[int, int], node: onnx.NodeProto,
              params: dict[str, np.ndarray] | None = None,
              attrs: dict[str, Any] | None = None) -> str:
        """Append a raw node; returns the name of its new output tensor."""
        out = f"t{len(self.raw)}"
        raw = _Raw(op, inputs, out, _label(node), params or {}, attrs or {})
        self.raw.append(raw)
        self.producer[out] = raw
        self.shapes[out] = (int(shape[0]), int(shape[1]))
        return out

    def _plain(self, node: onnx.NodeProto, v: Value) -> _View:
        """``v`` as an unscaled activation, or fail."""
        if not isinstance(v, _View):
            _fail(node, f"expected an activation, got {_kind(v)}")
        if v.scale != 1.0:
            _fail(node, f"an activation scaled by {v.scale:g} is only supported inside attention "
                        f"scores or a GELU")
        return v

    def _rows(self, node: onnx.NodeProto, v: _View) -> tuple[int, int]:
        """The contiguous block of whole rows ``[start, stop)`` that ``v`` reads, row-major."""
        rows, cols = self.shapes[v.src]
        if v.shape[-1] != cols:
            _fail(node, f"operand {list(v.shape)} does not read whole rows of a "
                        f"[{rows}, {cols}] activation (tokens x channels)")
        flat = v.idx.reshape(-1, cols)
        first = flat[:, 0] // cols
        expected = first[:, None] * cols + np.arange(cols)
        if not np.array_equal(flat, expected) or not np.array_equal(
                first, np.arange(first[0], first[0] + len(first))):
            _fail(node, "operand is not a contiguous block of whole token rows")
        return int(first[0]), int(first[0]) + len(first)

    def _full(self, node: onnx.NodeProto, v: _View) -> str:
        """The raw tensor ``v`` reads whole and in order (row-major); fail otherwise."""
        start, stop = self._rows(node, v)
        if (start, stop) != (0, self.shapes[v.src][0]):
            _fail(node, f"operand covers tokens {start}..{stop - 1} of {self.shapes[v.src][0]}; "
                        f"this op needs all of them")
        return v.src

    def _elementwise(self, node: onnx.NodeProto, v: _View, op: str, const: np.ndarray) -> _View:
        """``v (op) const`` as a raw ``add_const`` / ``mul_const`` with a full-size constant."""
        v = self._plain(node, v)
        shape = np.broadcast_shapes(v.shape, const.shape)
        if shape != v.shape:
            _fail(node, f"constant {list(const.shape)} broadcasts the activation {list(v.shape)}")
        size = int(np.prod(self.shapes[v.src]))
        flat = v.idx.reshape(-1)
        if flat.size != size or not np.array_equal(np.sort(flat), np.arange(size)):
            _fail(node, "the activation operand is not a whole tensor")
        matrix = np.empty(size)
        matrix[flat] = np.broadcast_to(const.astype(np.float64), shape).reshape(-1)
        out = self._emit(op, [v.src], self.shapes[v.src], node,
                         {"c": matrix.reshape(self.shapes[v.src])})
        return _View(out, v.idx)

    def _linear(self, node: onnx.NodeProto, a: Value, w: np.ndarray, b: np.ndarray | None) -> _View:
        """``a @ w + b`` over the rows ``a`` reads."""
        a = self._plain(node, a)
        if w.ndim != 2 or w.shape[0] != a.shape[-1]:
            _fail(node, f"weight {list(w.shape)} does not fit the activation {list(a.shape)}")
        start, stop = self._rows(node, a)
        src = a.src
        if (start, stop) != (0, self.shapes[src][0]):
            src = self._emit("rows", [src], (stop - start, self.shapes[src][1]), node,
                             attrs={"rows": (start, stop)})
        n_out = w.shape[1]
        bias = np.zeros(n_out) if b is None else np.broadcast_to(b.astype(np.float64), (n_out,))
        out = self._emit("linear", [src], (stop - start, n_out), node,
                         {"w": w.astype(np.float64), "b": bias.copy()})
        return _View(out, _std_idx(a.shape[:-1] + (n_out,)))

    # ---- layout ops --------------------------------------------------------------------------
    def _layout(self, node: onnx.NodeProto, ins: list[Value]) -> list[np.ndarray]:
        """Apply a layout op to index arrays: what it does to ``ins[0]``'s element positions."""
        x = ins[0].idx
        op = node.op_type
        if op in ("Identity", "Cast"):
            return [x]
        if op == "Reshape":
            shape = [int(s) for s in self._const(node, ins, 1)]
            if not _attr(node, "allowzero", 0):
                shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
            return [x.reshape(shape)]
        if op == "Flatten":
            axis = _axis(_attr(node, "axis", 1), x.ndim)
            return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
        if op == "Transpose":
            return [x.transpose(_attr(node, "perm", list(range(x.ndim))[::-1]))]
        if op == "Squeeze":
            axes = self._axes(node, ins, 1)
            return [np.squeeze(x, axis=None if axes is None
                               else tuple(_axis(a, x.ndim) for a in axes))]
        if op == "Unsqueeze":
            rank = x.ndim + len(self._const(node, ins, 1))
            for a in sorted(_axis(int(a), rank) for a in self._const(node, ins, 1)):
                x = np.expand_dims(x, a)
            return [x]
        if op == "Gather":
            return [np.take(x, self._const(node, ins, 1), axis=_attr(node, "axis", 0))]
        if op == "Slice":
            return [self._slice(node, ins, x)]
        if op == "Split":
            return self._split(node, ins, x)
        if op == "Expand":
            shape = np.broadcast_shapes(x.shape, tuple(self._const(node, ins, 1)))
            return [np.broadcast_to(x, shape)]
        raise AssertionError(op)

    def _const(self, node: onnx.NodeProto, ins: list[Value], i: int) -> np.ndarray:
        if i >= len(ins) or not isinstance(ins[i], np.ndarray):
            _fail(node, f"input {i} must be a constant (static shapes, batch 1)")
        return ins[i]

    def _axes(self, node: onnx.NodeProto, ins: list[Value], i: int) -> list[int] | None:
        """Axes from input ``i`` (opset >= 13/18) or the ``axes`` attribute."""
        if i < len(ins) and ins[i] is not None:
            return [int(a) for a in self._const(node, ins, i)]
        axes = _attr(node, "axes")
        return None if axes is None else list(axes)

    def _slice(self, node: onnx.NodeProto, ins: list[Value], x: np.ndarray) -> np.ndarray:
        starts, ends = self._const(node, ins, 1), self._const(node, ins, 2)
        axes = self._axes(node, ins, 3) or list(range(len(starts)))
        has_steps = len(ins) > 4 and ins[4] is not None
        steps = self._const(node, ins, 4) if has_steps else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for a, s, e, st in zip(axes, starts, ends, steps):
            index[_axis(int(a), x.ndim)] = slice(int(s), int(e), int(st))
        return x[tuple(index)]

    def _split(self, node: onnx.NodeProto, ins: list[Value], x: np.ndarray) -> list[np.ndarray]:
        axis = _axis(_attr(node, "axis", 0), x.ndim)
        if len(ins) > 1 and ins[1] is not None:
            sizes = [int(s) for s in self._const(node, ins, 1)]
        else:
            parts = _attr(node, "num_outputs", len(node.output))
            step = -(-x.shape[axis] // parts)
            sizes = [min(step, x.shape[axis] - i * step) for i in range(parts)]
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)

    def _layout_op(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        view = ins[0]
        if not isinstance(view, _View):
            _fail(node, f"expected an activation as data, got {_kind(view)}")
        return [view.relaid(idx) for idx in self._layout(node, ins)]

    _op_Reshape = _op_Flatten = _op_Transpose = _op_Squeeze = _op_Unsqueeze = _layout_op
    _op_Gather = _op_Slice = _op_Split = _op_Expand = _op_Identity = _layout_op

    def _op_Cast(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        if _attr(node, "to") not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                     onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            _fail(node, "only casts between float types are supported on activations")
        return self._layout_op(node, ins)

    def _op_Shape(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        shape = self._shape(node, ins[0])
        start, end = _attr(node, "start", 0), _attr(node, "end", len(shape))
        return [np.array(shape[start:end], dtype=np.int64)]

    def _op_Size(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        return [np.array(int(np.prod(self._shape(node, ins[0]))), dtype=np.int64)]

    def _shape(self, node: onnx.NodeProto, v: Value) -> tuple[int, ...]:
        if not isinstance(v, (_View, _Image)):
            _fail(node, f"the shape of {_kind(v)} is not known")
        return v.shape

    # ---- patch embedding, embedding ----------------------------------------------------------
    def _op_Conv(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        """Conv with kernel = stride = patch on the image: the patch embedding."""
        if not isinstance(ins[0], _Image) or self.input_src:
            _fail(node, "only one Conv, the patch embedding of the image input, is supported")
        w = self._const(node, ins, 1)
        d, c, p, q = w.shape
        _, ci, h, wd = self.image
        conv_ok = (p == q and c == ci and list(_attr(node, "strides", [1, 1])) == [p, p]
                   and not any(_attr(node, "pads", [0] * 4))
                   and all(v == 1 for v in _attr(node, "dilations", [1, 1]))
                   and _attr(node, "group", 1) == 1 and _attr(node, "auto_pad", "NOTSET")
                   in ("NOTSET", "VALID"))
        if not conv_ok:
            _fail(node, "the patch embedding must be a square Conv with stride = kernel, "
                        "no padding, no dilation, one group")
        if h % p or wd % p:
            _fail(node, f"image {h}x{wd} is not a whole number of {p}x{p} patches")
        gh, gw = h // p, wd // p
        self.input_src = _Parser.INPUT
        self.shapes[_Parser.INPUT] = (gh * gw, c * p * p)
        self.patch = p
        bias = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros(d)
        out = self._emit("linear", [_Parser.INPUT], (gh * gw, d), node,
                         {"w": w.astype(np.float64).reshape(d, -1).T.copy(),
                          "b": bias.astype(np.float64)})
        idx = np.arange(gh * gw * d).reshape(gh, gw, d).transpose(2, 0, 1)[None]
        return [_View(out, idx)]

    def _op_Concat(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        """[class token constant, patch tokens] along the token axis: the embedding."""
        if len(ins) != 2 or not isinstance(ins[0], np.ndarray) or not isinstance(ins[1], _View):
            _fail(node, "only the class token concatenation [constant, activation] is supported")
        cls, x = ins[0], self._plain(node, ins[1])
        axis = _axis(_attr(node, "axis"), len(x.shape))
        src = self._full(node, x)
        rows, d = self.shapes[src]
        in_order = np.array_equal(x.idx, _std_idx(x.shape))
        if axis != len(x.shape) - 2 or cls.size != d or not in_order:
            _fail(node, f"expected one class token of {d} channels prepended on the token axis")
        out = self._emit("embed", [src], (rows + 1, d), node,
                         {"cls": cls.astype(np.float64).reshape(d), "pos": np.zeros((rows + 1, d))})
        shape = list(x.shape)
        shape[axis] += 1
        return [_View(out, _std_idx(tuple(shape)))]

    # ---- linear layers -----------------------------------------------------------------------
    def _op_MatMul(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        a, b = ins
        if isinstance(a, _View) and isinstance(b, np.ndarray):
            return [self._linear(node, a, b, None)]
        if isinstance(a, _View) and isinstance(b, _View):
            return [self._scores(node, a, b)]
        if isinstance(a, _Scores) and a.softmax and isinstance(b, _View):
            return [self._attention(node, a, b)]
        _fail(node, f"unsupported operands {_kind(a)} @ {_kind(b)}; supported: activation @ "
                    f"constant weight, and the q @ kᵀ, softmax @ v products of attention")

    def _op_Gemm(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        a = ins[0]
        if _attr(node, "transA", 0) or not isinstance(a, _View) or len(a.shape) != 2:
            _fail(node, "Gemm is supported as a linear layer: 2-D activation (not transposed) "
                        "times a constant weight")
        w = self._const(node, ins, 1)
        w = w.T if _attr(node, "transB", 0) else w
        alpha, beta = _attr(node, "alpha", 1.0), _attr(node, "beta", 1.0)
        if alpha != 1.0:
            w = w.astype(np.float64) * alpha
        c = self._const(node, ins, 2) if len(ins) > 2 and ins[2] is not None else None
        if c is not None and beta != 1.0:
            c = c.astype(np.float64) * beta
        if c is not None and c.size not in (1, w.shape[1]):
            _fail(node, f"bias {list(c.shape)} is not one value per output channel")
        return [self._linear(node, a, w, None if c is None else c.reshape(-1))]

    # ---- attention ---------------------------------------------------------------------------
    def _scores(self, node: onnx.NodeProto, q: _View, k: _View) -> _Scores:
        lead_ok = q.shape[:-2] == k.shape[:-2] and len(q.shape) >= 2
        if not lead_ok or q.shape[-1] != k.shape[-2] or q.shape[-2] != k.shape[-1]:
            _fail(node, f"activation @ activation is supported only as attention scores "
                        f"q[..., N, d] @ kᵀ[..., d, N]; got {list(q.shape)} @ {list(k.shape)}")
        return _Scores(q, k, q.scale * k.scale)

    def _attention(self, node: onnx.NodeProto, s: _Scores, v: _View) -> _View:
        """softmax(scale q kᵀ) v: one raw attention node reading head columns of q, k, v."""
        v = self._plain(node, v)
        if v.shape != s.q.shape:
            _fail(node, f"values {list(v.shape)} do not match queries {list(s.q.shape)}")
        lead, (n, dh) = s.q.shape[:-2], s.q.shape[-2:]
        heads = int(np.prod(lead))
        if not _close(s.scale, 1.0 / math.sqrt(dh)):
            _fail(node, f"attention scale {s.scale:g} is not 1/sqrt(head_dim) = "
                        f"{1 / math.sqrt(dh):g}, the only scale the accelerator supports")
        cols = [self._head_columns(node, view, idx, n)
                for view, idx in ((s.q, s.q.idx), (s.k, np.swapaxes(s.k.idx, -1, -2)), (v, v.idx))]
        srcs = [s.q.src, s.k.src, v.src]
        out = self._emit("attention", srcs, (n, heads * dh), node,
                         attrs={"heads": heads, "cols": tuple(cols)})
        idx = np.arange(n * heads * dh).reshape(n, heads, dh).transpose(1, 0, 2)
        return _View(out, idx.reshape(lead + (n, dh)))

    def _head_columns(self, node: onnx.NodeProto, view: _View, idx: np.ndarray,
                      n: int) -> np.ndarray:
        """[heads, head_dim] source columns of q, k or v; token i must be source row i."""
        rows, cols = self.shapes[view.src]
        per_head = idx.reshape(-1, n, idx.shape[-1])
        columns = per_head[:, 0, :] % cols
        expected = np.arange(n)[None, :, None] * cols + columns[:, None, :]
        if rows != n or not np.array_equal(per_head, expected):
            _fail(node, "attention heads must read every token of their q/k/v projection "
                        "in order, each head a set of channels")
        return columns

    # ---- elementwise arithmetic --------------------------------------------------------------
    def _op_Add(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        a, b = ins
        if isinstance(a, np.ndarray):
            a, b = b, a
        if isinstance(a, _View) and isinstance(b, _View):
            return [self._add(node, a, b)]
        if isinstance(a, _View) and isinstance(b, np.ndarray):
            return [self._elementwise(node, a, "add_const", b)]
        one = _scalar(b)
        if isinstance(a, _GeluPart) and not a.plus_one and not a.has_x and one is not None \
                and _close(one, 1.0):
            return [_GeluPart(a.x, a.coef, False, True)]
        if isinstance(a, _Moment) and a.stage == "var" and one is not None:
            return [_Moment(a.x, "var_eps", _decimal(b))]
        _fail(node, f"unsupported operands {_kind(a)} + {_kind(b)}")

    def _add(self, node: onnx.NodeProto, a: _View, b: _View) -> _View:
        """Sum of two whole activations in the same layout (residual connections)."""
        a, b = self._plain(node, a), self._plain(node, b)
        same_layout = a.shape == b.shape and np.array_equal(a.idx, b.idx)
        if not same_layout or self.shapes[a.src] != self.shapes[b.src]:
            _fail(node, f"the activations {list(a.shape)} and {list(b.shape)} are not "
                        f"laid out alike")
        srcs = [self._full(node, a), self._full(node, b)]
        out = self._emit("add", srcs, self.shapes[a.src], node)
        return _View(out, a.idx)

    def _op_Sub(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        x, m = ins
        if isinstance(m, _Moment) and m.stage == "mean" and m.x.same(x):
            return [_Moment(m.x, "centered")]
        _fail(node, f"unsupported operands {_kind(x)} - {_kind(m)}; supported: x - mean(x) "
                    f"of a LayerNorm")

    def _op_Mul(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        a, b = ins
        if isinstance(a, np.ndarray) or (isinstance(a, _View) and isinstance(b, _GeluPart)):
            a, b = b, a
        c = _scalar(b)
        if c is not None:
            return [self._scaled(node, a, c)]
        if isinstance(a, _View) and isinstance(b, np.ndarray):
            return [self._elementwise(node, a, "mul_const", b)]
        if isinstance(a, _Moment) and isinstance(b, _Moment) and a.x.same(b.x):
            stages = {a.stage, b.stage}
            if stages == {"centered"}:
                return [_Moment(a.x, "sqdev")]
            if stages == {"centered", "inv_std"}:
                return [self._layernorm_of(node, a if a.stage == "inv_std" else b)]
        if isinstance(a, _GeluPart) and isinstance(b, _View) and a.plus_one and not a.has_x \
                and a.x.same(b):
            return [self._gelu_part(node, _GeluPart(a.x, a.coef * b.scale, True, True))]
        _fail(node, f"unsupported operands {_kind(a)} * {_kind(b)}")

    def _scaled(self, node: onnx.NodeProto, v: Value, c: float) -> Value:
        """``v * c`` for a scalar constant: pending on views, scores and GELU parts."""
        if isinstance(v, _View):
            return _View(v.src, v.idx, v.scale * c)
        if isinstance(v, _Scores) and not v.softmax:
            return _Scores(v.q, v.k, v.scale * c)
        if isinstance(v, _GeluPart):
            return self._gelu_part(node, _GeluPart(v.x, v.coef * c, v.has_x, v.plus_one))
        _fail(node, f"cannot scale {_kind(v)}")

    def _op_Div(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        a, b = ins
        c = _scalar(b)
        if c is not None and c != 0.0:
            return [self._scaled(node, a, 1.0 / c)]
        if isinstance(a, _Moment) and isinstance(b, _Moment) and a.stage == "centered" \
                and b.stage == "std" and a.x.same(b.x):
            return [self._layernorm_of(node, b)]
        _fail(node, f"unsupported operands {_kind(a)} / {_kind(b)}")

    # ---- GELU --------------------------------------------------------------------------------
    def _op_Erf(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        x = ins[0]
        if not isinstance(x, _View) or not _close(x.scale, 1.0 / math.sqrt(2.0)):
            _fail(node, f"Erf is supported only as GELU's erf(x / sqrt(2)); got erf of {_kind(x)}")
        return [_GeluPart(_View(x.src, x.idx), 1.0, False, False)]

    def _gelu_part(self, node: onnx.NodeProto, part: _GeluPart) -> Value:
        """A GELU part, or the GELU itself once it is 0.5 · x · (1 + erf(x/√2))."""
        if part.has_x and part.plus_one and _close(part.coef, 0.5):
            return self._gelu(node, part.x)
        return part

    def _gelu(self, node: onnx.NodeProto, x: _View) -> _View:
        src = self._full(node, self._plain(node, x))
        return _View(self._emit("gelu", [src], self.shapes[src], node), x.idx)

    def _op_Gelu(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        if _attr(node, "approximate", "none") != "none":
            _fail(node, "only the exact (erf) GELU is supported, not approximate='tanh'")
        return [self._gelu(node, ins[0])]

    # ---- LayerNorm ---------------------------------------------------------------------------
    def _op_LayerNormalization(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        x = self._plain(node, ins[0])
        if _axis(_attr(node, "axis", -1), len(x.shape)) != len(x.shape) - 1:
            _fail(node, "LayerNorm must normalise the last (channel) axis only")
        d = x.shape[-1]
        gamma = self._const(node, ins, 1)
        beta = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros(d)
        eps = _decimal(np.array(_attr(node, "epsilon", 1e-5), dtype=np.float32))
        gamma, beta = np.broadcast_to(gamma, (d,)), np.broadcast_to(beta, (d,))
        return [self._layernorm(node, x, gamma, beta, eps)]

    def _layernorm(self, node: onnx.NodeProto, x: _View, gamma: np.ndarray, beta: np.ndarray,
                   eps: float) -> _View:
        src = self._full(node, x)
        out = self._emit("layernorm", [src], self.shapes[src], node,
                         {"gamma": gamma.astype(np.float64), "beta": beta.astype(np.float64)},
                         {"eps": eps})
        return _View(out, x.idx)

    def _layernorm_of(self, node: onnx.NodeProto, m: _Moment) -> _View:
        d = m.x.shape[-1]
        return self._layernorm(node, m.x, np.ones(d), np.zeros(d), m.eps)

    def _op_ReduceMean(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        x = ins[0]
        base = x.x if isinstance(x, _Moment) else x
        if not isinstance(base, _View) or not _attr(node, "keepdims", 1):
            _fail(node, f"ReduceMean is supported only inside a LayerNorm, got {_kind(x)}")
        rank = len(base.shape)
        axes = self._axes(node, ins, 1)
        if axes is None or [_axis(a, rank) for a in axes] != [rank - 1]:
            _fail(node, f"ReduceMean over axes {axes} is not supported; only a LayerNorm's "
                        f"mean over the last (channel) axis")
        if isinstance(x, _View):
            return [_Moment(self._plain(node, x), "mean")]
        if x.stage == "sqdev":
            return [_Moment(x.x, "var")]
        _fail(node, f"unexpected mean of {x.stage} inside a LayerNorm")

    def _moment_step(self, node: onnx.NodeProto, ins: list[Value], before: str,
                     after: str) -> list[Value]:
        m = ins[0]
        if not isinstance(m, _Moment) or m.stage != before:
            _fail(node, f"supported only inside a LayerNorm decomposition, got {_kind(m)}")
        return [_Moment(m.x, after, m.eps)]

    def _op_Pow(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        exponent = _scalar(ins[1])
        if exponent != 2.0:
            _fail(node, "Pow is supported only as the square (x - mean)^2 of a LayerNorm")
        return self._moment_step(node, ins, "centered", "sqdev")

    def _op_Sqrt(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        return self._moment_step(node, ins, "var_eps", "std")

    def _op_Reciprocal(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        return self._moment_step(node, ins, "std", "inv_std")

    # ---- softmax, MoE ------------------------------------------------------------------------
    def _op_Softmax(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        x = ins[0]
        rank = len(x.q.shape) if isinstance(x, _Scores) else len(getattr(x, "shape", ()))
        if _axis(_attr(node, "axis", -1), rank) != rank - 1:
            _fail(node, "Softmax must be over the last axis")
        if isinstance(x, _Scores) and not x.softmax:
            return [_Scores(x.q, x.k, x.scale, True)]
        src = self._full(node, self._plain(node, x))
        return [_View(self._emit("softmax", [src], self.shapes[src], node), x.idx)]

    def _op_TopK(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        """Top-k of softmax probabilities: the routing of an MoE layer starts here."""
        probs = ins[0]
        rank = len(getattr(probs, "shape", ()))
        producer = self.producer.get(probs.src) if isinstance(probs, _View) else None
        if producer is None or producer.op != "softmax" or probs.scale != 1.0:
            _fail(node, f"TopK is supported only on the softmax of an MoE gate, got {_kind(probs)}")
        if _axis(_attr(node, "axis", -1), rank) != rank - 1 or not _attr(node, "largest", 1):
            _fail(node, "an MoE gate's TopK must take the largest values over the last axis")
        k = int(self._const(node, ins, 1).reshape(-1)[0])
        region = _Region(node, probs.src, k)
        return [_Routed(region), _Routed(region)]

    def _routed(self, node: onnx.NodeProto, ins: list[Value]) -> list[Value]:
        """A node reading routing values: part of the region, or the residual add closing it."""
        regions = {id(v.region): v.region for v in ins if isinstance(v, _Routed)}
        if len(regions) != 1:
            _fail(node, "mixes the routing of two MoE layers")
        region = next(iter(regions.values()))
        views = [v for v in ins if isinstance(v, _View)]
        if node.op_type == "Add" and len(ins) == 2 and len(views) == 1:
            routed = node.input[0] if isinstance(ins[0], _Routed) else node.input[1]
            return [self._close_region(node, region, routed, views[0])]
        if node.op_type not in _REGION_OPS:
            _fail(node, f"not supported inside a Mixture-of-Experts layer; supported there: "
                        f"{', '.join(sorted(_REGION_OPS))}")
        if node.op_type in ("Gather", "GatherND") and isinstance(ins[0], _View):
            region.gathered = region.gathered or ins[0].src
        region.nodes.append(node)
        return [_Routed(region)] * len(node.output)

    def _close_region(self, node: onnx.NodeProto, region: _Region, routed: str,
                      residual: _View) -> _View:
        """``residual + region output``: emit the raw moe node (experts found structurally)."""
        if region.output is not None:
            _fail(node, f"the MoE layer of TopK {_label(region.topk)!r} has a second output")
        region.output = routed
        self._gate_chain(region)
        src = region.source
        rows, cols = self.shapes[src]
        if residual.idx.size != rows * cols:
            _fail(node, f"the MoE output does not match the residual {list(residual.shape)}")
        params = self._experts(region, src)
        out = self._emit("moe", [src, region.probs], (rows, cols), region.topk, params,
                         {"k": region.k})
        self.regions[id(self.raw[-1])] = region
        return self._add(node, residual, _View(out, _std_idx(residual.shape)))

    def _gate_chain(self, region: _Region) -> None:
        """Find the gate, softmax(linear(x) [+ bias]), and the tensor x it reads."""
        tensor = self.producer[region.probs].inputs[0]
        region.gate = {region.probs}
        while True:
            region.gate.add(tensor)
            node = self.producer[tensor]
            if node.op != "add_const":
                break
            tensor = node.inputs[0]
        if node.op != "linear" or node.attrs:
            _fail(region.topk, "the MoE gate must be softmax(linear(x))")
        region.source = node.inputs[0]
        if region.gathered not in (None, region.source):
            _fail(region.topk, "the experts do not read the tokens the gate reads")

    def _experts(self, region: _Region, src: str) -> dict[str, np.ndarray]:
        """Stacked expert weights: each expert is gather(x) -> dense -> ... -> dense."""
        members = {id(n) for n in region.nodes}
        found: dict[int, list[np.ndarray]] = {}
        for gather in region.nodes:
            data = self.values.get(gather.input[0])
            if gather.op_type not in ("Gather", "GatherND") or not (
                    isinstance(data, _View) and data.src == src):
                continue
            fc1 = self._next_dense(gather.output[0], members, gather)
            w1, b1, hidden = self._dense_params(fc1)
            fc2 = self._next_dense(hidden, members, fc1)
            w2, b2, _ = self._dense_params(fc2)
            e = self._expert_id(gather, members)
            if e in found:
                _fail(gather, f"expert {e} is gathered twice")
            found[e] = [w1, b1, w2, b2]
        if sorted(found) != list(range(len(found))) or not found:
            _fail(region.topk, f"the MoE layer's experts must be 0..E-1, found {sorted(found)}")
        stacked = [np.stack([found[e][i] for e in range(len(found))]) for i in range(4)]
        if any(len({a.shape for a in (found[e][i] for e in found)}) != 1 for i in range(4)):
            _fail(region.topk, "the experts of one MoE layer differ in shape")
        return dict(zip(("w1", "b1", "w2", "b2"), stacked))

    def _next_dense(self, tensor: str, members: set[int], after: onnx.NodeProto) -> onnx.NodeProto:
        """The first MatMul/Gemm with a constant weight downstream of ``tensor`` in the region."""
        frontier, seen = [tensor], {tensor}
        while frontier:
            nxt = []
            for name in frontier:
                for user in self.onnx_users.get(name, []):
                    if id(user) not in members:
                        continue
                    if user.op_type in ("MatMul", "Gemm") and isinstance(
                            self.values.get(user.input[1]), np.ndarray):
                        return user
                    nxt += [o for o in user.output if o not in seen]
                    seen.update(user.output)
            frontier = nxt
        _fail(after, "no expert linear layer follows this node in the MoE layer")

    def _dense_params(self, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray, str]:
        """(w [in, out], b [out], output tensor) of a Gemm, or a MatMul plus its bias Add."""
        w = self.values[node.input[1]].astype(np.float64)
        if node.op_type == "Gemm":
            if _attr(node, "transA", 0):
                _fail(node, "a transposed expert input is not supported")
            w = (w.T if _attr(node, "transB", 0) else w) * _attr(node, "alpha", 1.0)
            c = self.values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            b = np.zeros(w.shape[1]) if c is None else np.broadcast_to(
                c.astype(np.float64) * _attr(node, "beta", 1.0), (w.shape[1],)).copy()
            return w, b, node.output[0]
        users = self.onnx_users.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "Add":
            other = [i for i in users[0].input if i != node.output[0]]
            bias = self.values.get(other[0]) if len(other) == 1 else None
            if isinstance(bias, np.ndarray) and bias.size == w.shape[1]:
                return w, bias.astype(np.float64).reshape(-1), users[0].output[0]
        return w, np.zeros(w.shape[1]), node.output[0]

    def _expert_id(self, gather: onnx.NodeProto, members: set[int]) -> int:
        """The ``e`` of the ``Equal(expert indices, e)`` that selects this gather's tokens."""
        ids: set[int] = set()
        stack, seen = [gather.input[1]], set()
        while stack:
            name = stack.pop()
            node = self.onnx_producer.get(name)
            if name in seen or node is None or id(node) not in members:
                continue
            seen.add(name)
            if node.op_type == "Equal":
                ids.update(int(v.reshape(-1)[0]) for v in (self.values.get(i) for i in node.input)
                           if isinstance(v, np.ndarray) and v.size == 1)
            stack.extend(node.input)
        if len(ids) != 1:
            _fail(gather, f"cannot tell which expert this gather serves "
                          f"(Equal constants {sorted(ids)})")
        return ids.pop()

    # ---- MoE check ---------------------------------------------------------------------------
    def verify_moe(self, node: _Raw) -> None:
        """Run the ONNX routing region on random tokens and compare with the IR moe node."""
        region = self.regions[id(node)]
        if "gate_w" not in node.params:
            _fail(region.topk, "the MoE gate could not be matched as softmax(linear(x))")
        submodel, feeds_idx = self._region_model(region)
        rows, cols = self.shapes[node.inputs[0]]
        x = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
        feeds = {name: x.reshape(-1)[idx] for name, idx in feeds_idx.items()}
        try:
            got = ReferenceEvaluator(submodel).run(None, feeds)[0]
        except Exception as e:  # the reference runtime raises many types
            _fail(region.topk, f"cannot evaluate the MoE layer ({type(e).__name__}: {e})")
        got = np.asarray(got, dtype=np.float64).reshape(rows, cols)
        ir = Node("moe", "check", ["x", "r"], "y", node.params, {"k": node.attrs["k"]})
        want = run_node(ir, [x.astype(np.float64), np.zeros((rows, cols))])
        err = float(np.abs(got - want).max())
        if not err <= _MOE_RTOL * max(1.0, float(np.abs(want).max())):
            _fail(region.topk, f"the MoE layer does not compute the IR moe semantics "
                               f"(top-{region.k} softmax scores, not renormalised, experts "
                               f"fc1 -> GELU -> fc2): max deviation {err:.3g} on random tokens")

    def _region_model(self, region: _Region) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
        """The ONNX nodes from the MoE input to its output as a model of its own."""
        src, gate = region.source, region.gate
        feeds: dict[str, np.ndarray] = {}
        inits: dict[str, np.ndarray] = {}
        nodes: dict[int, onnx.NodeProto] = {}
        stack = [region.output]
        while stack:
            name = stack.pop()
            value = self.values.get(name)
            if not name or name in feeds or name in inits:
                continue
            if isinstance(value, np.ndarray):
                inits[name] = value
            elif isinstance(value, _View) and value.src == src:
                feeds[name] = value.idx
            elif isinstance(value, _Routed) or (isinstance(value, _View) and value.src in gate):
                producer = self.onnx_producer[name]
                if id(producer) not in nodes:
                    nodes[id(producer)] = producer
                    stack.extend(producer.input)
            else:
                _fail(region.topk, f"the MoE layer reads {name!r} ({_kind(value)}), which is "
                                   f"neither its input tokens nor its routing")
        ordered = sorted(nodes.values(), key=lambda n: self.order[id(n)])
        graph = helper.make_graph(
            ordered, "moe_region",
            [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, idx.shape)
             for n, idx in feeds.items()],
            [helper.make_tensor_value_info(region.output, onnx.TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v, n) for n, v in inits.items()])
        return helper.make_model(graph, opset_imports=list(self.model.opset_import)), feeds


# --------------------------------------------------------------------------------------------
# Pass 2: fusion
# --------------------------------------------------------------------------------------------


def _fuse(raw: list[_Raw]) -> None:
    """Fold raw nodes into their neighbours until nothing changes (see the module doc)."""
    rules = (_fold_const_add, _fold_const_mul, _fold_gelu, _fold_rows, _fold_gate, _fold_qkv,
             _fold_residual)
    changed = True
    while changed:
        changed = False
        users: dict[str, list[_Raw]] = {}
        for n in raw:
            for i in n.inputs:
                users.setdefault(i, []).append(n)
        producer = {n.output: n for n in raw}
        for n in list(raw):
            if any(rule(n, raw, users, producer) for rule in rules):
                changed = True
                break


Users = dict[str, list[_Raw]]
Producers = dict[str, _Raw]


def _sole_producer(n: _Raw, i: int, users: Users, producer: Producers) -> _Raw | None:
    """The producer of ``n.inputs[i]`` if ``n`` is its only user."""
    p = producer.get(n.inputs[i])
    return p if p is not None and len(users[p.output]) == 1 else None


def _bare_linear(p: _Raw | None) -> bool:
    """A linear with nothing fused after its bias yet (no GELU, no residual)."""
    return p is not None and p.op == "linear" and len(p.inputs) == 1 and not p.attrs.get("gelu")


def _absorb(raw: list[_Raw], p: _Raw, n: _Raw) -> bool:
    """``p`` takes over ``n``'s output; ``n`` disappears."""
    p.output = n.output
    raw.remove(n)
    return True


def _row_constant(c: np.ndarray) -> bool:
    return bool(np.all(c == c[:1]))


def _fold_const_add(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    """Bias into a linear or LayerNorm, position embedding into the embedding."""
    if n.op != "add_const":
        return False
    p, c = _sole_producer(n, 0, users, producer), n.params["c"]
    if p is not None and p.op == "embed":
        p.params["pos"] = p.params["pos"] + c
        return _absorb(raw, p, n)
    if not _row_constant(c):
        return False
    if _bare_linear(p):
        p.params["b"] = p.params["b"] + c[0]
        return _absorb(raw, p, n)
    if p is not None and p.op == "layernorm":
        p.params["beta"] = p.params["beta"] + c[0]
        return _absorb(raw, p, n)
    return False


def _fold_const_mul(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    """A per-channel gain after a LayerNorm into its gamma (and beta)."""
    p = _sole_producer(n, 0, users, producer) if n.op == "mul_const" else None
    if p is None or p.op != "layernorm" or not _row_constant(n.params["c"]):
        return False
    p.params["gamma"] = p.params["gamma"] * n.params["c"][0]
    p.params["beta"] = p.params["beta"] * n.params["c"][0]
    return _absorb(raw, p, n)


def _fold_gelu(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    p = _sole_producer(n, 0, users, producer) if n.op == "gelu" else None
    if not _bare_linear(p):
        return False
    p.attrs["gelu"] = True
    return _absorb(raw, p, n)


def _fold_rows(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    """A row selection into the linear that reads it (task heads)."""
    p = producer.get(n.inputs[0]) if n.op == "linear" and "rows" not in n.attrs else None
    if p is None or p.op != "rows":
        return False
    n.attrs["rows"] = p.attrs["rows"]
    n.inputs[0] = p.inputs[0]
    if len(users[p.output]) == 1:
        raw.remove(p)
    return True


def _fold_gate(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    """moe(x, softmax(linear(x))) -> moe(x) with the gate's weights."""
    if n.op != "moe" or len(n.inputs) != 2:
        return False
    soft = _sole_producer(n, 1, users, producer)
    is_softmax = soft is not None and soft.op == "softmax"
    gate = _sole_producer(soft, 0, users, producer) if is_softmax else None
    if not (_bare_linear(gate) and "rows" not in gate.attrs and gate.inputs[0] == n.inputs[0]):
        return False
    n.params.update(gate_w=gate.params["w"], gate_b=gate.params["b"])
    n.inputs.pop()
    raw.remove(soft)
    raw.remove(gate)
    return True


def _fold_qkv(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    """Attention reading head columns of up to three linears -> one fused [q | k | v] linear."""
    if n.op != "attention" or "cols" not in n.attrs:
        return False
    sources = [producer.get(s) for s in n.inputs]
    if not all(_bare_linear(p) for p in sources):
        return False
    first = sources[0]
    if any(p.inputs != first.inputs or p.attrs.get("rows") != first.attrs.get("rows")
           or any(u is not n for u in users[p.output]) for p in sources):
        return False
    cols = n.attrs["cols"]
    w = np.concatenate([p.params["w"][:, c.reshape(-1)] for p, c in zip(sources, cols)], axis=1)
    b = np.concatenate([p.params["b"][c.reshape(-1)] for p, c in zip(sources, cols)])
    fused = _Raw("linear", list(first.inputs), f"{n.output}.qkv", first.origin, {"w": w, "b": b},
                dict(first.attrs))
    for p in {id(p): p for p in sources}.values():
        raw.remove(p)
    raw.insert(raw.index(n), fused)
    n.inputs = [fused.output]
    n.attrs = {"heads": n.attrs["heads"], "dim": w.shape[1] // 3}
    return True


def _fold_residual(n: _Raw, raw: list[_Raw], users: Users, producer: Producers) -> bool:
    """x + branch -> branch(..., residual=x) when the branch is a linear or a gated moe.

    The branch is the operand computed last (pre-norm blocks add a branch to an older stream).
    """
    if n.op != "add":
        return False
    candidates = []
    for i in (0, 1):
        p = _sole_producer(n, i, users, producer)
        if _bare_linear(p) or (p is not None and p.op == "moe" and len(p.inputs) == 1
                               and "gate_w" in p.params):
            candidates.append((raw.index(p), p, n.inputs[1 - i]))
    if not candidates:
        return False
    _, branch, stream = max(candidates, key=lambda c: c[0])
    branch.inputs.append(stream)
    return _absorb(raw, branch, n)


# --------------------------------------------------------------------------------------------
# Pass 3: ViT structure and canonical names
# --------------------------------------------------------------------------------------------


@dataclass
class _Facts:
    """What the structure says about the model config."""

    dim: int = 0
    heads: list[int] = field(default_factory=list)
    mlp_hidden: list[int] = field(default_factory=list)
    experts: list[tuple[int, int, int]] = field(default_factory=list)  # (E, hidden, k)
    moe_blocks: list[int] = field(default_factory=list)
    eps: list[float] = field(default_factory=list)
    depth: int = 0
    channels: int = 0


class _Parser:
    """Walks the fused raw graph from the input as a pre-norm ViT, naming nodes canonically."""

    INPUT = "patches"

    def __init__(self, raw: list[_Raw], input_src: str, output: _View, task: str,
                 shapes: dict[str, tuple[int, int]]) -> None:
        self.raw = raw
        self.shapes = shapes
        self.input_src = input_src
        self.output = output
        self.task = task
        self.users: dict[str, list[_Raw]] = {}
        for n in raw:
            for i in n.inputs:
                self.users.setdefault(i, []).append(n)
        self.names: dict[str, str] = {input_src: self.INPUT}
        self.done: set[int] = set()
        self.nodes: list[Node] = []
        self.facts = _Facts()

    def parse(self) -> tuple[list[Node], _Facts]:
        if not self.input_src:
            raise CompileError("the graph has no patch embedding (a Conv on the image input)")
        patch = self._take(self.input_src, "linear", "the patch embedding")
        self._emit(patch, "patch_embed", "patch_tokens")
        embed = self._take(patch.output, "embed", "the class token + position embedding")
        self._emit(embed, "embed", "x0")
        x = embed.output
        while True:
            ln = self._take(x, "layernorm", f"the LayerNorm starting block {self.facts.depth} "
                                            f"(or the final LayerNorm)")
            nxt = self.users.get(ln.output, [])
            if len(nxt) == 1 and nxt[0].op == "linear" and any(
                    u.op == "attention" for u in self.users.get(nxt[0].output, [])):
                x = self._block(x, ln)
            else:
                break
        self._head(ln)
        left = [n for n in self.raw if id(n) not in self.done]
        if left:
            raise CompileError(f"node {left[0].origin!r} ({left[0].op}) is not part of the ViT "
                               f"structure the IR supports (patch embedding, class token and "
                               f"position embedding, pre-norm attention/MLP or MoE blocks, final "
                               f"LayerNorm, linear head)")
        return self.nodes, self.facts

    def _take(self, tensor: str, op: str, what: str) -> _Raw:
        """The one unvisited user of ``tensor`` with op ``op``."""
        found = [u for u in self.users.get(tensor, []) if u.op == op and id(u) not in self.done]
        if len(found) != 1:
            seen = ", ".join(f"{u.op} from {u.origin!r}" for u in self.users.get(tensor, [])
                             if id(u) not in self.done) or "nothing"
            raise CompileError(f"expected {what} after {self._where(tensor)}; found {seen}")
        return found[0]

    def _where(self, tensor: str) -> str:
        for n in self.raw:
            if n.output == tensor:
                return f"node {n.origin!r}"
        return "the image input"

    def _check(self, n: _Raw, ok: bool, what: str) -> None:
        if not ok:
            raise CompileError(f"node {n.origin!r} ({n.op}): expected {what}")

    def _emit(self, n: _Raw, name: str, output: str) -> None:
        for i in n.inputs:
            self._check(n, i in self.names, f"{name} to read tensors of the ViT structure")
        self.nodes.append(Node(n.op, name, [self.names[i] for i in n.inputs], output,
                               dict(n.params), dict(n.attrs)))
        self.names[n.output] = output
        self.done.add(id(n))

    def _block(self, x: str, ln1: _Raw) -> str:
        """norm1 -> qkv -> attention -> proj(+x) -> norm2 -> MLP or MoE (+residual)."""
        i = self.facts.depth
        b = f"block{i}"
        self._emit(ln1, f"{b}.norm1", f"{b}.ln1")
        qkv = self._take(ln1.output, "linear", f"{b}: the qkv projection")
        self._check(qkv, not qkv.attrs and len(qkv.inputs) == 1, "a plain qkv projection")
        self._emit(qkv, f"{b}.qkv", f"{b}.qkv")
        att = self._take(qkv.output, "attention", f"{b}: attention")
        self._emit(att, f"{b}.attn_core", f"{b}.heads")
        proj = self._take(att.output, "linear", f"{b}: the attention output projection")
        self._check(proj, not proj.attrs and proj.inputs[1:] == [x],
                    "the attention projection with the block input as residual")
        self._emit(proj, f"{b}.proj", f"{b}.attn")
        ln2 = self._take(proj.output, "layernorm", f"{b}: the LayerNorm before the MLP")
        self._emit(ln2, f"{b}.norm2", f"{b}.ln2")
        self.facts.heads.append(att.attrs["heads"])
        self.facts.dim = proj.params["w"].shape[1]
        self.facts.eps += [ln1.attrs["eps"], ln2.attrs["eps"]]
        self.facts.depth += 1
        mlp = [u for u in self.users.get(ln2.output, []) if u.op in ("moe", "linear")]
        if len(mlp) == 1 and mlp[0].op == "moe":
            return self._moe(b, i, mlp[0], proj.output)
        return self._mlp(b, ln2, proj.output)

    def _mlp(self, b: str, ln2: _Raw, stream: str) -> str:
        fc1 = self._take(ln2.output, "linear", f"{b}: the MLP's first layer")
        self._check(fc1, fc1.attrs == {"gelu": True} and len(fc1.inputs) == 1,
                    "the MLP's first layer followed by GELU (exact erf form)")
        self._emit(fc1, f"{b}.fc1", f"{b}.hidden")
        fc2 = self._take(fc1.output, "linear", f"{b}: the MLP's second layer")
        self._check(fc2, not fc2.attrs and fc2.inputs[1:] == [stream],
                    "the MLP's second layer with the attention output as residual")
        self._emit(fc2, f"{b}.fc2", f"{b}.mlp")
        self.facts.mlp_hidden.append(fc1.params["w"].shape[1])
        return fc2.output

    def _moe(self, b: str, i: int, moe: _Raw, stream: str) -> str:
        self._check(moe, moe.inputs[1:] == [stream],
                    "the MoE with the attention output as residual")
        self._emit(moe, f"{b}.moe", f"{b}.mlp")
        w1 = moe.params["w1"]
        self.facts.experts.append((w1.shape[0], w1.shape[2], moe.attrs["k"]))
        self.facts.moe_blocks.append(i)
        return moe.output

    def _head(self, ln: _Raw) -> None:
        self._emit(ln, "norm", "final")
        self.facts.eps.append(ln.attrs["eps"])
        head = self._take(ln.output, "linear", "the task head")
        self._check(head, len(head.inputs) == 1 and not head.attrs.get("gelu"),
                    "a plain linear task head")
        self._emit(head, f"head.{self.task}", f"out.{self.task}")
        out = self.output
        whole = (out.src == head.output and out.scale == 1.0
                 and np.array_equal(out.idx.reshape(-1), np.arange(np.prod(self.shapes[out.src]))))
        self._check(head, whole, "the task head's whole output, in order, as the graph output")
        self.facts.channels = head.params["w"].shape[1]


# --------------------------------------------------------------------------------------------
# Model config
# --------------------------------------------------------------------------------------------


def _one(values: list[Any], what: str, default: Any = 0) -> Any:
    """The value every block agrees on (ModelConfig has one per model)."""
    if not values:
        return default
    if len(set(values)) != 1:
        raise CompileError(f"blocks differ in {what} ({sorted(set(values))}); the model config "
                           f"has one value for all blocks")
    return values[0]


def _model_config(facts: _Facts, image: tuple[int, ...], patch: int, task: str,
                  stored: dict[str, Any] | None, stem: str) -> dict[str, Any]:
    """``ModelConfig.to_dict()`` of the graph, with only ``task`` in ``tasks``.

    A config stored by ``export_onnx`` wins (it has the name and the sizes of layer kinds the
    graph may lack), after checking it against everything the graph shows.
    """
    experts = _one(facts.experts, "MoE experts (count, hidden width, top-k)", (0, 0, 0))
    found = {
        "image_size": list(image[1:]), "patch": patch, "dim": facts.dim, "depth": facts.depth,
        "heads": _one(facts.heads, "attention heads"),
        "mlp_hidden": _one(facts.mlp_hidden, "MLP width"), "num_experts": experts[0],
        "expert_hidden": experts[1], "top_k": experts[2], "tasks": {task: facts.channels},
        "ln_eps": facts.eps[0], "moe_blocks": facts.moe_blocks,
    }
    if stored is None:
        return {"name": stem, **found}
    unseen = ({"mlp_hidden"} if not facts.mlp_hidden else set()) | (
        {"num_experts", "expert_hidden", "top_k"} if not facts.experts else set())
    config = {**stored, "tasks": {task: stored["tasks"][task]}}
    for key, value in found.items():
        if key in unseen:
            continue
        want = config.get(key)
        same = np.float32(want) == np.float32(value) if key == "ln_eps" else want == value
        if not same:
            raise CompileError(f"metadata {META_MODEL!r} says {key}={want!r} but the graph has "
                               f"{key}={value!r}")
    return config


def _use_stored_eps(nodes: list[Node], eps: float) -> None:
    """Give LayerNorms the config's eps when it is what the graph's float32 eps rounds from."""
    for n in nodes:
        if n.op == "layernorm" and np.float32(n.attrs["eps"]) == np.float32(eps):
            n.attrs["eps"] = eps
