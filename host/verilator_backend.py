"""The ``verilator`` backend: the RTL of ``em_core`` in Verilator, behind the Device protocol.

The model is built with :class:`~edgemoe.sim.runner.RtlRunner` (cached per config) and run in a
background thread as the cocotb bench ``sim/benches/device.py``, which connects back to a Unix
socket in a private temporary folder and serves register and DRAM requests (see that module).
Calls are synchronous: ``write_reg`` returns once the AXI4-Lite write has completed in simulated
time, and polling STATUS advances the simulation, so :class:`~edgemoe.host.driver.Driver` runs
unchanged. Instructions the RTL does not implement yet stop the device with UNIMPLEMENTED,
which the driver reports as a DeviceFault naming the instruction index.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edgemoe.hw.config import HardwareConfig

from .errors import DeviceFault

#: How long the simulator may take to start and connect (the build happens before).
CONNECT_TIMEOUT_S = 300.0


class VerilatorDevice:
    """``em_core`` simulated by Verilator with ``dram_bytes`` of DRAM."""

    def __init__(self, cfg: HardwareConfig, dram_bytes: int) -> None:
        from edgemoe.sim.benches.core import CORE_SOURCES
        from edgemoe.sim.benches.device import ADDR_ENV, DRAM_ENV
        from edgemoe.sim.runner import RtlRunner

        self.cfg = cfg
        self._runner = RtlRunner("em_core", sources=CORE_SOURCES, config=cfg)
        self._runner.build()
        self._dir = tempfile.TemporaryDirectory(prefix="edgemoe-device-")
        address = str(Path(self._dir.name) / "sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(1)
        listener.settimeout(0.5)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._simulate,
            args=({ADDR_ENV: address, DRAM_ENV: str(dram_bytes)},),
            name="edgemoe-verilator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        try:
            while True:
                try:
                    sock, _ = listener.accept()
                    break
                except TimeoutError:
                    if not self._thread.is_alive() or time.monotonic() > deadline:
                        raise DeviceFault(
                            f"the Verilator simulation did not start: {self._why()}"
                        ) from None
        finally:
            listener.close()
        sock.setblocking(True)
        self._conn: Connection | None = Connection(sock.detach())

    def _simulate(self, env: dict[str, str]) -> None:
        try:
            self._runner.run("device", extra_env=env)
        except BaseException as e:  # handed to the host thread through _why()
            self._failure = e

    def _why(self) -> str:
        return str(self._failure) if self._failure else "no message (see build/sim/*/device.log)"

    def _call(self, *request: Any) -> Any:
        if self._conn is None:
            raise DeviceFault("the Verilator device is closed")
        try:
            self._conn.send(request)
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self._conn = None
            self._thread.join(timeout=10)
            raise DeviceFault(f"the Verilator simulation ended: {self._why()}") from None
        if status != "ok":
            raise DeviceFault(f"Verilator device: {value}")
        return value

    # ------------------------------------------------------------------ Device protocol
    def write_reg(self, offset: int, value: int) -> None:
        self._call("write_reg", offset, value)

    def read_reg(self, offset: int) -> int:
        return int(self._call("read_reg", offset))

    def write_dram(self, addr: int, data: bytes) -> None:
        self._call("write_dram", addr, bytes(data))

    def read_dram(self, addr: int, n: int) -> bytes:
        return bytes(self._call("read_dram", addr, n))

    def close(self) -> None:
        """Stop the simulation and wait for it (also happens when the process exits)."""
        if self._conn is not None:
            self._call("stop")
            self._conn.close()
            self._conn = None
        self._thread.join()
        self._dir.cleanup()
