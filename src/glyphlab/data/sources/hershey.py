"""Strokes from the Hershey fonts: a stroke source of ``greek``, ``latin`` and ``digits_synth``.

The Hershey fonts (A. V. Hershey, U.S. National Bureau of Standards; shipped inside the
``Hershey-Fonts`` wheel, so they work offline from a fresh install) draw every glyph as pen
strokes — exactly the stroke engine's input. Only the single-stroke ("simplex") families are
used: the complex and triplex ones draw thick lines as several parallel strokes, which the
engine's per-stroke variation would pull apart. Identical glyphs of different fonts
(``rowmans`` = ``futural``, ``cursive``'s letters = ``scripts``') are kept once.

Hershey units: x right, y down, capitals from y = -12 to the baseline at y = 9, lower case
from y = -5, descenders to y = 16. :func:`glyph` places a glyph in the unit box with one
mapping per (font, family), like :func:`glyphlab.data.sources.kanjivg.glyph`.
"""
from __future__ import annotations

import functools

import numpy as np

from glyphlab.data.strokes import family_box
from glyphlab.errors import DataError

# Greek lower case α..ω (no final ς): Omniglot's Greek character01..24 in this order.
GREEK = "αβγδεζηθικλμνξοπρστυφχψω"
# The fonts used for each kind of character, by style; within a font, how a character is typed.
LATIN_FONTS = {"roman": "futural", "script": "scripts"}
DIGIT_FONTS = {"roman": "futural", "script": "scripts"}
GREEK_FONTS = {"greek": "greeks"}
STYLES = ("roman", "script", "greek")
GREEK_KEYS = dict(zip(GREEK, "abcdefghijklmnopqrstuvwx"))  # greeks types α as a, β as b ... ω as x


def fonts_for(char: str, styles=STYLES) -> tuple[str, ...]:
    """The Hershey fonts of ``styles`` that draw ``char`` (empty when none does)."""
    fonts = GREEK_FONTS if char in GREEK else DIGIT_FONTS if char.isdigit() and char.isascii() \
        else LATIN_FONTS if char.isascii() and char.isalpha() else {}
    return tuple(font for style, font in fonts.items() if style in styles)


@functools.lru_cache(maxsize=None)
def _font(name: str):
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        raise DataError("expected the 'Hershey-Fonts' package for Hershey strokes (pip install Hershey-Fonts), "
                        "found it not installed") from None
    font = HersheyFonts()
    font.load_default_font(name)
    return font


@functools.lru_cache(maxsize=None)
def raw_strokes(char: str, font: str) -> tuple[np.ndarray, ...]:
    """``char`` in Hershey ``font``: float ``[n_points, 2]`` strokes in Hershey units (y down)."""
    key = GREEK_KEYS.get(char, char) if font in GREEK_FONTS.values() else char
    strokes = tuple(np.asarray(s, dtype=np.float64) for s in _font(font).strokes_for_text(key))
    if not strokes:
        raise DataError(f"expected Hershey font {font!r} to draw {char!r}, found no strokes")
    return strokes


@functools.lru_cache(maxsize=None)
def family_mapping(font: str, family: str) -> tuple[float, float]:
    """(scale, offset) taking ``font``'s Hershey units to the unit box so ``family``'s ink box is centred.

    Only the family's characters that ``font`` draws count (a Greek font has no Latin letters).
    """
    pts = [p for c in family if font in fonts_for(c) for s in raw_strokes(c, font) for p in s]
    if not pts:
        raise DataError(f"expected Hershey font {font!r} to draw some of {family!r}, found none")
    return family_box(np.array(pts))


def glyphs(char: str, family: str, styles=STYLES) -> list[list[np.ndarray]]:
    """Every distinct Hershey drawing of ``char`` in ``styles``, placed as its ``family`` is in each font."""
    out, seen = [], set()
    for font in fonts_for(char, styles):
        strokes = raw_strokes(char, font)
        key = tuple(tuple(map(tuple, s)) for s in strokes)
        if key in seen:
            continue
        seen.add(key)
        if not any(font in fonts_for(c) for c in family):  # a Greek font asked for α of a Latin set: no place for it
            continue
        scale, offset = family_mapping(font, family)
        out.append([s * scale + offset for s in strokes])
    return out
