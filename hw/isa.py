"""The instruction set: one table from which everything else is derived.

Every instruction is 256 bits (32 bytes, little endian: bit 0 is the least significant bit of
byte 0). Bits [7:0] hold the opcode; the fields of each format follow, packed from bit 8 upwards
in the order of the table; unused high bits are zero. The encoder, decoder, disassembler, the
Verilog decoder's field slices and ``docs/isa.md`` are all produced from :data:`FORMATS`.

Instructions are layer-level: a MATMUL multiplies whole matrices that live in DRAM, and the
sequencer runs it as hardware loops over tiles of the MAC array, prefetching the next weight tile
while the current one computes. Architectural state is the DRAM image only (plus the expert index
inside an EXPERT_LOOP), so the result of every instruction is visible and comparable byte for byte
between the golden model and the RTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .config import INSTRUCTION_BYTES

INSTRUCTION_BITS = INSTRUCTION_BYTES * 8
OPCODE_BITS = 8


class IsaError(ValueError):
    """An instruction cannot be encoded or decoded; the message names the index and field."""


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    doc: str
    #: Smallest and largest legal value (defaults: the full unsigned range of ``width``).
    lo: int = 0
    hi: int | None = None

    @property
    def max_value(self) -> int:
        return (1 << self.width) - 1 if self.hi is None else self.hi

    @property
    def is_address(self) -> bool:
        return self.name.endswith("_addr")


@dataclass(frozen=True)
class Format:
    opcode: int
    mnemonic: str
    doc: str
    fields: tuple[Field, ...]
    #: Bit position of each field's least significant bit, computed from the order of ``fields``.
    positions: dict[str, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        pos, at = {}, OPCODE_BITS
        for f in self.fields:
            pos[f.name] = at
            at += f.width
        if at > INSTRUCTION_BITS:
            raise AssertionError(f"{self.mnemonic}: fields use {at} bits > {INSTRUCTION_BITS}")
        object.__setattr__(self, "positions", pos)

    @property
    def used_bits(self) -> int:
        return OPCODE_BITS + sum(f.width for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _flag(name: str, doc: str) -> Field:
    return Field(name, 1, doc)


# Shared field vocabulary, so the same idea has the same name and width everywhere.
_ADDR_DOC = "byte address in DRAM"
_X16 = _flag("x16", "input activations are int16 (else int8)")
_Y16 = _flag("y16", "output activations are int16 (else int8)")
_SHIFT_DOC = "requantize right shift (round half up, then saturate)"

FORMATS: tuple[Format, ...] = (
    Format(
        0x01,
        "END",
        "Stop: all earlier instructions have retired; the device raises `done`.",
        (),
    ),
    Format(
        0x02,
        "SYNC",
        "Barrier: wait until every earlier instruction (including DMA) has written its results.",
        (),
    ),
    Format(
        0x10,
        "DMA_COPY",
        "2-D strided copy of `rows` rows of `row_bytes` bytes, optionally indexed. For r in "
        "0..rows-1: s = idx[r] if src_indexed else r; d = idx[r] if dst_indexed else r; "
        "copy row_bytes from src_addr + s*src_stride to dst_addr + d*dst_stride. "
        "idx is a uint16 list at idx_addr (gather/scatter of token rows). "
        "Source and destination must not overlap.",
        (
            _flag("src_indexed", "source row r is idx[r] (gather)"),
            _flag("dst_indexed", "destination row r is idx[r] (scatter)"),
            Field("rows", 16, "number of rows", lo=1),
            Field("row_bytes", 16, "bytes per row", lo=1),
            Field("src_addr", 32, _ADDR_DOC),
            Field("src_stride", 24, "bytes between source rows"),
            Field("dst_addr", 32, _ADDR_DOC),
            Field("dst_stride", 24, "bytes between destination rows"),
            Field("idx_addr", 32, "address of the uint16 row index list (if indexed)"),
        ),
    ),
    Format(
        0x20,
        "MATMUL",
        "Y = epilogue(X . W) for X[m,k] (activations, row stride x_stride elements) and "
        "W[k,n] (int8, packed in array tiles, see docs). Epilogue per output channel c: "
        "acc + bias[c], requantize by (mult[c], shift[c]), optional GELU in Q(gelu_frac), "
        "optional residual add of R (same layout as Y), optional score-weighted scatter-add "
        "into Y. Per-channel params (int32 bias, uint16 mult, uint8 shift, pad) at p_addr. "
        "With `expert` set (only inside EXPERT_LOOP) w_addr and p_addr are offset by "
        "e*expert_stride and m is the number of tokens routed to the current expert e.",
        (
            _X16,
            _Y16,
            _flag("gelu", "apply GELU to the requantized value (format Q(gelu_frac))"),
            _flag("residual", "add R[i,c] (at r_addr, row stride y_stride) with saturation"),
            _flag("expert", "expert-relative weights and m from the route table (EXPERT_LOOP)"),
            _flag("gather_x", "X row i is the token row idx_e[i] of the current expert"),
            _flag("scatter_acc", "Y[idx_e[i]] += round(v * score_e[i] / 2^15) (saturating)"),
            Field("m", 15, "rows of X and Y (ignored when `expert`)"),
            Field("k", 15, "reduction length", lo=1),
            Field("n", 15, "output channels", lo=1),
            Field("x_addr", 32, _ADDR_DOC),
            Field("x_stride", 16, "elements between rows of X", lo=1),
            Field("w_addr", 32, _ADDR_DOC + " of the packed weight tiles"),
            Field("p_addr", 32, _ADDR_DOC + " of the per-channel epilogue parameters"),
            Field("y_addr", 32, _ADDR_DOC),
            Field("y_stride", 16, "elements between rows of Y (and of R)", lo=1),
            Field("r_addr", 32, _ADDR_DOC + " of the residual R (if `residual`)"),
            Field("gelu_frac", 4, "fraction bits of the GELU input and output"),
        ),
    ),
    Format(
        0x30,
        "ATTN_QK",
        "Scores and online-softmax statistics of one head. For query i and key j: "
        "Z[i,j] = requant(sum_d Q[i,d] K[j,d]; mult, shift) as int16 in the base-2 domain "
        "with score_frac_bits fraction bits (scale and log2(e) folded into mult). While scores "
        "are produced, a running max b_i and running sum S_i = sum_j 2^(Z[i,j]-b_i) are kept in "
        "one pass over blocks of array_cols keys in increasing key order "
        "(numerics.softmax.online_softmax_stats with block = array_cols); the row statistics "
        "(b_i, reciprocal of S_i) are written to stats_addr (8 bytes per row). Z is written with "
        "row stride n.",
        (
            _X16,
            Field("m", 16, "queries", lo=1),
            Field("n", 16, "keys", lo=1),
            Field("d", 16, "head dimension", lo=1),
            Field("q_addr", 32, _ADDR_DOC),
            Field("q_stride", 16, "elements between rows of Q", lo=1),
            Field("k_addr", 32, _ADDR_DOC),
            Field("k_stride", 16, "elements between rows of K", lo=1),
            Field("z_addr", 32, _ADDR_DOC + " of the int16 score matrix"),
            Field("stats_addr", 32, _ADDR_DOC + " of the per-row softmax statistics"),
            Field("mult", 16, "requantize multiplier of the scores"),
            Field("shift", 6, _SHIFT_DOC),
        ),
    ),
    Format(
        0x31,
        "ATTN_AV",
        "Attention output of one head: O[i,:] = requant(sum_j P[i,j] V[j,:]; mult, shift) "
        "where P[i,j] = 2^(Z[i,j]-b_i) / S_i is formed from the scores and statistics of "
        "ATTN_QK while multiplying by V (normalisation applied during the product).",
        (
            _X16,
            _Y16,
            Field("m", 16, "queries", lo=1),
            Field("n", 16, "keys", lo=1),
            Field("d", 16, "head dimension", lo=1),
            Field("z_addr", 32, _ADDR_DOC + " of the int16 score matrix"),
            Field("stats_addr", 32, _ADDR_DOC + " of the per-row softmax statistics"),
            Field("v_addr", 32, _ADDR_DOC),
            Field("v_stride", 16, "elements between rows of V", lo=1),
            Field("o_addr", 32, _ADDR_DOC),
            Field("o_stride", 16, "elements between rows of O", lo=1),
            Field("mult", 16, "requantize multiplier of the output"),
            Field("shift", 6, _SHIFT_DOC),
        ),
    ),
    Format(
        0x40,
        "LAYERNORM",
        "Y[i,:] = LayerNorm(X[i,:]) * gamma + beta, computed in one pass (sum and sum of "
        "squares) with a reciprocal-square-root approximation. Parameters at p_addr: "
        "int64 eps (in units of D^2 * x_scale^2), uint16 mult, uint8 shift, 5 pad bytes, "
        "then d int16 gamma and d int32 beta.",
        (
            _X16,
            _Y16,
            Field("m", 16, "rows", lo=1),
            Field("d", 16, "normalised length", lo=1),
            Field("x_addr", 32, _ADDR_DOC),
            Field("x_stride", 16, "elements between rows of X", lo=1),
            Field("y_addr", 32, _ADDR_DOC),
            Field("y_stride", 16, "elements between rows of Y", lo=1),
            Field("p_addr", 32, _ADDR_DOC + " of the parameters"),
        ),
    ),
    Format(
        0x50,
        "GATE_TOPK",
        "MoE routing on the device. Reads int16 base-2 logits Z[m,e] (from a MATMUL with "
        "y16), computes the softmax over experts and keeps the top k per token (ties go to "
        "the lower expert index). Writes the route table at route_addr: uint32 count[e] for "
        "every expert, then for expert e at route_addr + 4*e_count + 4*m*e a list of count[e] "
        "entries (uint16 token, uint16 score in Q15), tokens in increasing order.",
        (
            Field("m", 16, "tokens (also the capacity of each expert's list)", lo=1),
            Field("e", 8, "experts", lo=1),
            Field("k", 4, "experts kept per token", lo=1),
            Field("z_addr", 32, _ADDR_DOC + " of the logits"),
            Field("route_addr", 32, _ADDR_DOC + " of the route table"),
        ),
    ),
    Format(
        0x60,
        "EXPERT_LOOP",
        "Run the next `body` instructions once for every expert e in 0..e-1 whose count in "
        "the route table is non-zero, in increasing e; experts with no tokens are skipped. "
        "Inside the body, MATMULs with `expert` set use the route list of e. Loops do not nest.",
        (
            Field("e", 8, "experts", lo=1),
            Field("body", 8, "instructions in the loop body", lo=1),
            Field("capacity", 16, "capacity of each route list (the m of GATE_TOPK)", lo=1),
            Field("route_addr", 32, _ADDR_DOC + " of the route table"),
            Field("expert_stride", 32, "bytes between consecutive experts' weight blocks"),
        ),
    ),
)

#: Memory layouts the instructions read and write; rendered into docs/isa.md.
DATA_LAYOUTS = """\
All multi-byte values are little endian. Activations are signed int8 or int16 (per instruction
flags `x16`/`y16`), row major, with a row stride given in elements.

