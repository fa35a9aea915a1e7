"""Lowering: quantized graphs -> instruction streams, weight image and DRAM memory plan.

DRAM map of a binary (addresses in bytes, every region 4 KiB aligned)::

    0x0000_0000  unused page (a zero address in an instruction is always a bug)
    INSN         instruction streams of all tasks, back to back
    WEIGHTS      weight image: packed weight tiles, epilogue and LayerNorm parameters,
                 constant rows (class token, position embedding); shared blobs stored once
    ACT          activation arena: input, intermediates and outputs; buffers are reused once
                 the last instruction reading them has run (tasks run one at a time, so all
                 tasks share the arena)

Each graph node becomes a few layer-level instructions; see ``_Emitter`` for the mapping.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from edgemoe.hw import isa, layouts
from edgemoe.hw.config import HardwareConfig

from .errors import CompileError
from .ir import Node
from .quantize import QGraph, QNode, QTensor

PAGE = 4096
ALIGN = 64
INSN_ADDR = PAGE
#: Bytes of softmax statistics per query row (see hw.numerics.softmax.pack_stats).
STATS_BYTES = 8


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


# --------------------------------------------------------------------------- weight image
class WeightImage:
    """Append-only image of constant data; identical blobs are stored once."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._seen: dict[bytes, int] = {}

    def add(self, blob: bytes) -> int:
        """Offset of ``blob`` in the image (relative to the image start)."""
        key = hashlib.sha256(blob).digest()
        if key not in self._seen:
            self.data += b"\0" * (_align(len(self.data)) - len(self.data))
            self._seen[key] = len(self.data)
            self.data += blob
        return self._seen[key]


# --------------------------------------------------------------------------- activation arena
@dataclass
class _Buffer:
    size: int
    offset: int = -1
    last_use: int = -1


class Arena:
    """First-fit allocator over node indices: a buffer is free after its last reader."""

    def __init__(self) -> None:
        self.live: list[_Buffer] = []
        self.size = 0

    def alloc(self, nbytes: int, last_use: int) -> _Buffer:
        nbytes = _align(max(nbytes, 1))
        spans = sorted((b.offset, b.offset + _align(b.size)) for b in self.live)
        at = 0
        for lo, hi in spans:
            if at + nbytes <= lo:
                break
            at = max(at, hi)
        buf = _Buffer(nbytes, at, last_use)
        self.live.append(buf)
        self.size = max(self.size, at + nbytes)
        return buf

    def release_before(self, node: int) -> None:
        """Free every buffer whose last reader is a node before ``node``."""
        self.live = [b for b in self.live if b.last_use >= node]


# --------------------------------------------------------------------------- program
@dataclass
class TaskProgram:
    task: str
    insns: list[isa.Instruction] = field(default_factory=list)
    comments: dict[int, str] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    #: name -> {"offset" (in the arena), "shape", "bits", "scale", "stride", "after"}
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: MoE route tables: {"name", "offset", "e", "capacity", "after"} (for routing reports)
    routes: list[dict[str, Any]] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    #: Placeholders resolved once the DRAM map is known: (insn index, field, region, offset).
    relocs: list[tuple[int, str, str, int]] = field(default_factory=list)


