"""Calibration inputs: natural images shipped with scikit-image, cropped and flipped.

``coffee`` is held out of calibration: it is the image the fidelity checks use, so fidelity is
measured on an input the quantizer has not seen.
"""

from __future__ import annotations

import numpy as np

#: Colour images bundled with scikit-image (no download needed).
CALIBRATION_IMAGES = ("astronaut", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
FIDELITY_IMAGE = "coffee"


def natural_image(name: str) -> np.ndarray:
    """An HxWx3 uint8 image from ``skimage.data``."""
    import skimage.data

    img = getattr(skimage.data, name)()
    return np.ascontiguousarray(img[..., :3])


def calibration_images(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` images: each bundled image once, then random crops and flips of them."""
    rng = np.random.default_rng(seed)
    base = [natural_image(name) for name in CALIBRATION_IMAGES]
    out: list[np.ndarray] = []
    for i in range(n):
        img = base[i % len(base)]
        if i >= len(base):
            h, w = img.shape[:2]
            ch, cw = int(h * rng.uniform(0.5, 0.9)), int(w * rng.uniform(0.5, 0.9))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            img = img[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                img = img[:, ::-1]
        out.append(np.ascontiguousarray(img))
    return out