**Packed weights (MATMUL `w_addr`).** W[k,n] int8 is cut into tiles of `array_rows` (k) x
`array_cols` (n), zero padded at the edges, and stored output-tile major: for nt in
0..ceil(n/cols)-1, for kt in 0..ceil(k/rows)-1, the tile's rows (k) each of `array_cols` bytes.
The sequencer computing output columns nt streams its tiles as one burst. The layout depends on
the array size, which is why a binary carries its HardwareConfig hash.

**Epilogue parameters (MATMUL `p_addr`).** n records of 8 bytes: int32 bias, uint16 mult,
uint8 shift, 1 pad byte. Output channel c: v = requantize(wrap(acc + bias, acc_width), mult,
shift, out_bits); if `gelu`: v = gelu(v, gelu_frac); if `residual`: v = saturate(v + R[i,c]);
if `scatter_acc`: Y[t,c] = saturate(Y[t,c] + round_shift(v * score, 15)), else Y[i,c] = v.

**LayerNorm parameters (LAYERNORM `p_addr`).** int64 eps, uint16 mult, uint8 shift, 5 pad
bytes, then d int16 gamma, then d int32 beta.

**Softmax statistics (ATTN_QK/ATTN_AV `stats_addr`).** 8 bytes per query row, the layout of
`edgemoe.hw.numerics.softmax.pack_stats`.

