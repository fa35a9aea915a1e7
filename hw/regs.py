"""The AXI4-Lite register map: what the host (and every backend) sees of the device.

The host runtime drives the golden model, the RTL simulation and (later) a board only through
these registers and the DRAM image, so one driver serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str  # "rw", "ro" or "wo"
    doc: str


REGISTERS: tuple[Register, ...] = (
    Register("CTRL", 0x00, "wo", "bit 0: start (self-clearing); bit 1: soft reset"),
    Register("STATUS", 0x04, "ro", "bit 0: busy; bit 1: done; bit 2: error"),
    Register("ERROR_CODE", 0x08, "ro", "why the device stopped with an error (see ErrorCode)"),
    Register("ERROR_PC", 0x0C, "ro", "index of the instruction that raised the error"),
    Register("INSN_BASE", 0x10, "rw", "DRAM byte address of the first instruction"),
    Register("INSN_COUNT", 0x14, "rw", "number of instructions in the stream"),
    Register("CYCLES_LO", 0x18, "ro", "cycles from start to done, low 32 bits"),
    Register("CYCLES_HI", 0x1C, "ro", "cycles from start to done, high 32 bits"),
    Register("MAC_CYCLES_LO", 0x20, "ro", "cycles in which the MAC array did useful work, low"),
    Register("MAC_CYCLES_HI", 0x24, "ro", "cycles in which the MAC array did useful work, high"),
    Register("DRAM_RD_BYTES_LO", 0x28, "ro", "bytes read from DRAM, low 32 bits"),
    Register("DRAM_RD_BYTES_HI", 0x2C, "ro", "bytes read from DRAM, high 32 bits"),
    Register("DRAM_WR_BYTES_LO", 0x30, "ro", "bytes written to DRAM, low 32 bits"),
    Register("DRAM_WR_BYTES_HI", 0x34, "ro", "bytes written to DRAM, high 32 bits"),
    Register("INSN_RETIRED", 0x38, "ro", "instructions retired (loop bodies count per pass)"),
    Register("CONFIG_HASH_LO", 0x40, "ro", "low 32 bits of the HardwareConfig hash"),
    Register("CONFIG_HASH_HI", 0x44, "ro", "high 32 bits of the HardwareConfig hash"),
)

BY_NAME: dict[str, Register] = {r.name: r for r in REGISTERS}

CTRL_START = 1 << 0
CTRL_RESET = 1 << 1
STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1
STATUS_ERROR = 1 << 2


class ErrorCode(IntEnum):
    """Values of ERROR_CODE; the message the host prints for each is the docstring table."""

    NONE = 0
    ILLEGAL_OPCODE = 1
    ILLEGAL_FIELD = 2
    DRAM_RANGE = 3
    NESTED_LOOP = 4
    EXPERT_OUTSIDE_LOOP = 5
    NO_END = 6
    #: The instruction is legal but this hardware build does not implement it yet (RTL only).
    UNIMPLEMENTED = 7


ERROR_TEXT: dict[ErrorCode, str] = {
    ErrorCode.NONE: "no error",
    ErrorCode.ILLEGAL_OPCODE: "unknown opcode",
    ErrorCode.ILLEGAL_FIELD: "field value out of range",
    ErrorCode.DRAM_RANGE: "DRAM access outside the memory",
    ErrorCode.NESTED_LOOP: "EXPERT_LOOP inside an EXPERT_LOOP body",
    ErrorCode.EXPERT_OUTSIDE_LOOP: "expert-relative instruction outside an EXPERT_LOOP",
    ErrorCode.NO_END: "instruction stream ended without END",
    ErrorCode.UNIMPLEMENTED: "instruction not implemented by this hardware build",
}
