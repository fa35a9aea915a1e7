"""Host runtime on the golden backend: outputs, fidelity against float, input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgemoe.host.accelerator import Accelerator
from edgemoe.host.errors import DeviceFault, RuntimeUserError
from edgemoe.host.fidelity import compare_float


def test_run_is_deterministic_and_matches_float(tiny_binary_path: Path, coffee_png: Path) -> None:
    acc = Accelerator(tiny_binary_path)
    a = acc.run(coffee_png, "seg")
    b = acc.run(coffee_png, "seg")
    assert np.array_equal(a.raw, b.raw)
    assert a.output.shape == (16, 19)
    assert a.counters.instructions_retired > 20
    report = compare_float(acc, coffee_png, "seg")
    assert report["output"]["cosine"] > 0.999
    assert {layer["layer"] for layer in report["layers"]} >= {"block0.fc2", "block1.moe", "head.seg"}
    assert 0.0 <= report["routing_agreement"]["block1.moe"] <= 1.0


def test_tasks_differ(tiny_binary_path: Path, coffee_png: Path) -> None:
    acc = Accelerator(tiny_binary_path)
    assert acc.run(coffee_png, "depth").output.shape == (16, 1)


def test_tensor_input_equals_image_input(tiny_binary_path: Path, coffee_png: Path, tmp_path: Path) -> None:
    acc = Accelerator(tiny_binary_path)
    x = acc.preprocess(coffee_png)
    np.save(tmp_path / "x.npy", x[None].astype(np.float32))
    a = acc.run(coffee_png, "seg").raw
    b = acc.run(tmp_path / "x.npy", "seg").raw
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "source, message",
    [
        ("missing.png", "missing.png: no such file"),
        (np.zeros((3, 8, 8)), r"input tensor has shape \(3, 8, 8\).*\[3, 32, 32\]"),
        (np.zeros((8, 8, 4), dtype=np.uint8), "an image must be HxWx3 uint8"),
    ],
)
def test_bad_inputs(tiny_binary_path: Path, source, message: str) -> None:
    with pytest.raises(RuntimeUserError, match=message):
        Accelerator(tiny_binary_path).run(source, "seg")


def test_not_an_image(tiny_binary_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(RuntimeUserError, match="not a readable image"):
        Accelerator(tiny_binary_path).run(bad, "seg")


def test_device_fault_names_instruction(tiny_binary_path: Path) -> None:
    acc = Accelerator(tiny_binary_path)
    mem = acc.binary.meta["memory"]
    acc.device.write_dram(mem["insn_addr"] + 32 * 3, bytes([0xEE]) + bytes(31))
    with pytest.raises(DeviceFault, match=r"device error at instruction 3 \(opcode 0xee\): unknown opcode"):
        acc.driver.run(mem["insn_addr"], 10)


def test_unknown_backend(tiny_binary_path: Path) -> None:
    with pytest.raises(RuntimeUserError, match="unknown backend 'fpga'; available: golden"):
        Accelerator(tiny_binary_path, backend="fpga")


def test_jpeg_input_of_any_size(tiny_binary_path: Path, coffee_png: Path, tmp_path: Path) -> None:
    from PIL import Image

    jpg = tmp_path / "photo.jpg"
    Image.open(coffee_png).resize((123, 77)).save(jpg, quality=90)
    out = Accelerator(tiny_binary_path).run(jpg, "seg")
    assert out.output.shape == (16, 19) and np.isfinite(out.output).all()
