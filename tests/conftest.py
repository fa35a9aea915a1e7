"""Shared fixtures: compiled binaries of the tiny model (built once per test worker)."""

from __future__ import annotations

import os
from pathlib import Path

# The suite runs as `pytest -n 2` on two cores: one BLAS/torch thread per worker, or the
# workers' thread pools contend and small matrix products get 10-100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest


@pytest.fixture(scope="session")
def tiny_binary_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model compiled for the tiny hardware at w8a16, saved to disk."""
    from edgemoe.compiler.pipeline import compile_model

    path = tmp_path_factory.mktemp("bin") / "tiny.emb"
    compile_model("tiny", "tiny", "w8a16", calib=2).save(path)
    return path


@pytest.fixture(scope="session")
def coffee_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The held-out natural image (not used for calibration) as a PNG file."""
    from PIL import Image

    from edgemoe.compiler.calibration import FIDELITY_IMAGE, natural_image

    path = tmp_path_factory.mktemp("img") / "coffee.png"
    Image.fromarray(natural_image(FIDELITY_IMAGE)).save(path)
    return path
