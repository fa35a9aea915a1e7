"""edgemoe isa-doc: write (or check) docs/isa.md from the ISA table."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgemoe.hw import isa_doc

from ..cli import UserError

HELP = "generate docs/isa.md from the ISA table (--check: fail if the file is stale)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, default=isa_doc.DOC_PATH, help="output file")
    p.add_argument("--check", action="store_true", help="exit non-zero if the file differs")


def run(args: argparse.Namespace) -> int:
    text = isa_doc.render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else None
        if current != text:
            raise UserError(f"{args.output} is stale; regenerate it with `edgemoe isa-doc`")
        print(f"{args.output} is current")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return 0
