"""The simulator side of the ``verilator`` host backend: ``em_core`` served as a Device.

:mod:`edgemoe.host.verilator_backend` builds ``em_core``, starts this bench in a background
thread and connects to it over a Unix socket (address in :data:`ADDR_ENV`). The single cocotb
test :func:`serve` answers requests until told to stop or until the host goes away:

- ``("write_reg", offset, value)`` and ``("read_reg", offset)``: AXI4-Lite transactions through
  ``AxiLiteMaster``, so simulated time advances with them; a STATUS read that finds the device
  busy first lets :data:`POLL_CYCLES` cycles pass, so a host polling STATUS makes progress;
- ``("write_dram", addr, data)`` and ``("read_dram", addr, n)``: direct access to the AxiRam
  memory (zero simulated time, like the host writing DRAM while the device is idle);
- ``("stop",)``: end the test.

Every request is answered ``("ok", value)`` or ``("err", message)``. The DRAM size comes from
:data:`DRAM_ENV`; the config from RtlRunner (:func:`~edgemoe.sim.benches.common.bench_config`).
"""

from __future__ import annotations

import logging
import os
import socket
from multiprocessing.connection import Connection
from typing import Any

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles

from edgemoe.hw import regs
from edgemoe.sim.benches.common import bench_config
from edgemoe.sim.benches.core import TB

ADDR_ENV = "EDGEMOE_DEVICE_SOCKET"
DRAM_ENV = "EDGEMOE_DEVICE_DRAM_BYTES"
#: Cycles simulated before answering a STATUS read that finds the device busy.
POLL_CYCLES = 2000
_STATUS = regs.BY_NAME["STATUS"].offset


class DeviceServer:
    """Executes host requests on a :class:`~edgemoe.sim.benches.core.TB`."""

    def __init__(self, tb: TB) -> None:
        self.tb = tb

    async def write_reg(self, offset: int, value: int) -> None:
        await self.tb.axil.write(offset, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    async def read_reg(self, offset: int) -> int:
        value = int.from_bytes((await self.tb.axil.read(offset, 4)).data, "little")
        if offset == _STATUS and value & regs.STATUS_BUSY:
            await ClockCycles(self.tb.dut.clk, POLL_CYCLES)
            value = int.from_bytes((await self.tb.axil.read(offset, 4)).data, "little")
        return value

    def _range(self, addr: int, n: int, what: str) -> None:
        if addr < 0 or n < 0 or addr + n > self.tb.dram_bytes:
            raise ValueError(f"{what}: [0x{addr:x}, +{n}) outside the DRAM")

    async def write_dram(self, addr: int, data: bytes) -> None:
        self._range(addr, len(data), "write_dram")
        self.tb.mem[addr : addr + len(data)] = bytes(data)

    async def read_dram(self, addr: int, n: int) -> bytes:
        self._range(addr, n, "read_dram")
        return bytes(self.tb.mem[addr : addr + n])


@cocotb.test()
async def serve(dut: SimHandleBase) -> None:
    """Answer the host's requests until ``stop`` or until the host closes the connection."""
    cfg = bench_config("device")
    tb = TB(dut, dram_bytes=int(os.environ[DRAM_ENV]))
    tb.log.info("serving em_core (%s) as a device", cfg.name)
    # One log line per bus transaction would swamp the log of a long run.
    for name in ("cocotb.em_core.m_axi", "cocotb.em_core.s_axil"):
        logging.getLogger(name).setLevel(logging.WARNING)
    await tb.reset()
    server = DeviceServer(tb)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ[ADDR_ENV])
    conn = Connection(sock.detach())
    try:
        while True:
            try:
                op, *args = conn.recv()
            except EOFError:
                return  # the host went away
            if op == "stop":
                conn.send(("ok", None))
                return
            try:
                value: Any = await getattr(server, op)(*args)
            except Exception as e:  # reported to the host, which raises it there
                conn.send(("err", f"{op}: {type(e).__name__}: {e}"))
            else:
                conn.send(("ok", value))
    finally:
        conn.close()
