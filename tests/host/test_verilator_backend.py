"""The verilator backend runs programs through the same Driver as the golden backend."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edgemoe.host.backends import open_device
from edgemoe.host.driver import Driver
from edgemoe.host.errors import DeviceFault
from edgemoe.hw import config as hwconfig
from edgemoe.hw import isa

DRAM_BYTES = 1 << 18
INSN_BASE = 0x100


def program(rng: random.Random) -> list[isa.Instruction]:
    """Strided, gather and scatter copies from [0x1000, ...) to [0x20000, ...), then END."""
    idx_addr = 0x3F001  # odd: the index list straddles beats
    return [
        isa.make(
            "DMA_COPY",
            rows=7,
            row_bytes=45,
            src_addr=0x1003,
            src_stride=50,
            dst_addr=0x20011,
            dst_stride=61,
        ),
        isa.make("SYNC"),
        isa.make(
            "DMA_COPY",
            src_indexed=1,
            rows=5,
            row_bytes=33,
            src_addr=0x2000,
            src_stride=40,
            dst_addr=0x28005,
            dst_stride=33,
            idx_addr=idx_addr,
        ),
        isa.make(
            "DMA_COPY",
            dst_indexed=1,
            rows=5,
            row_bytes=19,
            src_addr=0x3001,
            src_stride=19,
            dst_addr=0x30000,
            dst_stride=24,
            idx_addr=idx_addr,
        ),
        isa.make("END"),
    ]


def load(dev, insns: list[isa.Instruction], image: bytes) -> None:
    dev.write_dram(0, image)
    dev.write_dram(INSN_BASE, isa.encode_program(insns))


@pytest.mark.rtl
def test_verilator_matches_golden() -> None:
    cfg = hwconfig.load("tiny")
    rng = random.Random(7)
    image = bytearray(rng.randbytes(DRAM_BYTES))
    image[0x3F001 : 0x3F001 + 10] = np.array([3, 0, 9, 9, 1], dtype="<u2").tobytes()
    insns = program(rng)
    golden = open_device("golden", cfg, DRAM_BYTES)
    rtl = open_device("verilator", cfg, DRAM_BYTES)
    try:
        results = []
        for dev in (golden, rtl):
            load(dev, insns, bytes(image))
            counters = Driver(dev).run(INSN_BASE, len(insns))
            results.append((counters, dev.read_dram(0, DRAM_BYTES)))
        (want, want_dram), (got, got_dram) = results
        assert got_dram == want_dram
        assert got.instructions_retired == want.instructions_retired == len(insns)
        assert (got.dram_read_bytes, got.dram_write_bytes) == (
            want.dram_read_bytes,
            want.dram_write_bytes,
        )
        assert got.mac_cycles == 0 and got.cycles > 0
        Driver(rtl).check_hardware(cfg)

        # An instruction the RTL does not implement yet (MATMUL's expert mode) stops it with a
        # clear fault, no hang.
        matmul = isa.make("MATMUL", expert=1, m=1, k=1, n=1, x_stride=1, y_stride=1)
        rtl.write_dram(INSN_BASE, isa.encode_program([insns[0], matmul, isa.make("END")]))
        with pytest.raises(DeviceFault, match=r"instruction 1 \(MATMUL\): .*UNIMPLEMENTED"):
            Driver(rtl).run(INSN_BASE, 3, timeout_s=60)
    finally:
        rtl.close()