**Route table (GATE_TOPK/EXPERT_LOOP `route_addr`).** uint32 count[e] for e in 0..E-1, then E
lists of `capacity` entries of 4 bytes (uint16 token, uint16 score Q15); list e starts at
route_addr + 4*E + 4*capacity*e and holds count[e] valid entries in increasing token order.

**Expert weight blocks (EXPERT_LOOP `expert_stride`).** The body MATMULs address expert 0's
weights and parameters; expert e's are `e * expert_stride` bytes further on.
"""

BY_OPCODE: dict[int, Format] = {f.opcode: f for f in FORMATS}
BY_MNEMONIC: dict[str, Format] = {f.mnemonic: f for f in FORMATS}


@dataclass(frozen=True)
class Instruction:
    """A decoded instruction: mnemonic plus every field of its format (missing ones are 0)."""

    op: str
    fields: Mapping[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> int:
        return self.fields[name]

    @property
    def format(self) -> Format:
        return BY_MNEMONIC[self.op]


def make(op: str, **fields: int) -> Instruction:
    """Build an instruction, filling unspecified fields with 0 and checking every value."""
    fmt = _format_of(op, None)
    unknown = set(fields) - {f.name for f in fmt.fields}
    if unknown:
        raise IsaError(f"{op}: unknown field(s) {sorted(unknown)}")
    full = {f.name: int(fields.get(f.name, 0)) for f in fmt.fields}
    insn = Instruction(op, full)
    check(insn, None)
    return insn


def _where(index: int | None) -> str:
    return f"instruction {index}" if index is not None else "instruction"


def _format_of(op: str, index: int | None) -> Format:
    try:
        return BY_MNEMONIC[op]
    except KeyError:
        raise IsaError(f"{_where(index)}: unknown mnemonic {op!r}") from None


def check(insn: Instruction, index: int | None) -> None:
    """Raise :class:`IsaError` naming the instruction index and field for any illegal value."""
    fmt = _format_of(insn.op, index)
    for f in fmt.fields:
        v = insn.fields.get(f.name, 0)
        if not isinstance(v, int) or v < 0 or v >= (1 << f.width):
            raise IsaError(
                f"{_where(index)} ({fmt.mnemonic}): field '{f.name}' = {v!r} does not fit "
                f"in {f.width} unsigned bits"
            )
        if not f.lo <= v <= f.max_value:
            raise IsaError(
                f"{_where(index)} ({fmt.mnemonic}): field '{f.name}' = {v} out of range "
                f"[{f.lo}, {f.max_value}]"
            )
    if fmt.mnemonic == "GATE_TOPK" and insn.fields["k"] > insn.fields["e"]:
        raise IsaError(f"{_where(index)} (GATE_TOPK): field 'k' = {insn.fields['k']} exceeds e")


def encode(insn: Instruction, index: int | None = None) -> bytes:
    check(insn, index)
    fmt = insn.format
    word = fmt.opcode
    for f in fmt.fields:
        word |= insn.fields.get(f.name, 0) << fmt.positions[f.name]
    return word.to_bytes(INSTRUCTION_BYTES, "little")


def decode(raw: bytes, index: int | None = None) -> Instruction:
    if len(raw) != INSTRUCTION_BYTES:
        raise IsaError(f"{_where(index)}: {len(raw)} bytes, expected {INSTRUCTION_BYTES}")
    word = int.from_bytes(raw, "little")
    opcode = word & ((1 << OPCODE_BITS) - 1)
    fmt = BY_OPCODE.get(opcode)
    if fmt is None:
        raise IsaError(f"{_where(index)}: unknown opcode 0x{opcode:02x}")
    if word >> fmt.used_bits:
        raise IsaError(
            f"{_where(index)} ({fmt.mnemonic}): reserved bits [{INSTRUCTION_BITS - 1}:"
            f"{fmt.used_bits}] are not zero"
        )
    fields = {
        f.name: (word >> fmt.positions[f.name]) & ((1 << f.width) - 1) for f in fmt.fields
    }
    insn = Instruction(fmt.mnemonic, fields)
    check(insn, index)
    return insn


def encode_program(insns: Iterable[Instruction]) -> bytes:
    return b"".join(encode(insn, i) for i, insn in enumerate(insns))


def decode_program(raw: bytes) -> list[Instruction]:
    if len(raw) % INSTRUCTION_BYTES:
        raise IsaError(
            f"instruction stream of {len(raw)} bytes is not a multiple of {INSTRUCTION_BYTES}"
        )
    return [
        decode(raw[i : i + INSTRUCTION_BYTES], i // INSTRUCTION_BYTES)
        for i in range(0, len(raw), INSTRUCTION_BYTES)
    ]


def format_instruction(insn: Instruction) -> str:
    """One-line assembly text, e.g. ``MATMUL x16 y16 m=129 k=192 x_addr=0x00001000 ...``."""
    parts = [insn.op]
    for f in insn.format.fields:
        v = insn.fields.get(f.name, 0)
        if f.width == 1:
            if v:
                parts.append(f.name)
        elif f.is_address:
            parts.append(f"{f.name}=0x{v:08x}")
        else:
            parts.append(f"{f.name}={v}")
    return " ".join(parts)


def disassemble(insns: Iterable[Instruction], comments: Mapping[int, str] | None = None) -> str:
    lines = []
    for i, insn in enumerate(insns):
        text = f"{i:6d}  {format_instruction(insn)}"
        if comments and i in comments:
            text += f"  ; {comments[i]}"
        lines.append(text)
    return "\n".join(lines) + ("\n" if lines else "")
