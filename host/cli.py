"""The ``edgemoe`` command line.

Each subcommand lives in its own module under :mod:`edgemoe.host.commands` and exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their command runs, so ``edgemoe config`` does not pay for importing torch.

User mistakes raise :class:`UserError` (or one of the project's error classes listed in
``_USER_ERRORS``); they are printed as one ``edgemoe: error: ...`` line with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> module in edgemoe.host.commands
COMMANDS: dict[str, str] = {
    "doctor": "doctor",
    "config": "config",
    "disasm": "disasm",
    "isa-doc": "isa_doc",
    "numerics": "numerics",
    "compile": "compile",
    "inspect": "inspect",
    "run": "run",
    "bench": "bench",
    "verilog": "verilog",
    "trace-diff": "trace_diff",
    "synth": "synth",
}


class UserError(Exception):
    """A mistake in the user's input; printed without a traceback."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from edgemoe.hw.config import ConfigError
    from edgemoe.hw.isa import IsaError

    types: list[type[BaseException]] = [UserError, ConfigError, IsaError]
    # Optional error classes of later stages, registered when their package is importable.
    for mod, name in (
        ("edgemoe.compiler.errors", "CompileError"),
        ("edgemoe.compiler.binary", "BinaryError"),
        ("edgemoe.host.errors", "RuntimeUserError"),
        ("edgemoe.host.errors", "DeviceFault"),
        ("edgemoe.hw.synth", "SynthError"),
    ):
        try:
            types.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _load_command(name: str):
    return importlib.import_module(f"edgemoe.host.commands.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgemoe",
        description="Compile M3ViT to the edgemoe accelerator, simulate it bit-exactly, "
        "and generate its Verilog.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        mod = _load_command(name)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except _user_error_types() as e:
        print(f"edgemoe: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgemoe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `edgemoe disasm x.emb | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
