"""The memory layouts of :data:`edgemoe.hw.isa.DATA_LAYOUTS`, implemented once.

The compiler writes DRAM images with the ``pack_*`` functions and the golden model reads them
back with the ``unpack_*`` functions, so the two can never disagree about where a byte lives.
Every ``unpack_*`` accepts any bytes-like object, including a NumPy ``uint8`` view of DRAM
(no copy of the whole memory is made), and returns freshly allocated arrays.

All values are little endian; the structured dtypes below spell each record out byte by byte.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .config import HardwareConfig

Buffer = bytes | bytearray | memoryview | npt.NDArray[np.uint8]

#: One MATMUL epilogue record (8 bytes per output channel).
EPILOGUE_DTYPE = np.dtype([("bias", "<i4"), ("mult", "<u2"), ("shift", "u1"), ("pad", "u1")])
#: The fixed header of the LAYERNORM parameters (16 bytes), followed by gamma and beta.
LAYERNORM_HEADER_DTYPE = np.dtype(
    [("eps", "<i8"), ("mult", "<u2"), ("shift", "u1"), ("pad", "u1", (5,))]
)
#: One route list entry (4 bytes).
ROUTE_ENTRY_DTYPE = np.dtype([("token", "<u2"), ("score", "<u2")])
#: Bytes of one route count and of one route list entry.
ROUTE_COUNT_BYTES = 4
ROUTE_ENTRY_BYTES = ROUTE_ENTRY_DTYPE.itemsize

assert EPILOGUE_DTYPE.itemsize == 8 and LAYERNORM_HEADER_DTYPE.itemsize == 16


class LayoutError(ValueError):
    """Arguments do not fit a layout (wrong shape, value out of range, buffer too short)."""


def _need(buf: Buffer, nbytes: int, what: str) -> None:
    have = memoryview(buf).nbytes
    if have < nbytes:
        raise LayoutError(f"{what}: buffer holds {have} bytes, the layout needs {nbytes}")


def _as(values: npt.ArrayLike, dtype: str, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Convert ``values`` to ``dtype`` with ``shape``, refusing values that do not fit."""
    a = np.asarray(values)
    if a.shape != shape:
        raise LayoutError(f"{what}: shape {a.shape}, expected {shape}")
    info = np.iinfo(dtype)
    if a.size and (a.min() < info.min or a.max() > info.max):
        raise LayoutError(f"{what}: values outside the {np.dtype(dtype).name} range")
    return a.astype(dtype)