class _Emitter:
    """Emits one task's instructions with symbolic (region, offset) addresses."""

    def __init__(self, qg: QGraph, cfg: HardwareConfig, weights: WeightImage, arena: Arena):
        self.qg, self.cfg, self.weights, self.arena = qg, cfg, weights, arena
        self.prog = TaskProgram(qg.graph.task)
        self.shapes = qg.graph.shapes()
        self.buf: dict[str, _Buffer] = {}
        self.row_offset: dict[str, int] = {}  # tensors that are a row window of another buffer
        self.temps: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ helpers
    def emit(self, op: str, comment: str = "", **fields: Any) -> None:
        """Append an instruction; address fields are ("w"|"a", offset) pairs until relocated."""
        plain: dict[str, int] = {}
        idx = len(self.prog.insns)
        for name, v in fields.items():
            if isinstance(v, tuple):
                region, off = v
                self.prog.relocs.append((idx, name, region, int(off)))
                plain[name] = 0
            else:
                plain[name] = int(v)
        try:
            self.prog.insns.append(isa.make(op, **plain))
        except isa.IsaError as e:
            raise CompileError(f"{comment or op}: {e}") from None
        if comment:
            self.prog.comments[idx] = comment

    def weight(self, blob: bytes) -> tuple[str, int]:
        return ("w", self.weights.add(blob))

    def act(self, tensor: str, row: int = 0, col: int = 0) -> tuple[str, int]:
        qt = self.qg.tensors[tensor]
        stride = self.shapes[tensor][1]
        base = self.buf[tensor].offset + self.row_offset.get(tensor, 0)
        return ("a", base + (row * stride + col) * qt.bytes_per_element)

    def temp(self, node: str, i: int) -> tuple[str, int]:
        return ("a", self.temps[node][i])

    def q(self, tensor: str) -> QTensor:
        return self.qg.tensors[tensor]

    def epilogue(self, p: dict[str, Any]) -> tuple[str, int]:
        return self.weight(layouts.pack_epilogue(p["bias"], p["mult"], p["shift"]))

    # ------------------------------------------------------------------ allocation
    def plan(self) -> None:
        """Give every tensor and node temporary a buffer, reusing freed ones.

        Node i may reuse a buffer whose last reader ran before node i; its own inputs stay
        live while it runs, so no instruction reads memory that it also writes, except the
        residual updates that are in place by design.
        """
        g = self.qg.graph
        producers = g.producers()
        last_use: dict[str, int] = {g.input: 0}
        for i, n in enumerate(g.nodes):
            for t in n.inputs:
                last_use[t] = i
        last_use[g.output] = len(g.nodes)
        alias: dict[str, str] = {}
        for i, n in enumerate(g.nodes):
            if n.op in ("linear", "moe") and len(n.inputs) > 1:
                alias[n.output] = n.inputs[1]  # residual update in place
                if last_use.get(n.inputs[1], -1) > i:
                    raise CompileError(
                        f"node {n.name} ({n.op}): its residual input {n.inputs[1]!r} is read "
                        f"again later, so it cannot be updated in place"
                    )
            if n.op == "embed":
                producer = producers.get(n.inputs[0])
                if producer is None or producer.op != "linear" or last_use[n.inputs[0]] != i:
                    raise CompileError(
                        f"node {n.name} (embed): its input must be a linear patch embedding "
                        f"used only by the embedding"
                    )
                alias[n.inputs[0]] = n.output  # the patch embedding writes rows 1.. directly
                self.row_offset[n.inputs[0]] = self.shapes[n.output][1] * self.q(n.output).bytes_per_element

        def root(t: str) -> str:
            while t in alias:
                t = alias[t]
            return t

        # A buffer lives until the last reader of any tensor sharing it.
        group_last: dict[str, int] = {}
        for t, lu in last_use.items():
            group_last[root(t)] = max(group_last.get(root(t), -1), lu)

        def place(t: str) -> None:
            r = root(t)
            if r not in self.buf:
                rows, cols = self.shapes[r]
                self.buf[r] = self.arena.alloc(rows * cols * self.q(r).bytes_per_element, group_last[r])
            self.buf[t] = self.buf[r]

        place(g.input)
        for i, n in enumerate(g.nodes):
            self.arena.release_before(i)
            place(n.output)
            self.temps[n.name] = [self.arena.alloc(size, i).offset for size in self._temp_sizes(n)]

    def _temp_sizes(self, n: Node) -> list[int]:
        """Scratch buffers a node needs while it runs (freed after it)."""
        if n.op == "attention":
            t = self.shapes[n.inputs[0]][0]
            return [t * t * 2, t * STATS_BYTES] * n.attrs["heads"]
        if n.op == "moe":
            t = self.shapes[n.inputs[0]][0]
            e, he = n.params["w1"].shape[0], n.params["w1"].shape[2]
            hidden = self.qg.nodes[self.qg.graph.nodes.index(n)].params["hidden"]
            return [t * e * 2, layouts.route_table_bytes(e, t), t * he * hidden.bytes_per_element]
        return []

    # ------------------------------------------------------------------ nodes
    def run(self) -> TaskProgram:
        g = self.qg.graph
        self.plan()
        for qn in self.qg.nodes:
            first = len(self.prog.insns)
            getattr(self, "_" + qn.node.op)(qn)
            self.prog.layers.append(
                {"name": qn.node.name, "op": qn.node.op, "first": first, "count": len(self.prog.insns) - first}
            )
            if qn.node.output not in self.row_offset:  # fused into the next node: not observable
                self._record(qn.node.output, len(self.prog.insns) - 1)
        self.emit("END", "end of program")
        self.prog.input = self._describe(g.input)
        self.prog.output = self._describe(g.output)
        return self.prog

    def _describe(self, t: str) -> dict[str, Any]:
        qt = self.q(t)
        return {
            "offset": self.act(t)[1],
            "shape": list(self.shapes[t]),
            "bits": qt.bits,
            "scale": qt.scale,
            "stride": self.shapes[t][1],
        }

    def _record(self, t: str, after: int) -> None:
        self.prog.tensors[t] = {**self._describe(t), "after": after}

    def _linear(self, qn: QNode) -> None:
        n, p = qn.node, qn.params
        x, y = n.inputs[0], n.output
        rows = n.attrs.get("rows") or (0, self.shapes[x][0])
        m = rows[1] - rows[0]
        k, nout = p["w"].shape
        residual = len(n.inputs) > 1
        fields: dict[str, Any] = dict(
            x16=self.q(x).bits == 16,
            y16=self.q(y).bits == 16,
            gelu=bool(n.attrs.get("gelu")),
            m=m, k=k, n=nout,
            x_addr=self.act(x, row=rows[0]), x_stride=self.shapes[x][1],
            w_addr=self.weight(layouts.pack_weights(p["w"], self.cfg)),
            p_addr=self.epilogue(p),
            y_addr=self.act(y), y_stride=self.shapes[y][1],
            gelu_frac=p["gelu_frac"],
        )
        if residual:
            fields.update(residual=True, r_addr=self.act(n.inputs[1]))
        embed = [c for c in self.qg.nodes if c.node.op == "embed" and c.node.inputs[0] == y]
        if embed:
            # Patch embedding: rows 1.. of the token matrix, plus the position embedding.
            pos = embed[0].params["pos_rows"].astype("<i2").tobytes()
            fields.update(residual=True, r_addr=self.weight(pos))
        self.emit("MATMUL", f"{n.name}: {m}x{k} @ {k}x{nout}", **fields)

    def _embed(self, qn: QNode) -> None:
        n = qn.node
        row = qn.params["cls_row"].astype("<i2").tobytes()
        self.emit(
            "DMA_COPY", f"{n.name}: class token + position 0",
            rows=1, row_bytes=len(row), src_addr=self.weight(row), dst_addr=self.act(n.output),
        )

    def _layernorm(self, qn: QNode) -> None:
        n, p = qn.node, qn.params
        x, y = n.inputs[0], n.output
        m, d = self.shapes[x]
        blob = layouts.pack_layernorm(p["eps_q"], p["mult"], p["shift"], p["gamma"], p["beta"])
        self.emit(
            "LAYERNORM", f"{n.name}: {m}x{d}",
            x16=self.q(x).bits == 16, y16=self.q(y).bits == 16, m=m, d=d,
            x_addr=self.act(x), x_stride=d, y_addr=self.act(y), y_stride=d,
            p_addr=self.weight(blob),
        )

    def _attention(self, qn: QNode) -> None:
        n, p = qn.node, qn.params
        qkv, y = n.inputs[0], n.output
        t, width = self.shapes[qkv]
        d = width // 3
        heads = n.attrs["heads"]
        dh = d // heads
        x16 = self.q(qkv).bits == 16
        for h in range(heads):
            z = self.temp(n.name, 2 * h)
            stats = self.temp(n.name, 2 * h + 1)
            self.emit(
                "ATTN_QK", f"{n.name} head {h}: scores and softmax statistics",
                x16=x16, m=t, n=t, d=dh,
                q_addr=self.act(qkv, col=h * dh), q_stride=width,
                k_addr=self.act(qkv, col=d + h * dh), k_stride=width,
                z_addr=z, stats_addr=stats, mult=p["qk_mult"], shift=p["qk_shift"],
            )
            self.emit(
                "ATTN_AV", f"{n.name} head {h}: normalised probabilities x V",
                x16=x16, y16=self.q(y).bits == 16, m=t, n=t, d=dh,
                z_addr=z, stats_addr=stats,
                v_addr=self.act(qkv, col=2 * d + h * dh), v_stride=width,
                o_addr=self.act(y, col=h * dh), o_stride=d,
                mult=p["av_mult"], shift=p["av_shift"],
            )

    def _moe(self, qn: QNode) -> None:
        n, p = qn.node, qn.params
        x, res, y = n.inputs[0], n.inputs[1], n.output
        t, d = self.shapes[x]
        num_e = len(p["experts"])
        hidden: QTensor = p["hidden"]
        he = p["experts"][0][0]["w"].shape[1]
        gate = p["gate"]
        logits, route, hbuf = (self.temp(n.name, i) for i in range(3))
        self.emit(
            "MATMUL", f"{n.name}: gate logits (base-2 domain)",
            x16=self.q(x).bits == 16, y16=True, m=t, k=d, n=num_e,
            x_addr=self.act(x), x_stride=d,
            w_addr=self.weight(layouts.pack_weights(gate["w"], self.cfg)), p_addr=self.epilogue(gate),
            y_addr=logits, y_stride=num_e,
        )
        self.emit("GATE_TOPK", f"{n.name}: top-{p['k']} routing", m=t, e=num_e, k=p["k"], z_addr=logits, route_addr=route)
        self.prog.routes.append(
            {"name": n.name, "offset": route[1], "e": num_e, "capacity": t, "k": p["k"],
             "after": len(self.prog.insns) - 1}
        )
        # One block per expert with identical internal offsets: fc1 tiles, fc1 params, fc2 ...
        parts = []
        for fc1, fc2 in p["experts"]:
            parts.append([
                layouts.pack_weights(fc1["w"], self.cfg), layouts.pack_epilogue(fc1["bias"], fc1["mult"], fc1["shift"]),
                layouts.pack_weights(fc2["w"], self.cfg), layouts.pack_epilogue(fc2["bias"], fc2["mult"], fc2["shift"]),
            ])
        offs, at = [], 0
        for blob in parts[0]:
            offs.append(at)
            at = _align(at + len(blob))
        stride = at
        block = bytearray(stride * num_e)
        for e, blobs in enumerate(parts):
            for off, blob in zip(offs, blobs):
                block[e * stride + off : e * stride + off + len(blob)] = blob
        base = self.weights.add(bytes(block))
        self.emit(
            "EXPERT_LOOP", f"{n.name}: every routed expert",
            e=num_e, body=2, capacity=t, route_addr=route, expert_stride=stride,
        )
        self.emit(
            "MATMUL", f"{n.name}: expert fc1 + GELU over its tokens (gather)",
            x16=self.q(x).bits == 16, y16=hidden.bits == 16, gelu=True, expert=True, gather_x=True,
            k=d, n=he, x_addr=self.act(x), x_stride=d,
            w_addr=("w", base + offs[0]), p_addr=("w", base + offs[1]),
            y_addr=hbuf, y_stride=he, gelu_frac=hidden.frac,
        )
        self.emit(
            "MATMUL", f"{n.name}: expert fc2, score-weighted scatter-add",
            x16=hidden.bits == 16, y16=self.q(y).bits == 16, expert=True, scatter_acc=True,
            k=he, n=d, x_addr=hbuf, x_stride=he,
            w_addr=("w", base + offs[2]), p_addr=("w", base + offs[3]),
            y_addr=self.act(res), y_stride=d,
        )


