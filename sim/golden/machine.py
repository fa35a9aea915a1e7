"""GoldenMachine: the bit-exact ISA interpreter behind the register map of :mod:`edgemoe.hw.regs`.

The host drives it exactly as it drives the RTL: write INSN_BASE and INSN_COUNT, put the program
and data in DRAM, write CTRL.start, read STATUS and the counters. Starting runs the whole program
synchronously (STATUS is never seen busy). It fetches and decodes each instruction from DRAM when
it reaches it, like the hardware, so errors carry the index of the instruction that raised them.

The model is not cycle accurate: CYCLES and MAC_CYCLES stay 0 (the analytical cycle model and the
RTL provide timing). DRAM_RD_BYTES / DRAM_WR_BYTES count the bytes each instruction semantically
reads and writes (operands, packed weights with their padding, parameters, route lists and
counts; instruction fetches are not counted).

Control semantics chosen where the ISA text leaves room (the hardware-friendly reading):

- END retires (it is counted) and stops; STATUS = done.
- Reaching index INSN_COUNT or beyond (the stream ran out, including a loop body that runs past
  it, executed or skipped) is ``NO_END`` with ERROR_PC = INSN_COUNT.
- EXPERT_LOOP reads the E counts once, when it executes; a count above ``capacity`` is
  ``ILLEGAL_FIELD``. With no active expert the body is skipped entirely. END inside a body stops
  the program; an EXPERT_LOOP inside a body is ``NESTED_LOOP``.
- An error sets STATUS.error (not done), ERROR_CODE and ERROR_PC; DRAM keeps whatever the
  instructions before the faulting one (and, for multi-operand writes, the faulting one) wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgemoe.hw import layouts
from edgemoe.hw.blas import single_blas_thread
from edgemoe.hw.config import INSTRUCTION_BYTES, HardwareConfig
from edgemoe.hw.isa import BY_OPCODE, Instruction, IsaError, decode
from edgemoe.hw.regs import (
    CTRL_RESET,
    CTRL_START,
    REGISTERS,
    STATUS_DONE,
    STATUS_ERROR,
    ErrorCode,
    Register,
)

from .memory import DeviceError, Memory, Written
from .ops import OPS, Context, ExpertPass
from .trace import TraceEntry, digest_writes

_MASK32 = 0xFFFF_FFFF
_BY_OFFSET = {r.offset: r for r in REGISTERS}


@dataclass
class _Loop:
    """A running EXPERT_LOOP: body [start, end) and the experts still to run."""

    start: int
    end: int
    passes: list[ExpertPass]


class _Fault(Exception):
    """A DeviceError at instruction ``pc``."""

    def __init__(self, pc: int, error: DeviceError) -> None:
        super().__init__(f"instruction {pc}: {error}")
        self.pc = pc
        self.error = error


class _Stop(Exception):
    """END reached (control flow, not an error)."""


class GoldenMachine:
    """Bit-exact interpreter of an instruction stream over a DRAM image.

    ``dram`` is the ``uint8`` memory (``dram_bytes`` long, by default ``cfg.dram_bytes``). With
    ``trace=True`` every run fills :attr:`trace` with one :class:`TraceEntry` per executed
    instruction; ``on_retire`` (if given) is called with each entry as its instruction retires.
    """

    def __init__(
        self,
        cfg: HardwareConfig,
        dram_bytes: int | None = None,
        *,
        trace: bool = False,
        on_retire: Callable[[TraceEntry], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.dram: npt.NDArray[np.uint8] = np.zeros(
            cfg.dram_bytes if dram_bytes is None else dram_bytes, dtype=np.uint8
        )
        self.trace_enabled = trace
        self.on_retire = on_retire
        self.trace: list[TraceEntry] = []
        #: Text of the last error (names the instruction, operand or field), None after success.
        self.error_message: str | None = None
        self._decoded: dict[bytes, Instruction] = {}
        self._regs: dict[str, int] = {"INSN_BASE": 0, "INSN_COUNT": 0}
        self._reset()

    # ------------------------------------------------------------------ host interface
    def write_dram(self, addr: int, data: bytes | npt.NDArray[np.uint8]) -> None:
        raw = np.frombuffer(data, dtype=np.uint8)
        if addr < 0 or addr + raw.size > self.dram.size:
            raise ValueError(f"write_dram: [0x{addr:x}, +{raw.size}) outside the DRAM")
        self.dram[addr : addr + raw.size] = raw

    def read_dram(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.dram.size:
            raise ValueError(f"read_dram: [0x{addr:x}, +{n}) outside the DRAM")
        return self.dram[addr : addr + n].tobytes()

    def write_reg(self, offset: int, value: int) -> None:
        """AXI4-Lite write: read-only registers ignore writes, like the hardware."""
        reg = self._register(offset)
        value &= _MASK32
        if reg.name == "CTRL":
            if value & CTRL_RESET:
                self._reset()
            if value & CTRL_START:
                self._run()
        elif reg.access == "rw":
            self._regs[reg.name] = value

    def read_reg(self, offset: int) -> int:
        """AXI4-Lite read: write-only registers read as 0."""
        reg = self._register(offset)
        if reg.access == "wo":
            return 0
        name = reg.name
        if name.endswith(("_LO", "_HI")):
            value = self._wide(name[:-3])
            return (value >> 32) & _MASK32 if name.endswith("_HI") else value & _MASK32
        return self._regs[name]

    # ------------------------------------------------------------------ registers
    @staticmethod
    def _register(offset: int) -> Register:
        try:
            return _BY_OFFSET[offset]
        except KeyError:
            raise ValueError(f"no register at offset 0x{offset:02x}") from None

    def _wide(self, name: str) -> int:
        if name == "CONFIG_HASH":
            return int(self.cfg.config_hash(), 16)
        if name == "DRAM_RD_BYTES":
            return self._mem.rd_bytes
        if name == "DRAM_WR_BYTES":
            return self._mem.wr_bytes
        return 0  # CYCLES, MAC_CYCLES: not modelled

    def _reset(self) -> None:
        self._regs.update(STATUS=0, ERROR_CODE=int(ErrorCode.NONE), ERROR_PC=0, INSN_RETIRED=0)
        self._mem = Memory(self.dram)
        self.trace = []
        self.error_message = None

    # ------------------------------------------------------------------ execution
    def _run(self) -> None:
        self._reset()
        try:
            with single_blas_thread():
                self._execute()
        except _Stop:
            self._regs["STATUS"] = STATUS_DONE
        except _Fault as fault:
            self._regs.update(
                STATUS=STATUS_ERROR, ERROR_CODE=int(fault.error.code), ERROR_PC=fault.pc
            )
            self.error_message = str(fault)

    def _fetch(self, pc: int) -> Instruction:
        addr = self._regs["INSN_BASE"] + INSTRUCTION_BYTES * pc
        if addr + INSTRUCTION_BYTES > self.dram.size:
            raise DeviceError(ErrorCode.DRAM_RANGE, f"instruction fetch at 0x{addr:x}")
        raw = self.dram[addr : addr + INSTRUCTION_BYTES].tobytes()
        insn = self._decoded.get(raw)
        if insn is None:
            if raw[0] not in BY_OPCODE:
                raise DeviceError(ErrorCode.ILLEGAL_OPCODE, f"opcode 0x{raw[0]:02x}")
            try:
                insn = decode(raw, pc)
            except IsaError as e:
                raise DeviceError(ErrorCode.ILLEGAL_FIELD, str(e)) from None
            self._decoded[raw] = insn
        return insn

    def _execute(self) -> None:
        count = self._regs["INSN_COUNT"]
        ctx = Context(self.cfg, self._mem)
        loop: _Loop | None = None
        pc = 0
        while True:
            if loop is not None and pc == loop.end:
                loop.passes.pop(0)
                if loop.passes:
                    pc = loop.start
                else:
                    loop = None
                continue
            if pc >= count:
                raise _Fault(count, DeviceError(ErrorCode.NO_END, "stream ended without END"))
            ctx.expert = loop.passes[0] if loop is not None else None
            try:
                insn = self._fetch(pc)
                if insn.op == "END":
                    self._retire(pc, insn.op, ctx, [])
                    raise _Stop
                if insn.op == "EXPERT_LOOP":
                    if loop is not None:
                        raise DeviceError(ErrorCode.NESTED_LOOP, "EXPERT_LOOP in a loop body")
                    passes = self._expert_passes(insn)
                    self._retire(pc, insn.op, ctx, [])
                    loop = _Loop(pc + 1, pc + 1 + insn["body"], passes) if passes else None
                    pc += 1 if passes else 1 + insn["body"]
                    continue
                written = OPS[insn.op](ctx, insn.fields) if insn.op in OPS else []
            except DeviceError as e:
                raise _Fault(pc, e) from e
            self._retire(pc, insn.op, ctx, written)
            pc += 1

    def _expert_passes(self, insn: Instruction) -> list[ExpertPass]:
        e, cap, addr = insn["e"], insn["capacity"], insn["route_addr"]
        raw = self._mem.read_block("EXPERT_LOOP counts", addr, layouts.ROUTE_COUNT_BYTES * e)
        counts = layouts.unpack_route_counts(raw, e)
        if (counts > cap).any():
            bad = int(np.argmax(counts > cap))
            raise DeviceError(
                ErrorCode.ILLEGAL_FIELD,
                f"EXPERT_LOOP: count[{bad}] = {int(counts[bad])} exceeds capacity {cap}",
            )
        return [
            ExpertPass(
                expert=int(x),
                count=int(counts[x]),
                offset=int(x) * insn["expert_stride"],
                list_addr=addr + layouts.route_list_offset(e, cap, int(x)),
            )
            for x in np.flatnonzero(counts)
        ]

    def _retire(self, pc: int, op: str, ctx: Context, written: list[Written]) -> None:
        self._regs["INSN_RETIRED"] += 1
        if not (self.trace_enabled or self.on_retire):
            return
        expert = ctx.expert.expert if ctx.expert is not None else None
        entry = TraceEntry(pc, op, expert, digest_writes(self.dram, written))
        if self.trace_enabled:
            self.trace.append(entry)
        if self.on_retire is not None:
            self.on_retire(entry)
