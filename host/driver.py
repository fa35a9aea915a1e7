"""Register-level driver: start a program, wait for it, read the counters.

Written against :mod:`edgemoe.hw.regs` only, so it drives any backend (golden model, RTL
simulation, board) the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgemoe.hw import isa, regs
from edgemoe.hw.config import HardwareConfig

from .backends import Device
from .errors import DeviceFault

_R = regs.BY_NAME


@dataclass
class Counters:
    cycles: int
    mac_cycles: int
    dram_read_bytes: int
    dram_write_bytes: int
    instructions_retired: int


class Driver:
    def __init__(self, device: Device) -> None:
        self.dev = device

    def read(self, name: str) -> int:
        return self.dev.read_reg(_R[name].offset)

    def write(self, name: str, value: int) -> None:
        self.dev.write_reg(_R[name].offset, value)

    def read64(self, name: str) -> int:
        return self.read(name + "_LO") | (self.read(name + "_HI") << 32)

    def config_hash(self) -> str:
        return f"{self.read('CONFIG_HASH_HI'):08x}{self.read('CONFIG_HASH_LO'):08x}"

    def check_hardware(self, cfg: HardwareConfig) -> None:
        got = self.config_hash()
        if got != cfg.config_hash():
            raise DeviceFault(f"device reports config hash {got}, expected {cfg.config_hash()} ({cfg.name})")

    def _mnemonic(self, insn_base: int, insn_count: int, pc: int) -> str:
        """" (MNEMONIC)" of the instruction at ``pc``, read back from the device's DRAM."""
        if pc >= insn_count:
            return " (past the end of the stream)"
        try:
            opcode = self.dev.read_dram(insn_base + isa.INSTRUCTION_BYTES * pc, 1)[0]
        except (ValueError, OSError):
            return ""
        fmt = isa.BY_OPCODE.get(opcode)
        return f" ({fmt.mnemonic})" if fmt else f" (opcode 0x{opcode:02x})"

    def run(self, insn_base: int, insn_count: int, timeout_s: float = 3600.0) -> Counters:
        """Start the program and poll STATUS until done; a device error raises DeviceFault."""
        self.write("INSN_BASE", insn_base)
        self.write("INSN_COUNT", insn_count)
        self.write("CTRL", regs.CTRL_START)
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.read("STATUS")
            if status & regs.STATUS_ERROR:
                code = regs.ErrorCode(self.read("ERROR_CODE"))
                pc = self.read("ERROR_PC")
                raise DeviceFault(
                    f"device error at instruction {pc}{self._mnemonic(insn_base, insn_count, pc)}: "
                    f"{regs.ERROR_TEXT[code]} ({code.name})"
                )
            if status & regs.STATUS_DONE:
                break
            if time.monotonic() > deadline:
                raise DeviceFault(f"device did not finish within {timeout_s:.0f} s (STATUS=0x{status:x})")
            time.sleep(0.001)
        return Counters(
            cycles=self.read64("CYCLES"),
            mac_cycles=self.read64("MAC_CYCLES"),
            dram_read_bytes=self.read64("DRAM_RD_BYTES"),
            dram_write_bytes=self.read64("DRAM_WR_BYTES"),
            instructions_retired=self.read("INSN_RETIRED"),
        )