# --------------------------------------------------------------------------- link
@dataclass
class Linked:
    insn: bytes
    weights: bytes
    memory: dict[str, int]
    tasks: dict[str, dict[str, Any]]
    programs: dict[str, TaskProgram]


def lower(qgraphs: dict[str, QGraph], cfg: HardwareConfig) -> Linked:
    weights = WeightImage()
    arena_size = 0
    programs: dict[str, TaskProgram] = {}
    for task, qg in qgraphs.items():
        arena = Arena()
        programs[task] = _Emitter(qg, cfg, weights, arena).run()
        arena_size = max(arena_size, arena.size)

    total_insns = sum(len(p.insns) for p in programs.values())
    weights_addr = _align(INSN_ADDR + total_insns * isa.INSTRUCTION_BYTES, PAGE)
    act_addr = _align(weights_addr + len(weights.data), PAGE)
    dram_needed = _align(act_addr + arena_size, PAGE)
    if dram_needed > cfg.dram_bytes:
        raise CompileError(
            f"the model needs {dram_needed / 2**20:.1f} MiB of DRAM but hardware config "
            f"'{cfg.name}' has dram_size_mib = {cfg.dram_size_mib}"
        )
    base = {"w": weights_addr, "a": act_addr}
    stream: list[isa.Instruction] = []
    tasks: dict[str, dict[str, Any]] = {}
    for task, prog in programs.items():
        first = len(stream)
        for idx, name, region, off in prog.relocs:
            insn = prog.insns[idx]
            prog.insns[idx] = isa.Instruction(insn.op, {**insn.fields, name: base[region] + off})
        stream += prog.insns

        def place(d: dict[str, Any]) -> dict[str, Any]:
            out = {k: v for k, v in d.items() if k != "offset"}
            out["addr"] = act_addr + d["offset"]
            return out

        tasks[task] = {
            "insn_index": first,
            "insn_count": len(prog.insns),
            "input": place(prog.input),
            "output": place(prog.output),
            "layers": prog.layers,
            "tensors": {k: place(v) for k, v in prog.tensors.items()},
            "routes": [place(r) for r in prog.routes],
            "comments": {str(first + i): text for i, text in prog.comments.items()},
        }
    memory = {
        "insn_addr": INSN_ADDR,
        "weights_addr": weights_addr,
        "weights_bytes": len(weights.data),
        "act_addr": act_addr,
        "act_bytes": arena_size,
        "dram_bytes": dram_needed,
    }
    return Linked(isa.encode_program(stream), bytes(weights.data), memory, tasks, programs)