# --------------------------------------------------------------------------- weights
def weight_tiles(k: int, n: int, cfg: HardwareConfig) -> tuple[int, int]:
    """(tiles along k, tiles along n) of a ``k x n`` weight matrix on ``cfg``'s array."""
    return -(-k // cfg.array_rows), -(-n // cfg.array_cols)


def packed_weight_bytes(k: int, n: int, cfg: HardwareConfig) -> int:
    """Bytes of the packed tiles of a ``k x n`` int8 weight matrix (edge tiles zero padded)."""
    kt, nt = weight_tiles(k, n, cfg)
    return kt * nt * cfg.weight_tile_bytes


def pack_weights(w: npt.ArrayLike, cfg: HardwareConfig) -> bytes:
    """Pack int8 ``W[k, n]`` into array tiles, output-tile major (see DATA_LAYOUTS)."""
    w = np.asarray(w)
    if w.ndim != 2 or 0 in w.shape:
        raise LayoutError(f"weights: expected a non-empty 2-D matrix, got shape {w.shape}")
    k, n = w.shape
    w8 = _as(w, "i1", (k, n), "weights")
    kt, nt = weight_tiles(k, n, cfg)
    rows, cols = cfg.array_rows, cfg.array_cols
    padded = np.zeros((kt * rows, nt * cols), dtype=np.int8)
    padded[:k, :n] = w8
    # [kt, rows, nt, cols] -> [nt, kt, rows, cols]: for nt, for kt, each tile row of cols bytes.
    return padded.reshape(kt, rows, nt, cols).transpose(2, 0, 1, 3).tobytes()


def unpack_weights(buf: Buffer, k: int, n: int, cfg: HardwareConfig) -> npt.NDArray[np.int8]:
    """Inverse of :func:`pack_weights`: int8 ``W[k, n]`` from its packed tiles."""
    nbytes = packed_weight_bytes(k, n, cfg)
    _need(buf, nbytes, "packed weights")
    kt, nt = weight_tiles(k, n, cfg)
    rows, cols = cfg.array_rows, cfg.array_cols
    tiles = np.frombuffer(buf, dtype=np.int8, count=nbytes).reshape(nt, kt, rows, cols)
    return tiles.transpose(1, 2, 0, 3).reshape(kt * rows, nt * cols)[:k, :n].copy()


# --------------------------------------------------------------------------- MATMUL epilogue
class Epilogue(NamedTuple):
    """Per-output-channel epilogue parameters of a MATMUL."""

    bias: npt.NDArray[np.int32]
    mult: npt.NDArray[np.uint16]
    shift: npt.NDArray[np.uint8]


def epilogue_bytes(n: int) -> int:
    return n * EPILOGUE_DTYPE.itemsize


def pack_epilogue(bias: npt.ArrayLike, mult: npt.ArrayLike, shift: npt.ArrayLike) -> bytes:
    """n records of (int32 bias, uint16 mult, uint8 shift, zero pad byte)."""
    n = np.shape(bias)[0] if np.ndim(bias) == 1 else -1
    if n < 1:
        raise LayoutError(f"epilogue: bias must be a non-empty vector, got shape {np.shape(bias)}")
    rec = np.zeros(n, dtype=EPILOGUE_DTYPE)
    rec["bias"] = _as(bias, "i4", (n,), "epilogue bias")
    rec["mult"] = _as(mult, "u2", (n,), "epilogue mult")
    rec["shift"] = _as(shift, "u1", (n,), "epilogue shift")
    return rec.tobytes()


def unpack_epilogue(buf: Buffer, n: int) -> Epilogue:
    _need(buf, epilogue_bytes(n), "epilogue parameters")
    rec = np.frombuffer(buf, dtype=EPILOGUE_DTYPE, count=n)
    return Epilogue(rec["bias"].copy(), rec["mult"].copy(), rec["shift"].copy())


# --------------------------------------------------------------------------- LayerNorm
class LayerNormParams(NamedTuple):
    """LAYERNORM parameters: eps in units of D^2 x_scale^2, output (mult, shift), gamma, beta."""

    eps: int
    mult: int
    shift: int
    gamma: npt.NDArray[np.int16]
    beta: npt.NDArray[np.int32]


def layernorm_bytes(d: int) -> int:
    return LAYERNORM_HEADER_DTYPE.itemsize + 6 * d


def pack_layernorm(
    eps_q: int, mult: int, shift: int, gamma: npt.ArrayLike, beta: npt.ArrayLike
) -> bytes:
    """Header (int64 eps, uint16 mult, uint8 shift, 5 zero bytes), d int16 gamma, d int32 beta."""
    d = np.shape(gamma)[0] if np.ndim(gamma) == 1 else -1
    if d < 1:
        raise LayoutError(
            f"layernorm: gamma must be a non-empty vector, got shape {np.shape(gamma)}"
        )
    head = np.zeros(1, dtype=LAYERNORM_HEADER_DTYPE)
    head["eps"] = _as(eps_q, "i8", (), "layernorm eps")
    head["mult"] = _as(mult, "u2", (), "layernorm mult")
    head["shift"] = _as(shift, "u1", (), "layernorm shift")
    g = _as(gamma, "i2", (d,), "layernorm gamma").astype("<i2")
    b = _as(beta, "i4", (d,), "layernorm beta").astype("<i4")
    return head.tobytes() + g.tobytes() + b.tobytes()


def unpack_layernorm(buf: Buffer, d: int) -> LayerNormParams:
    _need(buf, layernorm_bytes(d), "layernorm parameters")
    head = np.frombuffer(buf, dtype=LAYERNORM_HEADER_DTYPE, count=1)[0]
    at = LAYERNORM_HEADER_DTYPE.itemsize
    gamma = np.frombuffer(buf, dtype="<i2", count=d, offset=at).astype(np.int16)
    beta = np.frombuffer(buf, dtype="<i4", count=d, offset=at + 2 * d).astype(np.int32)
    return LayerNormParams(int(head["eps"]), int(head["mult"]), int(head["shift"]), gamma, beta)


# --------------------------------------------------------------------------- route table
class RouteTable(NamedTuple):
    """Per-expert token lists: ``count[e]`` valid entries of ``token[e]`` and ``score[e]``.

    ``token`` and ``score`` have shape ``[E, capacity]``; entries at or beyond ``count[e]`` are
    zero in a table returned by :func:`unpack_route_table`.
    """

    count: npt.NDArray[np.uint32]
    token: npt.NDArray[np.uint16]
    score: npt.NDArray[np.uint16]


def route_table_bytes(e: int, capacity: int) -> int:
    return ROUTE_COUNT_BYTES * e + ROUTE_ENTRY_BYTES * capacity * e


def route_list_offset(e: int, capacity: int, expert: int) -> int:
    """Byte offset of expert ``expert``'s list from the start of the table."""
    return ROUTE_COUNT_BYTES * e + ROUTE_ENTRY_BYTES * capacity * expert


def pack_route_table(count: npt.ArrayLike, token: npt.ArrayLike, score: npt.ArrayLike) -> bytes:
    """The whole table, unused list entries (at or beyond ``count[e]``) written as zeros."""
    count_a = np.asarray(count)
    if count_a.ndim != 1 or count_a.size == 0:
        raise LayoutError(f"route table: count must be a non-empty vector, got {count_a.shape}")
    e = count_a.size
    token_a = np.asarray(token)
    if token_a.ndim != 2 or token_a.shape[0] != e:
        raise LayoutError(f"route table: token shape {token_a.shape}, expected ({e}, capacity)")
    capacity = token_a.shape[1]
    cnt = _as(count_a, "u4", (e,), "route count")
    if (cnt > capacity).any():
        raise LayoutError(f"route table: a count exceeds the capacity {capacity}")
    valid = np.arange(capacity)[None, :] < cnt[:, None]
    lists = np.zeros((e, capacity), dtype=ROUTE_ENTRY_DTYPE)
    lists["token"] = np.where(valid, _as(token_a, "u2", (e, capacity), "route token"), 0)
    lists["score"] = np.where(valid, _as(score, "u2", (e, capacity), "route score"), 0)
    return cnt.astype("<u4").tobytes() + lists.tobytes()


def unpack_route_counts(buf: Buffer, e: int) -> npt.NDArray[np.uint32]:
    """Just the ``count[e]`` header of a route table (what EXPERT_LOOP reads)."""
    _need(buf, ROUTE_COUNT_BYTES * e, "route counts")
    return np.frombuffer(buf, dtype="<u4", count=e).astype(np.uint32)


def unpack_route_entries(
    buf: Buffer, count: int
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """(tokens, scores) of ``count`` list entries starting at the beginning of ``buf``."""
    _need(buf, ROUTE_ENTRY_BYTES * count, "route list")
    rec = np.frombuffer(buf, dtype=ROUTE_ENTRY_DTYPE, count=count)
    return rec["token"].astype(np.uint16), rec["score"].astype(np.uint16)


def unpack_route_table(buf: Buffer, e: int, capacity: int) -> RouteTable:
    """Inverse of :func:`pack_route_table`; a count above ``capacity`` raises LayoutError."""
    count = unpack_route_counts(buf, e)
    if (count > capacity).any():
        raise LayoutError(f"route table: a count exceeds the capacity {capacity}")
    token = np.zeros((e, capacity), dtype=np.uint16)
    score = np.zeros((e, capacity), dtype=np.uint16)
    view = memoryview(buf).cast("B")
    for x in range(e):
        c, at = int(count[x]), route_list_offset(e, capacity, x)
        token[x, :c], score[x, :c] = unpack_route_entries(view[at:], c)
    return RouteTable(count, token, score)
