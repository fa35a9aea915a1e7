"""Fidelity targets of the edge-moe preset against the float model (full model: slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemoe.compiler.pipeline import compile_model
from edgemoe.host.accelerator import Accelerator
from edgemoe.host.fidelity import compare_float

TARGETS = {"w8a16": 0.999, "w8a8": 0.99}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["w8a16", "w8a8"])
def test_edge_moe_fidelity(precision: str, coffee_png: Path) -> None:
    acc = Accelerator(compile_model("edge-moe", "edge-moe-zcu102", precision, calib=8))
    for task in acc.tasks:
        report = compare_float(acc, coffee_png, task)
        assert report["output"]["cosine"] >= TARGETS[precision], (task, report["output"])
        if precision == "w8a16":
            assert report["routing_agreement_mean"] >= 0.95, (task, report["routing_agreement"])
