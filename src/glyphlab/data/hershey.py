"""The ``greek`` builder: lower case Greek from the Hershey fonts' strokes
(:mod:`glyphlab.data.hershey_strokes`) and the other ``sources`` (:mod:`glyphlab.data.prototypes`).
"""
from __future__ import annotations

from glyphlab.data import GlyphSet
from glyphlab.data.hershey_strokes import GREEK, glyphs  # noqa: F401 - glyphs: also importable from here
from glyphlab.data.prototypes import stroke_set


def build_greek(*, image_size: int = 32, samples_per_class: int = 200, seed: int = 0,
                sources=("hershey", "allographs", "print_fonts"), **style) -> GlyphSet:
    """Handwritten lower case Greek α..ω (24 classes, :data:`GREEK` order) from Hershey's Greek
    strokes, the project's allographs (a closed θ, a pointed ν ...) and print fonts' strokes
    (see :mod:`glyphlab.data.prototypes`).

    Returns images uint8 ``[24 * samples_per_class, image_size, image_size]``.
    """
    return stroke_set(GREEK, GREEK, image_size, samples_per_class, seed, sources, style)
