"""Semantics of the data instructions: one function per opcode, all integer, all vectorised.

Each function reads every operand before writing anything (a MATMUL may update its residual in
place), calls :mod:`edgemoe.hw.numerics` for the arithmetic and :mod:`edgemoe.hw.layouts` for
every packed structure, and returns the :class:`~.memory.Written` rows it stored.

Data-dependent limits the numerics need are checked here and stop the device with
``ILLEGAL_FIELD`` (a per-channel shift above 63, a LayerNorm eps outside [1, 2^60), an int16
LayerNorm row longer than 2^14), as are the expert-mode flags used outside expert mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgemoe.hw import layouts
from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.fixedpoint import MAX_SHIFT, requantize, round_shift, saturate, wrap
from edgemoe.hw.numerics.gate import gate_topk, route_table
from edgemoe.hw.numerics.gelu import gelu
from edgemoe.hw.numerics.layernorm import EPS_Q_MAX, layernorm
from edgemoe.hw.numerics.softmax import (
    STATS_BYTES,
    online_softmax_stats,
    pack_stats,
    softmax_probs,
    unpack_stats,
)
from edgemoe.hw.regs import ErrorCode

from .exact import exact_matmul
from .memory import I8, I16, DeviceError, Memory, Written

Fields = Mapping[str, int]
#: Longest int16 LayerNorm row for which the numerics' 64-bit variance cannot overflow.
LAYERNORM_MAX_D16 = 1 << 14
#: Score fraction bits of the scatter-add (scores are Q15).
SCORE_SHIFT = 15


@dataclass(frozen=True)
class ExpertPass:
    """The current pass of an EXPERT_LOOP: expert, its token count and where its list lives."""

    expert: int
    count: int
    #: ``expert * expert_stride``: added to a body MATMUL's w_addr and p_addr.
    offset: int
    list_addr: int


@dataclass
class Context:
    cfg: HardwareConfig
    mem: Memory
    expert: ExpertPass | None = None


def _act(flag: int) -> tuple[np.dtype, int]:
    """(element dtype, bits) of an activation operand given its x16/y16 flag."""
    return (I16, 16) if flag else (I8, 8)


def _field_error(op: str, message: str) -> DeviceError:
    return DeviceError(ErrorCode.ILLEGAL_FIELD, f"{op}: {message}")


def _check_shift(op: str, shift: npt.ArrayLike) -> None:
    if np.max(shift) > MAX_SHIFT:
        raise _field_error(op, f"requantize shift {int(np.max(shift))} exceeds {MAX_SHIFT}")


# --------------------------------------------------------------------------- instructions
def dma_copy(ctx: Context, f: Fields) -> list[Written]:
    """Strided or indexed row copy; the whole source (and index list) is read before writing."""
    mem, rows = ctx.mem, f["rows"]
    idx = None
    if f["src_indexed"] or f["dst_indexed"]:
        idx = mem.read_rows("DMA_COPY idx", f["idx_addr"], 1, 2 * rows, 2 * rows)[0].view("<u2")
    src_idx = idx if f["src_indexed"] else None
    dst_idx = idx if f["dst_indexed"] else None
    data = mem.read_rows(
        "DMA_COPY src", f["src_addr"], rows, f["row_bytes"], f["src_stride"], src_idx
    )
    return [mem.write_rows("DMA_COPY dst", f["dst_addr"], data, f["dst_stride"], dst_idx)]


def _route_list(ctx: Context) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    p = ctx.expert
    assert p is not None
    raw = ctx.mem.read_block("MATMUL route list", p.list_addr, layouts.ROUTE_ENTRY_BYTES * p.count)
    tokens, scores = layouts.unpack_route_entries(raw, p.count)
    return tokens.astype(np.int64), scores.astype(np.int64)


def matmul(ctx: Context, f: Fields) -> list[Written]:
    """Y = epilogue(X . W), see DATA_LAYOUTS.

    In expert mode the rows are the current expert's route list (m = count[e]): ``gather_x``
    reads X row i from token row ``token[i]``; ``scatter_acc`` reads, updates and writes Y row
    ``token[i]``, and a ``residual`` then reads R from that same row (R has Y's layout).
    Without ``scatter_acc`` Y row i is compact row i. Every Y row is computed from the DRAM
    contents before the instruction; a token listed twice (never produced by GATE_TOPK) is
    written twice, the later row winning.
    """
    cfg, mem = ctx.cfg, ctx.mem
    k, n = f["k"], f["n"]
    xdt, _ = _act(f["x16"])
    ydt, out_bits = _act(f["y16"])
    if f["expert"]:
        if ctx.expert is None:
            raise DeviceError(ErrorCode.EXPERT_OUTSIDE_LOOP, "MATMUL with `expert` outside a loop")
        m, offset = ctx.expert.count, ctx.expert.offset
    elif f["gather_x"] or f["scatter_acc"]:
        raise _field_error("MATMUL", "`gather_x`/`scatter_acc` need `expert`")
    else:
        m, offset = f["m"], 0
    if m == 0:
        return []
    tokens = scores = None
    if f["gather_x"] or f["scatter_acc"]:
        tokens, scores = _route_list(ctx)
    y_rows = tokens if f["scatter_acc"] else None

    x = mem.read_matrix(
        "MATMUL x", f["x_addr"], m, k, f["x_stride"], xdt, tokens if f["gather_x"] else None
    )
    w_raw = mem.read_block("MATMUL w", f["w_addr"] + offset, layouts.packed_weight_bytes(k, n, cfg))
    w = layouts.unpack_weights(w_raw, k, n, cfg)
    p_raw = mem.read_block("MATMUL params", f["p_addr"] + offset, layouts.epilogue_bytes(n))
    ep = layouts.unpack_epilogue(p_raw, n)
    _check_shift("MATMUL", ep.shift)
    residual = (
        mem.read_matrix("MATMUL r", f["r_addr"], m, n, f["y_stride"], ydt, y_rows)
        if f["residual"]
        else None
    )
    y_old = (
        mem.read_matrix("MATMUL y", f["y_addr"], m, n, f["y_stride"], ydt, y_rows)
        if f["scatter_acc"]
        else None
    )

    acc = wrap(exact_matmul(x, w) + ep.bias.astype(np.int64), cfg.acc_width)
    v = requantize(acc, ep.mult.astype(np.int64), ep.shift.astype(np.int64), out_bits)
    if f["gelu"]:
        v = gelu(v, f["gelu_frac"], out_bits, cfg)
    if residual is not None:
        v = saturate(v + residual, out_bits)
    if y_old is not None:
        assert scores is not None
        v = saturate(y_old + round_shift(v * scores[:, None], SCORE_SHIFT), out_bits)
    return [mem.write_matrix("MATMUL y", f["y_addr"], v, f["y_stride"], ydt, y_rows)]


def attn_qk(ctx: Context, f: Fields) -> list[Written]:
    cfg, mem = ctx.cfg, ctx.mem
    m, n, d = f["m"], f["n"], f["d"]
    xdt, _ = _act(f["x16"])
    q = mem.read_matrix("ATTN_QK q", f["q_addr"], m, d, f["q_stride"], xdt)
    kk = mem.read_matrix("ATTN_QK k", f["k_addr"], n, d, f["k_stride"], xdt)
    z = requantize(wrap(exact_matmul(q, kk.T), cfg.acc_width), f["mult"], f["shift"], 16)
    # Keys arrive one output tile (array_cols keys) at a time, as the MAC array produces them.
    stats = pack_stats(online_softmax_stats(z, cfg, block=cfg.array_cols))
    return [
        mem.write_matrix("ATTN_QK z", f["z_addr"], z, n, I16),
        mem.write_rows("ATTN_QK stats", f["stats_addr"], stats, STATS_BYTES),
    ]


def attn_av(ctx: Context, f: Fields) -> list[Written]:
    cfg, mem = ctx.cfg, ctx.mem
    m, n, d = f["m"], f["n"], f["d"]
    xdt, _ = _act(f["x16"])
    ydt, out_bits = _act(f["y16"])
    z = mem.read_matrix("ATTN_AV z", f["z_addr"], m, n, n, I16)
    stats = unpack_stats(mem.read_block("ATTN_AV stats", f["stats_addr"], STATS_BYTES * m))
    v = mem.read_matrix("ATTN_AV v", f["v_addr"], n, d, f["v_stride"], xdt)
    p = softmax_probs(z, stats, cfg, prob_bits=cfg.act_width)
    o = requantize(wrap(exact_matmul(p, v), cfg.acc_width), f["mult"], f["shift"], out_bits)
    return [mem.write_matrix("ATTN_AV o", f["o_addr"], o, f["o_stride"], ydt)]


def layernorm_op(ctx: Context, f: Fields) -> list[Written]:
    cfg, mem = ctx.cfg, ctx.mem
    m, d = f["m"], f["d"]
    xdt, _ = _act(f["x16"])
    ydt, out_bits = _act(f["y16"])
    if f["x16"] and d > LAYERNORM_MAX_D16:
        raise _field_error("LAYERNORM", f"d = {d} exceeds {LAYERNORM_MAX_D16} for int16 input")
    prm = layouts.unpack_layernorm(
        mem.read_block("LAYERNORM params", f["p_addr"], layouts.layernorm_bytes(d)), d
    )
    if not 1 <= prm.eps < EPS_Q_MAX:
        raise _field_error("LAYERNORM", f"eps {prm.eps} outside [1, 2^60)")
    _check_shift("LAYERNORM", prm.shift)
    x = mem.read_matrix("LAYERNORM x", f["x_addr"], m, d, f["x_stride"], xdt)
    y = layernorm(x, prm.gamma, prm.beta, prm.eps, prm.mult, prm.shift, out_bits, cfg)
    return [mem.write_matrix("LAYERNORM y", f["y_addr"], y, f["y_stride"], ydt)]


def gate_topk_op(ctx: Context, f: Fields) -> list[Written]:
    """Writes the counts and the valid entries of each list; unused list slots are untouched."""
    cfg, mem = ctx.cfg, ctx.mem
    m, e, addr = f["m"], f["e"], f["route_addr"]
    z = mem.read_matrix("GATE_TOPK z", f["z_addr"], m, e, e, I16)
    experts, scores = gate_topk(z, f["k"], cfg)
    counts, tokens, table_scores = route_table(experts, scores, e, m)
    table = np.frombuffer(layouts.pack_route_table(counts, tokens, table_scores), np.uint8)
    count_bytes = layouts.ROUTE_COUNT_BYTES * e
    written = [mem.write_block("GATE_TOPK counts", addr, table[:count_bytes])]
    for x in np.flatnonzero(counts):
        at = layouts.route_list_offset(e, m, int(x))
        entries = table[at : at + layouts.ROUTE_ENTRY_BYTES * int(counts[x])]
        written.append(mem.write_block("GATE_TOPK list", addr + at, entries))
    return written


#: Data instructions by mnemonic (END, SYNC and EXPERT_LOOP are control, handled by the machine).
OPS: dict[str, Callable[[Context, Fields], list[Written]]] = {
    "DMA_COPY": dma_copy,
    "MATMUL": matmul,
    "ATTN_QK": attn_qk,
    "ATTN_AV": attn_av,
    "LAYERNORM": layernorm_op,
    "GATE_TOPK": gate_topk_op,
}
