"""cocotb bench of ``em_axil_regs`` through cocotbext-axi's ``AxiLiteMaster``.

The reference is the register map of :mod:`edgemoe.hw.regs` (offsets, access, CTRL and STATUS
bits) with the behaviour the golden model gives it (``sim/golden/machine.py``): read-write
registers keep what was written, read-only registers show the core's inputs and ignore writes,
CTRL reads 0 and turns its START/RESET bits into one-cycle pulses, CONFIG_HASH is
``HardwareConfig.config_hash()`` of the config the RTL was built for. On top of the golden model,
the hardware answers unmapped offsets with 0 (OKAY), honours byte strobes, and captures a 64-bit
counter's high half when its low half is read (see the header of ``hw/rtl/em_axil_regs.sv``).

The config comes from :func:`edgemoe.sim.benches.common.bench_config` (RtlRunner passes it).
Register names, not offsets, are used
throughout; a register added to hw/regs.py without a matching core port fails here by name.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp
from cocotbext.axi.axil_channels import AxiLiteAWTransaction, AxiLiteWTransaction

from edgemoe.hw import regs
from edgemoe.sim.benches.common import bench_config

MASK32 = (1 << 32) - 1
REG = regs.BY_NAME
#: Status bits and the core input that drives each.
STATUS_INPUTS = {"busy": regs.STATUS_BUSY, "done": regs.STATUS_DONE, "error": regs.STATUS_ERROR}
PULSES = {"start": regs.CTRL_START, "soft_reset": regs.CTRL_RESET}
RW = [r.name for r in regs.REGISTERS if r.access == "rw"]
#: 64-bit values read as NAME_LO/NAME_HI halves.
WIDE = sorted({r.name[:-3] for r in regs.REGISTERS if r.name.endswith(("_LO", "_HI"))})
#: Read-only 32-bit registers, each showing the core input of the same (lower-case) name.
CORE_WORDS = [
    r.name
    for r in regs.REGISTERS
    if r.access == "ro" and r.name != "STATUS" and not r.name.endswith(("_LO", "_HI"))
]
CORE_WIDE = [name for name in WIDE if name != "CONFIG_HASH"]


def random_pause(p: float) -> Iterator[int]:
    """A pause generator for cocotbext-axi channels: paused in a cycle with probability ``p``."""
    while True:
        yield int(random.random() < p)


class TB:
    """Owns the clock, reset and AXI4-Lite master of one ``em_axil_regs`` and models its state.

    ``core`` holds the values driven on the core inputs; ``rw`` the model of the read-write
    registers; ``capture`` the high halves captured by the last _LO read of each counter.
    A watcher records in which cycles ``start`` and ``soft_reset`` were high.
    """

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        cfg = bench_config("axil_regs")
        self.config_hash = int(cfg.config_hash(), 16)
        self.addr_width = len(dut.s_axil_awaddr)
        self.log.info(
            "config %s (hash %s), ADDR_WIDTH=%d", cfg.name, cfg.config_hash(), self.addr_width
        )
        self.core_ports = {name: 1 for name in STATUS_INPUTS}
        self.core_ports |= {name.lower(): 32 for name in CORE_WORDS}
        self.core_ports |= {name.lower(): 64 for name in CORE_WIDE}
        for port, width in self.core_ports.items():
            assert hasattr(dut, port), f"no core input '{port}' for the register map of hw/regs.py"
            assert len(getattr(dut, port)) == width, f"core input '{port}' is not {width} bits"
        for port in [*PULSES, *(name.lower() for name in RW)]:
            assert hasattr(dut, port), f"no core output '{port}'"
        Clock(dut.clk, 10, unit="ns").start()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.core: dict[str, int] = {}
        self.drive_core({port: 0 for port in self.core_ports})
        self.rw = dict.fromkeys(RW, 0)
        self.capture: dict[str, int | None] = dict.fromkeys(CORE_WIDE)
        self.pulses: dict[str, list[int]] = {name: [] for name in PULSES}
        self.cycle = 0
        cocotb.start_soon(self._watch())

    async def _watch(self) -> None:
        """Record the pulses, and check the slave's side of the AXI rules on B and R: once
        valid, a response stays valid and unchanged until the master takes it."""
        dut = self.dut
        held: dict[str, tuple[int, ...] | None] = {"b": None, "r": None}
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            self.cycle += 1
            for name, cycles in self.pulses.items():
                if int(getattr(dut, name).value):
                    cycles.append(self.cycle)
            if int(dut.rst.value):
                held = {"b": None, "r": None}
                continue
            channels = {
                "b": (dut.s_axil_bvalid, dut.s_axil_bready, (dut.s_axil_bresp,)),
                "r": (dut.s_axil_rvalid, dut.s_axil_rready, (dut.s_axil_rdata, dut.s_axil_rresp)),
            }
            for ch, (valid, ready, payload) in channels.items():
                now = tuple(int(s.value) for s in payload)
                if held[ch] is not None:
                    assert int(valid.value), (
                        f"cycle {self.cycle}: {ch}valid dropped before {ch}ready"
                    )
                    assert now == held[ch], (
                        f"cycle {self.cycle}: {ch} payload changed while stalled"
                    )
                held[ch] = now if int(valid.value) and not int(ready.value) else None

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.rw = dict.fromkeys(RW, 0)
        for name in PULSES:
            self.pulses[name].clear()

    # ------------------------------------------------------------------ core side
    def drive_core(self, values: dict[str, int]) -> None:
        for port, value in values.items():
            getattr(self.dut, port).value = value
        self.core |= values

    def randomize_core(self) -> None:
        self.drive_core({p: random.getrandbits(w) for p, w in self.core_ports.items()})

    async def count_up(self, port: str) -> None:
        """Increment the 64-bit core input ``port`` every cycle, as a running counter does."""
        while True:
            await FallingEdge(self.dut.clk)
            self.drive_core({port: (self.core[port] + 1) % (1 << 64)})

    # ------------------------------------------------------------------ model
    def expect_read(self, name: str) -> int | None:
        """The value a read of register ``name`` returns now (None: an uncaptured _HI).

        Reading a counter's _LO half updates the model's capture of its high half.
        """
        reg = REG[name]
        if reg.access == "wo":
            return 0
        if name in self.rw:
            return self.rw[name]
        if name == "STATUS":
            return sum(bit for port, bit in STATUS_INPUTS.items() if self.core[port])
        if name.startswith("CONFIG_HASH"):
            return (
                (self.config_hash >> 32) & MASK32
                if name.endswith("_HI")
                else self.config_hash & MASK32
            )
        if name in CORE_WORDS:
            return self.core[name.lower()]
        base, half = name[:-3], name[-2:]
        value = self.core[base.lower()]
        if half == "LO":
            self.capture[base] = value >> 32
            return value & MASK32
        return self.capture[base]

    def expect_write(self, name: str, data: int, strb: int = 0xF) -> None:
        """Apply a write of the byte lanes ``strb`` of ``data`` to register ``name``."""
        if name in self.rw:
            keep = sum(0xFF << (8 * b) for b in range(4) if not strb >> b & 1)
            self.rw[name] = (self.rw[name] & keep) | (data & ~keep & MASK32)

    # ------------------------------------------------------------------ bus
    async def read(self, addr: int) -> int:
        resp = await self.axil.read(addr, 4)
        assert resp.resp == AxiResp.OKAY, f"read 0x{addr:x}: response {resp.resp!r}"
        return int.from_bytes(resp.data, "little")

    async def write(self, addr: int, data: int) -> None:
        resp = await self.axil.write(addr, data.to_bytes(4, "little"))
        assert resp.resp == AxiResp.OKAY, f"write 0x{addr:x}: response {resp.resp!r}"

    async def write_lanes(self, addr: int, data: int, strb: int) -> None:
        """One write beat with any strobe and data in every lane: ``AxiLiteMaster.write`` would
        zero the lanes it does not strobe, but a master may leave anything there."""
        channels = self.axil.write_if
        await channels.aw_channel.send(AxiLiteAWTransaction(awaddr=addr))
        await channels.w_channel.send(AxiLiteWTransaction(wdata=data, wstrb=strb))
        b = await channels.b_channel.recv()
        assert int(b.bresp) == AxiResp.OKAY, f"write 0x{addr:x}: response {int(b.bresp)}"

    async def check(self, name: str) -> None:
        """Read register ``name`` and compare with the model."""
        got = await self.read(REG[name].offset)
        want = self.expect_read(name)
        assert want is None or got == want, f"{name}: read 0x{got:08x}, want 0x{want:08x}"

    async def check_all(self) -> None:
        """Read every register (each _LO before its _HI) and the read-write ports."""
        for reg in regs.REGISTERS:
            await self.check(reg.name)
        self.check_ports()

    def check_ports(self) -> None:
        for name, value in self.rw.items():
            got = int(getattr(self.dut, name.lower()).value)
            assert got == value, f"port {name.lower()} = 0x{got:08x}, want 0x{value:08x}"

    def unmapped_offsets(self, n: int) -> list[int]:
        """All unmapped word offsets next to the map, and ``n`` random ones up to 2^ADDR_WIDTH."""
        mapped = {r.offset for r in regs.REGISTERS}
        top = max(mapped) + 16
        near = [a for a in range(0, top, 4) if a not in mapped]
        far = [
            a
            for a in (random.randrange(0, 1 << self.addr_width) & ~3 for _ in range(n))
            if a not in mapped
        ]
        return near + far + [(1 << self.addr_width) - 4]

    def assert_pulses(self, counts: dict[str, int]) -> None:
        """Each pulse was high in ``counts[name]`` cycles so far, never two cycles in a row."""
        for name, cycles in self.pulses.items():
            assert len(cycles) == counts[name], (
                f"{name} was high in cycles {cycles}, want {counts[name]} pulses"
            )
            runs = [b for a, b in itertools.pairwise(cycles) if b == a + 1]
            assert not runs, f"{name} stayed high for more than one cycle (at cycle {runs[0]})"


# --------------------------------------------------------------------------- tests
# Timeouts are about ten times the simulated time a test needs: a lost response hangs the
# master, and that should fail in seconds rather than minutes.
@cocotb.test(timeout_time=20, timeout_unit="us")
async def reset_state(dut: SimHandleBase) -> None:
    """After reset: read-write registers 0, no pulse, config hash that of the config."""
    tb = TB(dut)
    tb.drive_core({port: random.getrandbits(w) for port, w in tb.core_ports.items()})
    await tb.reset()
    tb.check_ports()
    await tb.check_all()
    lo = await tb.read(REG["CONFIG_HASH_LO"].offset)
    hi = await tb.read(REG["CONFIG_HASH_HI"].offset)
    # The host's check (host/driver.py config_hash) against HardwareConfig.config_hash().
    got = f"{hi:08x}{lo:08x}"
    want = bench_config("axil_regs").config_hash()
    assert got == want, f"config hash {got}, want {want}"
    tb.assert_pulses({"start": 0, "soft_reset": 0})


@cocotb.test(timeout_time=200, timeout_unit="us")
async def every_register(dut: SimHandleBase) -> None:
    """Write a random word to every register, then read all of them back, many rounds."""
    tb = TB(dut)
    await tb.reset()
    for _ in range(12):
        tb.randomize_core()
        for reg in regs.REGISTERS:
            if reg.name == "CTRL":
                continue  # its pulses have a test of their own
            value = random.getrandbits(32)
            await tb.write(reg.offset, value)
            tb.expect_write(reg.name, value)
            tb.check_ports()
        await tb.check_all()
    tb.assert_pulses({"start": 0, "soft_reset": 0})


@cocotb.test(timeout_time=100, timeout_unit="us")
async def byte_strobes(dut: SimHandleBase) -> None:
    """Only the strobed bytes change, whatever the other lanes carry; the address bits below
    the word select nothing."""
    tb = TB(dut)
    await tb.reset()
    for strb in [*range(16), *(random.randrange(16) for _ in range(32))]:
        name = random.choice(RW)
        data = random.getrandbits(32)
        await tb.write_lanes(REG[name].offset + random.randrange(4), data, strb)
        tb.expect_write(name, data, strb)
        tb.check_ports()
        await tb.check(name)


@cocotb.test(timeout_time=100, timeout_unit="us")
async def ctrl_pulses(dut: SimHandleBase) -> None:
    """CTRL start/soft reset: one single-cycle pulse per write that sets the bit; CTRL reads 0;
    a soft reset keeps INSN_BASE/INSN_COUNT; bits outside the strobed bytes do nothing."""
    tb = TB(dut)
    await tb.reset()
    for name in RW:
        value = random.getrandbits(32)
        await tb.write(REG[name].offset, value)
        tb.expect_write(name, value)
    ctrl = REG["CTRL"].offset
    counts = dict.fromkeys(PULSES, 0)
    writes = [regs.CTRL_START, regs.CTRL_RESET, regs.CTRL_START | regs.CTRL_RESET, 0, MASK32]
    writes += [random.getrandbits(32) for _ in range(30)]
    for value in writes:
        await tb.write(ctrl, value)
        for name, bit in PULSES.items():
            counts[name] += bool(value & bit)
        await ClockCycles(dut.clk, random.randrange(0, 4))
        tb.assert_pulses(counts)
        assert await tb.read(ctrl) == 0, "CTRL does not read as 0"
    # Every strobe with all data bits set: a control bit acts only if its byte is strobed.
    for strb in range(16):
        await tb.write_lanes(ctrl, MASK32, strb)
        for name, bit in PULSES.items():
            counts[name] += bool(strb >> ((bit.bit_length() - 1) // 8) & 1)
        await ClockCycles(dut.clk, 2)
        tb.assert_pulses(counts)
    # Other registers with the control bits set: no pulse.
    for name in RW:
        await tb.write(REG[name].offset, MASK32)
        tb.expect_write(name, MASK32)
    await ClockCycles(dut.clk, 4)
    tb.assert_pulses(counts)
    await tb.check_all()


@cocotb.test(timeout_time=50, timeout_unit="us")
async def write_channels_in_either_order(dut: SimHandleBase) -> None:
    """A write waits for both AW and W however long apart they come, and happens exactly once."""
    tb = TB(dut)
    await tb.reset()
    aw, w = tb.axil.write_if.aw_channel, tb.axil.write_if.w_channel
    for late in (w, aw, w):
        name = random.choice(RW)
        value = random.getrandbits(32)
        late.pause = True
        event = tb.axil.init_write(REG[name].offset, value.to_bytes(4, "little"))
        await ClockCycles(dut.clk, random.randint(5, 20))
        await ReadOnly()
        assert not int(dut.s_axil_bvalid.value), "write answered before both AW and W arrived"
        tb.check_ports()  # unchanged: the model has not seen the write yet
        await FallingEdge(dut.clk)
        late.pause = False
        await event.wait()
        assert event.data.resp == AxiResp.OKAY
        tb.expect_write(name, value)
        tb.check_ports()
        await tb.check(name)
    # AW and W of CTRL apart: still exactly one pulse.
    w.pause = True
    event = tb.axil.init_write(REG["CTRL"].offset, regs.CTRL_START.to_bytes(4, "little"))
    await ClockCycles(dut.clk, 10)
    tb.assert_pulses({"start": 0, "soft_reset": 0})
    w.pause = False
    await event.wait()
    await ClockCycles(dut.clk, 4)
    tb.assert_pulses({"start": 1, "soft_reset": 0})


@cocotb.test(timeout_time=200, timeout_unit="us")
async def unmapped_offsets(dut: SimHandleBase) -> None:
    """Unmapped offsets read 0 with OKAY, and writing them changes nothing."""
    tb = TB(dut)
    await tb.reset()
    tb.randomize_core()
    for name in RW:
        value = random.getrandbits(32)
        await tb.write(REG[name].offset, value)
        tb.expect_write(name, value)
    for addr in tb.unmapped_offsets(100):
        await tb.write(addr, MASK32)
        got = await tb.read(addr)
        assert got == 0, f"unmapped offset 0x{addr:x} reads 0x{got:08x}"
    tb.assert_pulses({"start": 0, "soft_reset": 0})
    await tb.check_all()


@cocotb.test(timeout_time=100, timeout_unit="us")
async def counter_halves_are_consistent(dut: SimHandleBase) -> None:
    """Counters running across a 2^32 carry read as one 64-bit value, _LO first then _HI."""
    tb = TB(dut)
    await tb.reset()
    for name in CORE_WIDE:
        port = name.lower()
        for start in range(-12, 4):
            base = random.getrandbits(31) << 32
            value = (base + start) % (1 << 64)
            tb.drive_core({port: value})
            counter = cocotb.start_soon(tb.count_up(port))
            before = tb.core[port]
            lo = await tb.read(REG[name + "_LO"].offset)
            hi = await tb.read(REG[name + "_HI"].offset)
            after = tb.core[port]
            counter.cancel()
            got = hi << 32 | lo
            assert before <= got <= after, (
                f"{name}: read 0x{got:016x}, but the counter went from 0x{before:016x} to 0x{after:016x}"
            )


@cocotb.test(timeout_time=500, timeout_unit="us")
@cocotb.parametrize(pause=[0.0, 0.3, 0.6])
async def random_traffic(dut: SimHandleBase, pause: float) -> None:
    """Writes and reads of every kind in flight together, with every channel paused at random
    (so AW and W arrive in any order and B and R are back-pressured).

    Writes complete in issue order, so the model knows each read-write register's history; a
    concurrent read must return a value of that history no older than the last one it saw.
    """
    tb = TB(dut)
    for channel in (
        tb.axil.write_if.aw_channel,
        tb.axil.write_if.w_channel,
        tb.axil.write_if.b_channel,
        tb.axil.read_if.ar_channel,
        tb.axil.read_if.r_channel,
    ):
        channel.set_pause_generator(random_pause(pause))
    await tb.reset()
    tb.randomize_core()
    history = {name: [0] for name in RW}
    counts = dict.fromkeys(PULSES, 0)
    unmapped = tb.unmapped_offsets(20)
    n_ops = 600

    async def writer() -> None:
        for _ in range(n_ops // 5):
            events = []
            for _ in range(random.randint(1, 5)):
                kind = random.random()
                if kind < 0.5:
                    name = random.choice(RW)
                    offset, size = random.choice([(0, 4), (0, 4), (1, 1), (2, 2), (0, 3)])
                    data = random.randbytes(size)
                    addr = REG[name].offset + offset
                    # AxiLiteMaster strobes exactly the bytes it is given.
                    lanes = int.from_bytes(data, "little") << (8 * offset)
                    tb.expect_write(name, lanes, ((1 << size) - 1) << offset)
                    history[name].append(tb.rw[name])
                elif kind < 0.7:
                    value = random.getrandbits(32)
                    addr, data = REG["CTRL"].offset, value.to_bytes(4, "little")
                    for name, bit in PULSES.items():
                        counts[name] += bool(value & bit)
                elif kind < 0.85:
                    reg = random.choice([r for r in regs.REGISTERS if r.access == "ro"])
                    addr, data = reg.offset, random.randbytes(4)
                else:
                    addr, data = random.choice(unmapped), random.randbytes(4)
                events.append(tb.axil.init_write(addr, data))
            for event in events:
                await event.wait()
                assert event.data.resp == AxiResp.OKAY, f"write response {event.data.resp!r}"

    async def reader() -> None:
        seen = dict.fromkeys(RW, 0)
        for _ in range(n_ops):
            reg = random.choice(regs.REGISTERS)
            if reg.name.endswith("_HI"):
                reg = REG[reg.name[:-3] + "_LO"]  # halves are read in pairs, as the driver does
            names = [reg.name] + ([reg.name[:-3] + "_HI"] if reg.name.endswith("_LO") else [])
            if random.random() < 0.1:
                addr = random.choice(unmapped)
                assert await tb.read(addr) == 0, f"unmapped offset 0x{addr:x} does not read 0"
                continue
            for name in names:
                got = await tb.read(REG[name].offset)
                if name in RW:
                    try:
                        seen[name] = history[name].index(got, seen[name])
                    except ValueError:
                        raise AssertionError(
                            f"{name}: read 0x{got:08x}, not one of the values written since "
                            f"the last read ({[hex(v) for v in history[name][seen[name] :]]})"
                        ) from None
                else:
                    want = tb.expect_read(name)
                    assert got == want, f"{name}: read 0x{got:08x}, want 0x{want:08x}"

    write_task = cocotb.start_soon(writer())
    read_task = cocotb.start_soon(reader())
    await write_task
    await read_task
    await ClockCycles(dut.clk, 4)
    tb.assert_pulses(counts)
    await tb.check_all()
    tb.log.info(
        "pause=%.1f: %d start and %d soft reset pulses",
        pause,
        counts["start"],
        counts["soft_reset"],
    )
