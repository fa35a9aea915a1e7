"""The runtime API: open a binary, place an input, run a task on a backend, read outputs.

    acc = Accelerator("model.emb", backend="golden")
    result = acc.run("photo.jpg", task="seg")
    result.output          # float32 [num_patches, channels], dequantized

Inputs: an image file (PNG/JPEG; any size, resized by the model's own preprocessing), an
HxWx3 uint8 array, a ``.npy`` file or float array of exactly the model's input shape
([C, H, W] or [1, C, H, W], already preprocessed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgemoe.compiler import binary as binfmt
from edgemoe.compiler.ir import patchify
from edgemoe.hw import config as hwconfig
from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics import fixedpoint

from .backends import open_device
from .driver import Counters, Driver
from .errors import RuntimeUserError

InputLike = str | os.PathLike | np.ndarray


@dataclass
class RunResult:
    task: str
    #: Dequantized output, float32 [num_patches, channels].
    output: np.ndarray
    #: The integers the device wrote.
    raw: np.ndarray
    counters: Counters

    def grid(self, grid: tuple[int, int]) -> np.ndarray:
        """Output as [channels, rows, cols] over the patch grid."""
        return self.output.T.reshape(-1, *grid)


def _dtype(bits: int) -> str:
    return {8: "i1", 16: "<i2"}[bits]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise RuntimeUserError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise RuntimeUserError(f"{path}: not a readable image ({e})") from None


class Accelerator:
    def __init__(
        self,
        binary: binfmt.Binary | str | os.PathLike,
        backend: str = "golden",
        hw: str | HardwareConfig | None = None,
    ) -> None:
        self.binary = binary if isinstance(binary, binfmt.Binary) else binfmt.load(binary)
        meta = self.binary.meta
        self.cfg = hwconfig.load(hw if hw is not None else meta["hardware"]["name"])
        self.binary.check_config(self.cfg)
        mem = meta["memory"]
        self.device = open_device(backend, self.cfg, mem["dram_bytes"])
        self.driver = Driver(self.device)
        self.driver.check_hardware(self.cfg)
        self.device.write_dram(mem["insn_addr"], self.binary.insn)
        self.device.write_dram(mem["weights_addr"], self.binary.weights)
        self.model = meta["model"]

    @property
    def tasks(self) -> list[str]:
        return self.binary.tasks

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.model["image_size"])  # type: ignore[return-value]

    def preprocess(self, source: InputLike) -> np.ndarray:
        """Any accepted input -> float [C, H, W] in the model's normalised input space."""
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.suffix.lower() == ".npy":
                if not path.exists():
                    raise RuntimeUserError(f"{path}: no such file")
                try:
                    source = np.load(path, allow_pickle=False)
                except (ValueError, OSError) as e:
                    raise RuntimeUserError(f"{path}: not a readable .npy file ({e})") from None
            else:
                source = read_image(path)
        arr = np.asarray(source)
        if arr.dtype == np.uint8:
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise RuntimeUserError(f"an image must be HxWx3 uint8, got shape {arr.shape}")
            from edgemoe.compiler.model import ModelConfig, preprocess

            return preprocess(arr, ModelConfig.from_dict(self.model))[0].double().numpy()
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if tuple(arr.shape) != self.input_shape or not np.issubdtype(arr.dtype, np.floating):
            raise RuntimeUserError(
                f"input tensor has shape {tuple(arr.shape)} and dtype {arr.dtype}; the model takes "
                f"a float tensor of shape {list(self.input_shape)} (or [1, ...]) or an image"
            )
        return arr.astype(np.float64)

    def patches(self, source: InputLike) -> np.ndarray:
        return patchify(self.preprocess(source), self.model["patch"])

    def place_input(self, task: str, patches: np.ndarray) -> None:
        spec = self.binary.task(task)["input"]
        q = fixedpoint.quantize(patches, spec["scale"], spec["bits"])
        self.device.write_dram(spec["addr"], q.astype(_dtype(spec["bits"])).tobytes())

    def read_tensor(self, spec: dict[str, Any]) -> np.ndarray:
        rows, cols = spec["shape"]
        nbytes = spec["bits"] // 8
        raw = self.device.read_dram(spec["addr"], rows * spec["stride"] * nbytes)
        return np.frombuffer(raw, dtype=_dtype(spec["bits"])).reshape(rows, spec["stride"])[:, :cols]

    def run(self, source: InputLike, task: str) -> RunResult:
        t = self.binary.task(task)
        self.place_input(task, self.patches(source))
        mem = self.binary.meta["memory"]
        counters = self.driver.run(mem["insn_addr"] + 32 * t["insn_index"], t["insn_count"])
        raw = self.read_tensor(t["output"]).astype(np.int64)
        out = fixedpoint.dequantize(raw, t["output"]["scale"]).astype(np.float32)
        return RunResult(task, out, raw, counters)
