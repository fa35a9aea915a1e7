"""edgemoe trace-diff: compare two per-instruction traces and name the first divergence."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import UserError

HELP = "compare two traces from `edgemoe run --trace` (golden vs RTL); exit 1 where they differ"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("expected", type=Path, help="reference trace (e.g. the golden model's)")
    p.add_argument("actual", type=Path, help="trace to check (e.g. the RTL simulation's)")


def _load(path: Path):
    from edgemoe.sim.golden import entry_from_json

    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return [entry_from_json(json.loads(line)) for line in lines if line.strip()]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a trace file ({e})") from None


def run(args: argparse.Namespace) -> int:
    from edgemoe.sim.golden import first_divergence

    expected, actual = _load(args.expected), _load(args.actual)
    div = first_divergence(expected, actual)
    if div is None:
        print(f"traces are identical ({len(expected)} entries)")
        return 0
    print(f"traces differ at {div}")
    return 1
