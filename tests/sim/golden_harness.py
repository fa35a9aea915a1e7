"""Test harness for the golden model: place data, run a program, read results back.

The helpers here move data with plain NumPy slicing and Python loops, independently of the
golden model's Memory class, so the tests check its strides, gathers and scatters.
"""

from __future__ import annotations

import numpy as np

from edgemoe.hw import isa, regs
from edgemoe.hw.config import HardwareConfig
from edgemoe.sim.golden import GoldenMachine

R = regs.BY_NAME
DRAM_BYTES = 8 << 20
PROGRAM_ADDR = 0x100


class Harness:
    """A GoldenMachine with a bump allocator (64-byte aligned) above the program area."""

    def __init__(self, cfg: HardwareConfig, trace: bool = True, dram_bytes: int = DRAM_BYTES) -> None:
        self.cfg = cfg
        self.m = GoldenMachine(cfg, dram_bytes, trace=trace)
        self.top = 0x10000

    # ------------------------------------------------------------------ placement
    def alloc(self, nbytes: int, fill: int = 0) -> int:
        addr = self.top
        self.top = (addr + max(nbytes, 1) + 63) & ~63
        self.m.dram[addr : addr + nbytes] = fill
        return addr

    def put(self, data: bytes) -> int:
        addr = self.alloc(len(data))
        self.m.write_dram(addr, data)
        return addr

    def put_matrix(self, a: np.ndarray, stride: int, dtype: str, fill: int = 0) -> int:
        """Place ``a[rows, cols]`` with a row stride of ``stride`` elements (gaps filled)."""
        rows, cols = a.shape
        size = np.dtype(dtype).itemsize
        addr = self.alloc(((rows - 1) * stride + cols) * size, fill)
        self.store_matrix(addr, a, stride, dtype)
        return addr

    def store_matrix(self, addr: int, a: np.ndarray, stride: int, dtype: str) -> None:
        size = np.dtype(dtype).itemsize
        for r in range(a.shape[0]):
            row = np.asarray(a[r], dtype=dtype).tobytes()
            self.m.write_dram(addr + r * stride * size, row)

    def get_matrix(self, addr: int, rows: int, cols: int, stride: int, dtype: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        out = np.zeros((rows, cols), dtype=np.int64)
        for r in range(rows):
            raw = self.m.read_dram(addr + r * stride * size, cols * size)
            out[r] = np.frombuffer(raw, dtype=dtype)
        return out

    # ------------------------------------------------------------------ running
    def start(self, program: list[isa.Instruction] | bytes, count: int | None = None) -> int:
        """Load ``program`` at PROGRAM_ADDR, start it and return STATUS."""
        raw = program if isinstance(program, bytes) else isa.encode_program(program)
        self.m.write_dram(PROGRAM_ADDR, raw)
        n = len(raw) // isa.INSTRUCTION_BYTES if count is None else count
        self.m.write_reg(R["INSN_BASE"].offset, PROGRAM_ADDR)
        self.m.write_reg(R["INSN_COUNT"].offset, n)
        self.m.write_reg(R["CTRL"].offset, regs.CTRL_START)
        return self.m.read_reg(R["STATUS"].offset)

    def run(self, *insns: isa.Instruction) -> None:
        """Run ``insns`` followed by END and require success."""
        status = self.start([*insns, isa.make("END")])
        assert status == regs.STATUS_DONE, self.m.error_message

    def reg(self, name: str) -> int:
        return self.m.read_reg(R[name].offset)

    def reg64(self, name: str) -> int:
        return self.reg(name + "_LO") | (self.reg(name + "_HI") << 32)

    def error(self) -> tuple[regs.ErrorCode, int]:
        assert self.reg("STATUS") == regs.STATUS_ERROR, "expected the device to stop with an error"
        return regs.ErrorCode(self.reg("ERROR_CODE")), self.reg("ERROR_PC")


def ref_tiles(w: np.ndarray, rows: int, cols: int) -> bytes:
    """The packed weight layout written out with explicit loops (independent of hw.layouts)."""
    k, n = w.shape
    out = bytearray()
    for nt in range(-(-n // cols)):
        for kt in range(-(-k // rows)):
            for r in range(rows):
                for c in range(cols):
                    kk, nn = kt * rows + r, nt * cols + c
                    v = int(w[kk, nn]) if kk < k and nn < n else 0
                    out.append(v & 0xFF)
    return bytes(out)


def ref_epilogue(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> bytes:
    out = bytearray()
    for b, m, s in zip(bias, mult, shift):
        out += int(b).to_bytes(4, "little", signed=True)
        out += int(m).to_bytes(2, "little") + bytes([int(s), 0])
    return bytes(out)


def ref_route_table(
    lists: list[list[tuple[int, int]]], capacity: int, filler: int = 0
) -> bytes:
    """Route table bytes from per-expert [(token, score), ...] lists; unused slots = filler."""
    out = bytearray()
    for entries in lists:
        out += len(entries).to_bytes(4, "little")
    for entries in lists:
        for token, score in entries:
            out += token.to_bytes(2, "little") + score.to_bytes(2, "little")
        out += bytes([filler]) * (4 * (capacity - len(entries)))
    return bytes(out)
