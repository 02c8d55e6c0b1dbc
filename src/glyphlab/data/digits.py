"""scikit-learn's handwritten digits: 1,797 real digits 0-9, shipped with scikit-learn (no download).

The source images are 8x8 with values 0..16: each pixel counts the ink in a 4x4 block
of the original 32x32 bitmaps (UCI "Optical Recognition of Handwritten Digits": NIST's
programs cut each digit from a scanned form and size-normalised it into a binary 32x32 bitmap).
:func:`block_counts` and :func:`upscale` are those two steps; the stroke engine's
``low_res_mode: bitmap`` makes synthetic digits the same way (glyphlab.data.strokes).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from glyphlab.data import GlyphSet
from glyphlab.data.folder import check_options

SOURCE_MAX = 16  # load_digits pixel values are ink counts 0..16
BLOCK = 4        # each of them counts the on-pixels of a 4x4 block of the 32x32 bitmap
# NIST's normalisation also evened the stroke width: whatever the digit and the pen, the 32x32 bitmaps
# hold about the same ink (the 0..16 counts of an image sum to 250-400 on-pixels of 1,024, 1s and 8s alike)
BITMAP_INK = (0.25, 0.38)


def even_ink(bitmap: np.ndarray, share: float) -> np.ndarray:
    """Bool ``[H, W]`` bitmap with its strokes grown or thinned one pixel at a time (4-neighbour
    dilation / erosion) to the step whose on-pixel share is closest to ``share``; never emptied."""
    from scipy.ndimage import binary_dilation, binary_erosion

    target = share * bitmap.size
    grow = bitmap.sum() < target
    best = bitmap
    while True:
        step = binary_dilation(best) if grow else binary_erosion(best)
        if not step.any() or abs(int(step.sum()) - target) >= abs(int(best.sum()) - target):
            return best
        best = step


def block_counts(bitmaps: np.ndarray) -> np.ndarray:
    """Bool ``[N, BLOCK*s, BLOCK*s]`` bitmaps → float32 ``[N, s, s]`` on-pixel counts per block, 0..16."""
    n, h, w = bitmaps.shape
    return bitmaps.reshape(n, h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum((2, 4), dtype=np.float32)


def upscale(counts: np.ndarray, image_size: int) -> np.ndarray:
    """Float ``[N, s, s]`` ink counts 0..16 → uint8 ``[N, image_size, image_size]`` (ink 255 on 0), as
    :func:`build` shows the real digits to a model."""
    # Resize in float ("F" mode) so the 0..16 levels are not quantised twice; bicubic turns
    # each 8x8 cell into a smooth stroke instead of a block. Overshoot is clipped.
    scaled = np.asarray(counts, dtype=np.float32) * (255.0 / SOURCE_MAX)
    images = np.stack([
        np.asarray(Image.fromarray(img, mode="F").resize((image_size, image_size), Image.Resampling.BICUBIC))
        for img in scaled])  # float32 [N, image_size, image_size]
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def build(*, image_size: int = 32) -> GlyphSet:
    """Images uint8 ``[1797, image_size, image_size]`` (ink 255 on 0), labels int64 ``[1797]``,
    classes ``"0"``..``"9"``."""
    from sklearn.datasets import load_digits

    check_options(image_size, "skip")
    digits = load_digits()
    images = upscale(digits.images, image_size)
    return GlyphSet(images, digits.target.astype(np.int64), [str(d) for d in range(10)],
                    meta={"source": "sklearn.datasets.load_digits"})
