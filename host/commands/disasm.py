"""edgemoe disasm: print the instruction stream of a binary (or a raw stream) as assembly."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgemoe.hw import isa

from ..cli import UserError

HELP = "disassemble an .emb binary (or a raw .bin instruction stream)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path)
    p.add_argument("--task", help="only this task's instructions")
    p.add_argument("--no-comments", action="store_true", help="omit the compiler's comments")


def run(args: argparse.Namespace) -> int:
    from edgemoe.compiler import binary as binfmt

    path: Path = args.file
    if path.suffix == ".emb" or (path.exists() and path.read_bytes()[:8] == binfmt.MAGIC):
        b = binfmt.load(path)
        program = b.program
        comments = {int(k): v for t in b.meta["tasks"].values() for k, v in t["comments"].items()}
        start, count = 0, len(program)
        if args.task:
            t = b.task(args.task)
            start, count = t["insn_index"], t["insn_count"]
    else:
        if args.task:
            raise UserError("--task needs an .emb binary; a raw stream has no tasks")
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise UserError(f"{path}: cannot read: {e.strerror}") from None
        program = isa.decode_program(raw)
        comments, start, count = {}, 0, len(program)
    for i in range(start, start + count):
        line = f"{i:6d}  {isa.format_instruction(program[i])}"
        if not args.no_comments and i in comments:
            line += f"  ; {comments[i]}"
        print(line)
    return 0
