"""scikit-learn's handwritten digits: 1,797 real digits 0-9, shipped with scikit-learn (no download).

The source images are 8x8 with values 0..16: each pixel counts the ink in a 4x4 block
of the original 32x32 bitmaps (UCI "Optical Recognition of Handwritten Digits").
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from glyphlab.data import GlyphSet
from glyphlab.data.folder import check_options

SOURCE_MAX = 16  # load_digits pixel values are ink counts 0..16


def build(*, image_size: int = 32) -> GlyphSet:
    """Images uint8 ``[1797, image_size, image_size]`` (ink 255 on 0), labels int64 ``[1797]``,
    classes ``"0"``..``"9"``."""
    from sklearn.datasets import load_digits

    check_options(image_size, "skip")
    digits = load_digits()
    # Resize in float ("F" mode) so the 0..16 levels are not quantised twice; bicubic turns
    # each 8x8 cell into a smooth stroke instead of a block. Overshoot is clipped.
    scaled = digits.images.astype(np.float32) * (255.0 / SOURCE_MAX)  # float32 [1797, 8, 8]
    images = np.stack([
        np.asarray(Image.fromarray(img, mode="F").resize((image_size, image_size), Image.Resampling.BICUBIC))
        for img in scaled])  # float32 [1797, image_size, image_size]
    images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    return GlyphSet(images, digits.target.astype(np.int64), [str(d) for d in range(10)],
                    meta={"source": "sklearn.datasets.load_digits"})
