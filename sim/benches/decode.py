"""cocotb bench of ``em_decode``: opcode, error flags and every field equal ``isa.decode``.

The reference is :func:`edgemoe.hw.isa.decode`, the decoder the golden model runs: a word it
rejects with "unknown opcode" must raise ``illegal_opcode`` (ERROR_CODE ILLEGAL_OPCODE), any other
:class:`~edgemoe.hw.isa.IsaError` must raise ``illegal_field`` (ILLEGAL_FIELD), and for a word it
accepts every field port ``<op>_<field>`` must equal the decoded field. The port list itself is
derived from :data:`edgemoe.hw.isa.FORMATS`, so a field added in Python without its RTL port (or
with another width) fails here by name.

Words: legal instructions of every format built with ``isa.make``/``isa.encode`` (fields at their
bounds and random), the same with one field pushed outside its range or GATE_TOPK's k > e,
reserved bits set, unknown opcodes, and random 256-bit words. They stream through the valid/ready
handshake with idle input cycles and output back-pressure; outputs are checked in order together
with the instruction index passed through ``in_pc``/``out_pc``.
Run it through :class:`edgemoe.sim.runner.RtlRunner` (``tests/sim/test_rtl_decode.py``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from edgemoe.hw import isa

OPCODE_MASK = (1 << isa.OPCODE_BITS) - 1
#: Words per run at full rate: legal ones of each format, bad ones of each kind, random ones.
LEGAL_PER_FORMAT = 1000
ILLEGAL_PER_KIND = 500
RANDOM_WORDS = 1000
#: The back-pressure runs replay a smaller mix: the handshake, not the decode, is under test.
BACKPRESSURE_SCALE = 0.25


def op_port(fmt: isa.Format) -> str:
    """Name of the one-hot opcode output of ``fmt``."""
    return f"is_{fmt.mnemonic.lower()}"


def field_port(fmt: isa.Format, f: isa.Field) -> str:
    """Name of the output that carries field ``f`` of ``fmt``."""
    return f"{fmt.mnemonic.lower()}_{f.name}"


@dataclass
class Expected:
    """What ``isa.decode`` says about one word, in the decoder's output terms."""

    op: str | None  # mnemonic of the opcode (None if unknown)
    illegal_opcode: bool
    illegal_field: bool
    fields: dict[str, int] = field(default_factory=dict)  # only for legal words


