"""Build an RTL toplevel with Verilator and run a cocotb bench on it.

A thin layer over ``cocotb_tools.runner.get_runner("verilator")`` that fixes the project's
choices in one place:

- sources come from ``hw/rtl`` by module name (one module per file);
- our SystemVerilog compiles under ``-Wall`` with warnings fatal, so a simulation never runs on
  RTL that would fail lint;
- the generated headers (``edgemoe_config.svh``, ``em_isa.svh``, ``em_regs.svh``,
  ``em_tables.svh``; see :mod:`edgemoe.hw.rtl.gen`) are written into the build directory when a
  :class:`~edgemoe.hw.config.HardwareConfig` is given;
- every (toplevel, sources, parameters, config) gets its own build directory
  ``<root>/build/sim/<toplevel>-<hash>``, where ``<root>`` is the repository when running from a
  checkout and the working directory otherwise; a lock file serialises the rare case of two
  processes (pytest-xdist workers) asking for the same build, so they never interleave;
- the number of parallel compile jobs is explicit, because CI has two cores. A cold build costs
  about 11 s of CPU, nearly all of it Verilator's runtime library, which is compiled again for
  every model: when ``ccache`` is on PATH the runner sets ``OBJCACHE=ccache`` (Verilator's own
  make variable) so models and reruns share it. C++ is compiled at ``-O0`` by default, which saves a further
  ~20 % over Verilator's ``-Os``; block benches run few cycles, so simulation speed matters
  less. Long system simulations should pass ``cflags=("-O2",)``;
- a failing bench raises :class:`SimulationError` whether or not pytest is running.

Adding a bench: write ``sim/benches/<bench>.py`` (module ``edgemoe.sim.benches.<bench>``) with
``@cocotb.test()`` functions and run
``RtlRunner("em_block", parameters={...}).run("<bench>")``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.rtl.gen import write_headers
from edgemoe.sim.benches.common import CONFIG_ENV
from edgemoe.sim.toolchain import RTL_DIR, ToolchainError, setup_verilator

#: Package holding the cocotb benches; :meth:`RtlRunner.run` takes a module name inside it.
BENCH_PACKAGE = "edgemoe.sim.benches"


class SimulationError(RuntimeError):
    """A bench failed (or the simulator died); the message names the bench and the log."""


def build_root() -> Path:
    """``<repo>/build/sim`` when running from a checkout, else ``./build/sim``."""
    repo = RTL_DIR.parents[1]
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return base / "build" / "sim"


def default_jobs() -> int:
    """Compile jobs per build: ``EDGEMOE_SIM_JOBS``, else the usable cores shared out among
    pytest-xdist workers (each worker builds its own models at the same time)."""
    env = os.environ.get("EDGEMOE_SIM_JOBS")
    if env:
        return max(1, int(env))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, len(os.sched_getaffinity(0)) // workers)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


class RtlRunner:
    """One Verilator model of ``toplevel``: build once, run benches on it.

    ``sources`` are the modules of ``hw/rtl`` compiled explicitly (default: the toplevel alone;
    the modules it instantiates are found by name through Verilator's ``-y hw/rtl``).
    ``config`` writes its ``edgemoe_config.svh`` onto the include path; ``jobs`` defaults to
    :func:`default_jobs`; ``cflags`` go to the C++ compiler.
    """

    def __init__(
        self,
        toplevel: str,
        *,
        parameters: Mapping[str, int] | None = None,
        sources: Sequence[str] | None = None,
        config: HardwareConfig | None = None,
        jobs: int | None = None,
        cflags: Sequence[str] = ("-O0",),
    ) -> None:
        self.toplevel = toplevel
        self.parameters = dict(parameters or {})
        self.sources = [RTL_DIR / f"{m}.sv" for m in (sources or [toplevel])]
        for src in self.sources:
            if not src.is_file():
                raise FileNotFoundError(f"RTL source {src.name} not found in {RTL_DIR}")
        self.config = config
        self.jobs = jobs or default_jobs()
        self.cflags = list(cflags)
        self.build_dir = build_root() / f"{toplevel}-{self._key()}"
        self._runner: Any = None  # the cocotb runner, once built

    def _key(self) -> str:
        """Hash of everything that changes the model (not the source contents: make tracks those)."""
        ident = {
            "top": self.toplevel,
            "sources": [s.name for s in self.sources],
            "parameters": self.parameters,
            "config": self.config.config_hash() if self.config else None,
            "cflags": self.cflags,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]

    def _config_env(self) -> dict[str, str]:
        """The bench learns the config the model was built for (sim.benches.common)."""
        return {CONFIG_ENV: self.config.to_json()} if self.config is not None else {}

    def build(self) -> None:
        """Verilate and compile (incrementally: unchanged sources rebuild in about a second)."""
        setup_verilator()
        # Every model compiles Verilator's runtime library again; with ccache installed the
        # second and later models (and reruns) get it from the cache.
        if shutil.which("ccache"):
            os.environ.setdefault("OBJCACHE", "ccache")
        try:
            import cocotb_tools.runner as cocotb_runner
        except ImportError:
            raise ToolchainError(
                "cannot build RTL simulations, missing: cocotb (install: pip install -e '.[sim]')"
            ) from None
        # cocotb runs `make -j MAX_PARALLEL_BUILD_JOBS` after verilating (Verilator's own `-j`
        # below only sets its verilation threads). Each pytest-xdist worker is a separate
        # process, so setting this module global is per build.
        cocotb_runner.MAX_PARALLEL_BUILD_JOBS = self.jobs
        includes = [RTL_DIR]
        with _locked(self.build_dir):
            if self.config is not None:
                inc = self.build_dir / "include"
                write_headers(self.config, inc)
                includes.append(inc)
            runner = cocotb_runner.get_runner("verilator")
            try:
                runner.build(
                    sources=self.sources,
                    hdl_toplevel=self.toplevel,
                    parameters=self.parameters,
                    includes=includes,
                    build_args=[
                        *("-Wall", "-y", str(RTL_DIR)),
                        *("-j", str(self.jobs), "-CFLAGS", " ".join(self.cflags)),
                    ],
                    build_dir=self.build_dir,
                    timescale=("1ns", "1ps"),
                    log_file=self.build_dir / "build.log",
                )
            except RuntimeError as e:
                log = (self.build_dir / "build.log").read_text(errors="replace")
                raise SimulationError(
                    f"building {self.toplevel} {self.parameters} failed ({e}):\n{_tail(log)}"
                ) from None
        self._runner = runner

    def run(
        self, bench: str, *, seed: int | None = None, extra_env: Mapping[str, str] | None = None
    ) -> Path:
        """Build if needed, run every test of ``edgemoe.sim.benches.<bench>``; return results.xml.

        Raises :class:`SimulationError` with the tail of the simulation log if any test fails or
        the simulator dies (cocotb itself would only ``sys.exit`` under pytest).
        """
        if self._runner is None:
            self.build()
        from cocotb_tools.check_results import get_results

        results = self.build_dir / f"{bench}.results.xml"
        log = self.build_dir / f"{bench}.log"
        with _locked(self.build_dir):
            try:
                self._runner.test(
                    test_module=f"{BENCH_PACKAGE}.{bench}",
                    hdl_toplevel=self.toplevel,
                    build_dir=self.build_dir,
                    seed=seed,
                    extra_env={**self._config_env(), **dict(extra_env or {})},
                    results_xml=str(results),
                    log_file=log,
                )
            except (SystemExit, RuntimeError):
                pass  # judged from the results file below
            try:
                n_tests, n_failed = get_results(results)
                reason = f"{n_failed} of {n_tests} tests failed"
            except RuntimeError:
                n_failed, reason = 1, "the simulator exited without writing results"
        if n_failed:
            raise SimulationError(
                f"bench {bench} on {self.toplevel} {self.parameters}: {reason}; log {log}:\n"
                f"{_tail(log.read_text(errors='replace'))}"
            )
        return results


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
