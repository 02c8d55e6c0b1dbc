"""Several ways to write each character: prototypes gathered from the stroke sources.

A synthetic set's ``sources`` key names where its prototypes come from:

- ``kanjivg``    KanjiVG's strokes (:mod:`glyphlab.data.sources.kanjivg`), with its variant SVGs where
                 they exist (kanji only: KanjiVG has none for kana, Latin or digits);
- ``hershey``    the single-stroke Hershey fonts (:mod:`glyphlab.data.sources.hershey`): roman and
                 script Latin letters and digits, Greek; ``hershey_roman`` / ``hershey_script``
                 only the upright roman or only the joined-up script letters and digits;
- ``allographs`` the project's own table of common allographs (:mod:`glyphlab.data.sources.allographs`);
- ``fonts``      OFL handwriting fonts from PyPI, thinned to centre-line strokes
                 (:mod:`glyphlab.data.sources.fonts`); ``print_fonts`` the same for two print
                 families (Comfortaa, Noto Sans upright and italic; Latin, Greek, digits).

Every image draws one of its class's prototypes at random (see
:func:`glyphlab.data.strokes.synthesize`); ``meta["prototypes"]`` records how many each class has.
"""
from __future__ import annotations

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.data.strokes import synthesize
from glyphlab.errors import DataError

SOURCES = ("kanjivg", "hershey", "hershey_roman", "hershey_script", "allographs", "fonts", "print_fonts")


def check_sources(sources) -> tuple[str, ...]:
    sources = (sources,) if isinstance(sources, str) else tuple(sources or ())
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise DataError(f"expected sources among {', '.join(SOURCES)} (a list such as [kanjivg,hershey]), "
                        f"got {list(sources)!r}")
    return tuple(dict.fromkeys(sources))


def prototypes(char: str, family: str, sources) -> list[list[np.ndarray]]:
    """Every prototype of ``char`` from ``sources``, in the unit box, placed as its ``family`` is."""
    out = []
    for source in check_sources(sources):
        if source == "kanjivg":
            from glyphlab.data.sources import kanjivg

            if char in kanjivg.svg_files():
                out += kanjivg.glyphs(char, family)
        elif source.startswith("hershey"):
            from glyphlab.data.sources import hershey

            styles = hershey.STYLES if source == "hershey" else (source.split("_")[1], "greek")
            out += hershey.glyphs(char, family, styles)
        elif source in ("fonts", "print_fonts"):
            from glyphlab.data.sources import fonts

            out += fonts.glyphs(char, family, "handwriting" if source == "fonts" else "print")
        else:
            from glyphlab.data.sources import allographs

            out += allographs.glyphs(char, family)
    return out


def stroke_set(chars: str, family: str, image_size: int, samples_per_class: int, seed: int, sources,
               style: dict, same_size: dict[str, str] | None = None) -> GlyphSet:
    """``samples_per_class`` images of every character, each drawn from one of its prototypes.

    ``same_size``: character → a character it keeps its size against (ぁ → あ): with ``fit`` it is
    scaled as that one's first prototype is, not filled to the box on its own."""
    sources = check_sources(sources)
    protos = [prototypes(c, family, sources) for c in chars]
    boxes = {}
    for c, partner in (same_size or {}).items():
        if c in chars and (ref := prototypes(partner, family, sources)):
            every = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in ref[0]])
            boxes[c] = (every.min(0), every.max(0))
    missing = [c for c, p in zip(chars, protos) if not p]
    if missing:
        raise DataError(f"expected stroke data for every character from sources {', '.join(sources)}, found none "
                        f"for: {' '.join(missing)} ({' '.join(f'U+{ord(c):04X}' for c in missing)})")
    out = synthesize(protos, list(chars), samples_per_class, image_size, seed, fit_boxes=boxes, **style)
    out.meta["source"] = "+".join(sources)
    return out
