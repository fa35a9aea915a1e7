"""edgemoe numerics: measure the bit-exact numerics against float64 and report their errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgemoe.hw import config as hwconfig
from edgemoe.hw.numerics import report

HELP = (
    "measure the fixed-point numerics (GELU, softmax, LayerNorm, exp, 1/x, 1/sqrt) against float64"
)

DEFAULT_CONFIG = "edge-moe-zcu102"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"preset name or path to a TOML file (default: {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"<function>": {"max_abs_err": ..., "mean_abs_err": ...}, ...}',
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        type=Path,
        help="write one error-versus-input PNG per function into DIR",
    )


def run(args: argparse.Namespace) -> int:
    from edgemoe.host.cli import UserError

    cfg = hwconfig.load(args.config)
    if args.plots is not None and args.plots.exists() and not args.plots.is_dir():
        raise UserError(f"--plots {args.plots}: exists and is not a directory")
    reports = report.measure_all(cfg)
    if args.json:
        print(json.dumps({name: r.summary() for name, r in reports.items()}, indent=2))
    else:
        print(f"numerics of config '{cfg.name}' (errors in real units, against float64):")
        print(report.format_table(reports))
    if args.plots is not None:
        try:
            paths = report.write_plots(reports, args.plots)
        except OSError as e:
            raise UserError(
                f"--plots {args.plots}: cannot write plots: {e.strerror or e}"
            ) from None
        for path in paths:
            print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0