def reference(word: int) -> Expected:
    """Classify ``word`` with ``isa.decode``; the message tells the two error codes apart, as
    the golden model's fetch does."""
    try:
        insn = isa.decode(word.to_bytes(isa.INSTRUCTION_BITS // 8, "little"))
    except isa.IsaError as e:
        if "unknown opcode" in str(e):
            return Expected(None, True, False)
        return Expected(isa.BY_OPCODE[word & OPCODE_MASK].mnemonic, False, True)
    return Expected(insn.op, False, False, dict(insn.fields))


class TB:
    """Owns the clock and reset of one ``em_decode`` instance and drives its two handshakes."""

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.pc_width = len(dut.in_pc)
        assert len(dut.in_insn) == isa.INSTRUCTION_BITS, f"in_insn has {len(dut.in_insn)} bits"
        for fmt in isa.FORMATS:
            assert hasattr(dut, op_port(fmt)), f"no output {op_port(fmt)} for {fmt.mnemonic}"
            for f in fmt.fields:
                name = field_port(fmt, f)
                assert hasattr(dut, name), f"no output {name} for {fmt.mnemonic}.{f.name}"
                width = len(getattr(dut, name))
                assert width == f.width, f"{name} has {width} bits, the ISA says {f.width}"
        self.log.info("PC_WIDTH=%d, %d formats", self.pc_width, len(isa.FORMATS))
        Clock(dut.clk, 10, unit="ns").start()
        dut.in_valid.value = 0
        dut.out_ready.value = 0

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid is set right after reset"

    def check(self, index: int, word: int, pc: int) -> None:
        """Compare the outputs on the pins now with the reference for ``word``."""
        dut = self.dut
        want = reference(word)
        where = f"word {index} (0x{word:064x})"
        got_pc = int(dut.out_pc.value)
        assert got_pc == pc, f"{where}: out_pc = {got_pc}, want {pc}"
        flags = (int(dut.illegal_opcode.value), int(dut.illegal_field.value))
        assert flags == (want.illegal_opcode, want.illegal_field), (
            f"{where}: illegal_opcode, illegal_field = {flags}, want "
            f"{(int(want.illegal_opcode), int(want.illegal_field))}"
        )
        for fmt in isa.FORMATS:
            is_op = int(getattr(dut, op_port(fmt)).value)
            assert is_op == (fmt.mnemonic == want.op), f"{where}: {op_port(fmt)} = {is_op}"
        if want.op is None or want.illegal_field:
            return  # fields carry no meaning
        fmt = isa.BY_MNEMONIC[want.op]
        for f in fmt.fields:
            got = int(getattr(dut, field_port(fmt, f)).value)
            assert got == want.fields[f.name], (
                f"{where}: {field_port(fmt, f)} = {got}, want {want.fields[f.name]}\n"
                f"  {isa.format_instruction(isa.Instruction(want.op, want.fields))}"
            )

    async def stream(self, words: list[int], idle: float = 0.0, stall: float = 0.0) -> None:
        """Send every word and check every output in order.

        ``idle`` is the probability that the source holds ``in_valid`` low in a cycle (its data
        pins then carry garbage), ``stall`` the probability that the sink holds ``out_ready`` low.
        """
        dut = self.dut
        pcs = [random.getrandbits(self.pc_width) for _ in words]
        sent = received = cycles = 0
        while received < len(words):
            cycles += 1
            assert cycles < 10 * len(words) + 100, f"stuck: {sent} sent, {received} received"
            await FallingEdge(dut.clk)
            valid = sent < len(words) and random.random() >= idle
            dut.in_insn.value = words[sent] if valid else random.getrandbits(isa.INSTRUCTION_BITS)
            dut.in_pc.value = pcs[sent] if valid else random.getrandbits(self.pc_width)
            dut.in_valid.value = int(valid)
            dut.out_ready.value = int(random.random() >= stall)
            await ReadOnly()
            if valid and dut.in_ready.value:
                sent += 1
            if dut.out_valid.value and dut.out_ready.value:
                self.check(received, words[received], pcs[received])
                received += 1
        self.log.info(
            "%d words in %d cycles (idle=%.2f stall=%.2f)", len(words), cycles, idle, stall
        )
        if idle == 0.0 and stall == 0.0:
            # One instruction per cycle after the single register stage.
            assert cycles == len(words) + 1, f"{len(words)} words took {cycles} cycles"


# --------------------------------------------------------------------------- words
def _encode(op: str, fields: dict[str, int]) -> int:
    return int.from_bytes(isa.encode(isa.make(op, **fields)), "little")


def _value(rng: random.Random, f: isa.Field) -> int:
    """A legal value of ``f``: often a bound or next to one, else uniform."""
    lo, hi = f.lo, f.max_value
    pick = rng.random()
    if pick < 0.15:
        return lo
    if pick < 0.3:
        return hi
    if pick < 0.4:
        return min(lo + 1, hi) if rng.random() < 0.5 else max(hi - 1, lo)
    return rng.randint(lo, hi)


def legal_word(rng: random.Random, fmt: isa.Format) -> int:
    fields = {f.name: _value(rng, f) for f in fmt.fields}
    if fmt.mnemonic == "GATE_TOPK" and fields["k"] > fields["e"]:
        fields["k"] = rng.randint(fmt.field("k").lo, fields["e"])
    return _encode(fmt.mnemonic, fields)


def _set_field(word: int, fmt: isa.Format, f: isa.Field, value: int) -> int:
    """``word`` with field ``f`` replaced by ``value`` (which ``isa.make`` would refuse)."""
    pos, mask = fmt.positions[f.name], (1 << f.width) - 1
    return (word & ~(mask << pos)) | ((value & mask) << pos)


def out_of_range_word(rng: random.Random, fmt: isa.Format) -> int | None:
    """A legal word of ``fmt`` with one range-limited field just or far outside its range."""
    limited = [f for f in fmt.fields if f.lo > 0 or f.max_value < (1 << f.width) - 1]
    if not limited:
        return None
    f = rng.choice(limited)
    bad = []
    if f.lo > 0:
        bad += [f.lo - 1, rng.randint(0, f.lo - 1)]
    if f.max_value < (1 << f.width) - 1:
        bad += [f.max_value + 1, rng.randint(f.max_value + 1, (1 << f.width) - 1)]
    return _set_field(legal_word(rng, fmt), fmt, f, rng.choice(bad))


def topk_k_above_e(rng: random.Random) -> int:
    """GATE_TOPK with every field in range but k > e (isa.check's cross-field rule)."""
    fmt = isa.BY_MNEMONIC["GATE_TOPK"]
    word = legal_word(rng, fmt)
    k = rng.randint(fmt.field("k").lo + 1, fmt.field("k").max_value)
    e = k - 1 if rng.random() < 0.5 else rng.randint(fmt.field("e").lo, k - 1)
    word = _set_field(word, fmt, fmt.field("k"), k)
    return _set_field(word, fmt, fmt.field("e"), e)


def reserved_word(rng: random.Random, fmt: isa.Format) -> int | None:
    """A legal word of ``fmt`` with one or many reserved bits set."""
    free = isa.INSTRUCTION_BITS - fmt.used_bits
    if free == 0:
        return None
    junk = 1 << rng.randrange(free) if rng.random() < 0.5 else rng.getrandbits(free) or 1
    return legal_word(rng, fmt) | (junk << fmt.used_bits)


def unknown_opcode_word(rng: random.Random) -> int:
    """Random fields behind an opcode the ISA does not have, often next to one it has."""
    near = [(f.opcode + d) & OPCODE_MASK for f in isa.FORMATS for d in (-1, 1)]
    choices = [op for op in range(OPCODE_MASK + 1) if op not in isa.BY_OPCODE]
    near = [op for op in near if op not in isa.BY_OPCODE]
    op = rng.choice(near if rng.random() < 0.3 else choices)
    return (rng.getrandbits(isa.INSTRUCTION_BITS) & ~OPCODE_MASK) | op


def random_known_word(rng: random.Random) -> int:
    """A known opcode with random bits in its used range only: fields land anywhere."""
    fmt = rng.choice(isa.FORMATS)
    body = rng.getrandbits(fmt.used_bits) & ~OPCODE_MASK
    return body | fmt.opcode


def edge_words() -> list[int]:
    """All zeros, all ones, and every opcode with its used bits all zero or all one."""
    ones = (1 << isa.INSTRUCTION_BITS) - 1
    words = [0, ones]
    for fmt in isa.FORMATS:
        used = (1 << fmt.used_bits) - 1
        words += [fmt.opcode, used & ~OPCODE_MASK | fmt.opcode, ones & ~OPCODE_MASK | fmt.opcode]
    return words


def all_words(rng: random.Random, scale: float = 1.0) -> list[int]:
    """Every kind of word (``scale`` times the default counts), shuffled so that legal and
    illegal ones follow each other."""
    words = edge_words()
    for fmt in isa.FORMATS:
        words += [legal_word(rng, fmt) for _ in range(int(LEGAL_PER_FORMAT * scale))]
    illegal_per_kind = int(ILLEGAL_PER_KIND * scale)
    for _ in range(illegal_per_kind):
        fmt = rng.choice(isa.FORMATS)
        for w in (out_of_range_word(rng, fmt), reserved_word(rng, fmt)):
            if w is not None:
                words.append(w)
        words.append(unknown_opcode_word(rng))
    words += [topk_k_above_e(rng) for _ in range(illegal_per_kind // 4)]
    words += [random_known_word(rng) for _ in range(int(RANDOM_WORDS * scale))]
    words += [rng.getrandbits(isa.INSTRUCTION_BITS) for _ in range(int(RANDOM_WORDS * scale))]
    rng.shuffle(words)
    return words


# --------------------------------------------------------------------------- tests
@cocotb.test(timeout_time=1, timeout_unit="ms")
async def edge_cases(dut: SimHandleBase) -> None:
    tb = TB(dut)
    await tb.reset()
    await tb.stream(edge_words())


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)]))
async def random_stream(dut: SimHandleBase, idle: float, stall: float) -> None:
    tb = TB(dut)
    await tb.reset()
    scale = 1.0 if idle == stall == 0.0 else BACKPRESSURE_SCALE
    words = all_words(random.Random(random.getrandbits(32)), scale)
    await tb.stream(words, idle=idle, stall=stall)
