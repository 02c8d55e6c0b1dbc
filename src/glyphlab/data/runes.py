"""The 24 runes of the Elder Futhark: the project's own stroke table and the ``runes`` builder.

Each rune is written as a carver cuts it: straight strokes, the staff first, then the twigs.
Coordinates are (x, y) in the unit box with y down; staves run from y = 0.12 to 0.88, so runes
keep their relative height (ᛜ is small, ᚲ sits in the upper half) after the stroke engine's
handwriting variation. Labels follow :data:`RUNES`.
"""
from __future__ import annotations

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.data.strokes import synthesize

# Label order (0..23), the Elder Futhark row by row: f u þ a r k g w / h n i j ï p z s / t b e m l ŋ d o.
# The a-rune is written with ᚫ (U+16AB) as the project's class name; it is drawn as ansuz.
RUNES = "ᚠᚢᚦᚫᚱᚲᚷᚹᚺᚾᛁᛃᛇᛈᛉᛋᛏᛒᛖᛗᛚᛜᛞᛟ"

T, B = 0.12, 0.88  # top and bottom of a staff

# rune -> strokes; each stroke is a list of (x, y) points (straight cuts between them).
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "ᚠ": [[(0.36, T), (0.36, B)], [(0.36, 0.36), (0.68, 0.14)], [(0.36, 0.58), (0.68, 0.36)]],
    "ᚢ": [[(0.32, B), (0.32, T)], [(0.32, T), (0.70, 0.40)], [(0.70, 0.40), (0.70, B)]],
    "ᚦ": [[(0.36, T), (0.36, B)], [(0.36, 0.30), (0.64, 0.50)], [(0.64, 0.50), (0.36, 0.70)]],
    "ᚫ": [[(0.36, T), (0.36, B)], [(0.36, 0.14), (0.68, 0.36)], [(0.36, 0.36), (0.68, 0.58)]],
    "ᚱ": [[(0.34, T), (0.34, B)], [(0.34, T), (0.64, 0.30)], [(0.64, 0.30), (0.34, 0.50)],
          [(0.34, 0.50), (0.66, B)]],
    "ᚲ": [[(0.62, 0.14), (0.38, 0.34)], [(0.38, 0.34), (0.62, 0.54)]],
    "ᚷ": [[(0.28, T), (0.72, B)], [(0.72, T), (0.28, B)]],
    "ᚹ": [[(0.36, T), (0.36, B)], [(0.36, T), (0.64, 0.30)], [(0.64, 0.30), (0.36, 0.48)]],
    "ᚺ": [[(0.32, T), (0.32, B)], [(0.68, T), (0.68, B)], [(0.32, 0.38), (0.68, 0.62)]],
    "ᚾ": [[(0.50, T), (0.50, B)], [(0.34, 0.38), (0.66, 0.60)]],
    "ᛁ": [[(0.50, T), (0.50, B)]],
    "ᛃ": [[(0.48, 0.14), (0.28, 0.34)], [(0.28, 0.34), (0.48, 0.54)],
          [(0.52, 0.46), (0.72, 0.66)], [(0.72, 0.66), (0.52, 0.86)]],
    "ᛇ": [[(0.50, T), (0.50, B)], [(0.50, T), (0.70, 0.30)], [(0.50, B), (0.30, 0.70)]],
    "ᛈ": [[(0.32, T), (0.32, B)], [(0.32, T), (0.56, 0.34)], [(0.56, 0.34), (0.72, 0.16)],
          [(0.32, B), (0.56, 0.66)], [(0.56, 0.66), (0.72, 0.84)]],
    "ᛉ": [[(0.50, B), (0.50, T)], [(0.50, 0.46), (0.26, 0.18)], [(0.50, 0.46), (0.74, 0.18)]],
    "ᛋ": [[(0.62, T), (0.36, 0.44)], [(0.36, 0.44), (0.64, 0.56)], [(0.64, 0.56), (0.38, B)]],
    "ᛏ": [[(0.50, T), (0.50, B)], [(0.50, T), (0.26, 0.38)], [(0.50, T), (0.74, 0.38)]],
    "ᛒ": [[(0.34, T), (0.34, B)], [(0.34, T), (0.64, 0.30)], [(0.64, 0.30), (0.34, 0.50)],
          [(0.34, 0.50), (0.66, 0.70)], [(0.66, 0.70), (0.34, B)]],
    "ᛖ": [[(0.30, B), (0.30, T)], [(0.30, T), (0.50, 0.38)], [(0.50, 0.38), (0.70, T)],
          [(0.70, T), (0.70, B)]],
    "ᛗ": [[(0.30, T), (0.30, B)], [(0.70, T), (0.70, B)], [(0.30, T), (0.70, 0.46)],
          [(0.70, T), (0.30, 0.46)]],
    "ᛚ": [[(0.38, T), (0.38, B)], [(0.38, T), (0.66, 0.34)]],
    "ᛜ": [[(0.50, 0.28), (0.68, 0.50)], [(0.68, 0.50), (0.50, 0.72)], [(0.50, 0.72), (0.32, 0.50)],
          [(0.32, 0.50), (0.50, 0.28)]],
    "ᛞ": [[(0.28, T), (0.28, B)], [(0.72, T), (0.72, B)], [(0.28, T), (0.72, B)], [(0.72, T), (0.28, B)]],
    "ᛟ": [[(0.50, T), (0.28, 0.38)], [(0.50, T), (0.72, 0.38)], [(0.28, 0.38), (0.72, B)],
          [(0.72, 0.38), (0.28, B)]],
}


def rune_strokes(rune: str) -> list[np.ndarray]:
    """The strokes of one rune: list of float ``[n_points, 2]`` (x, y) in the unit box."""
    return [np.array(stroke, dtype=np.float64) for stroke in STROKES[rune]]


def build(*, image_size: int = 32, samples_per_class: int = 300, seed: int = 0, root=None,
          on_bad_file: str = "skip", **style) -> GlyphSet:
    """Handwritten Elder Futhark runes, 24 classes in :data:`RUNES` order.

    Without ``root``: ``samples_per_class`` synthetic images per rune drawn by the stroke engine
    with ``style`` (jitter, wobble, pen_width, rotation, slant, scale, shift, margin; see
    :mod:`glyphlab.data.strokes`). With ``root``: the user's own drawings read from that folder
    (one subfolder per rune, or ``<rune>_<anything>.png`` files), labelled in rune order.
    Returns images uint8 ``[N, image_size, image_size]`` and labels int64 ``[N]``.
    """
    if root is not None:
        from glyphlab.data.folder import read_folder  # only needed for the user's own drawings

        return read_folder(root, image_size=image_size, on_bad_file=on_bad_file, class_order=list(RUNES))
    return synthesize([rune_strokes(r) for r in RUNES], list(RUNES), samples_per_class, image_size, seed, **style)
