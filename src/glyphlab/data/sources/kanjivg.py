"""Strokes from KanjiVG: the stroke source behind ``kana``, ``latin`` and ``digits_synth``.

The ``kanjivg`` package ships KanjiVG's SVGs (``kanji/<5-hex-digit codepoint>.svg``, and variant
forms such as ``04e14-Kaisho.svg`` that :func:`glyphs` adds as extra prototypes). Each ``<path>`` is one stroke, in stroke
order; its path data is parsed with ``svg.path`` and sampled into a polyline, then fed to the
stroke engine (:mod:`glyphlab.data.strokes`) for the handwriting variation.

Glyphs keep their placement in KanjiVG's 109×109 box: small kana (ぁ, っ, ャ, ヵ …) differ from
their full-size twins only by size and position, and dakuten are small, so nothing is rescaled
per character. One fixed mapping per family (kana, latin, digits) centres the family's
common ink box in the image, which also keeps lower case letters below the capitals' top.
"""
from __future__ import annotations

import functools
import importlib.metadata
import xml.etree.ElementTree as ET

import numpy as np

from glyphlab.data.strokes import family_box
from glyphlab.errors import DataError

FLATNESS = 0.25          # max gap between a curve and its polyline, KanjiVG units (~0.1 px at 48 px)
SAMPLE_STEP = 2.0        # point spacing along other curved segments (arcs), KanjiVG units


@functools.lru_cache(maxsize=1)
def svg_files() -> dict[str, str]:
    """Character -> path of its plain (non-variant) KanjiVG SVG, from the installed package."""
    try:
        dist = importlib.metadata.distribution("kanjivg")
    except importlib.metadata.PackageNotFoundError:
        raise DataError("expected the 'kanjivg' package for stroke data (pip install kanjivg), "
                        "found it not installed") from None
    files = {}
    for f in dist.files or ():
        name = f.name
        if f.parent.name == "kanji" and name.endswith(".svg") and "-" not in name:
            files[chr(int(name[:-4], 16))] = str(dist.locate_file(f))
    if not files:
        raise DataError("expected KanjiVG SVG files in the installed 'kanjivg' package, found none")
    return files


def available_characters() -> str:
    """Every character KanjiVG has strokes for, sorted by codepoint."""
    return "".join(sorted(svg_files()))


@functools.lru_cache(maxsize=1)
def variant_files() -> dict[str, tuple[str, ...]]:
    """Character -> paths of its KanjiVG variant SVGs (``04e14-Kaisho.svg`` ...), if it has any."""
    dist = importlib.metadata.distribution("kanjivg")
    files: dict[str, list[str]] = {}
    for f in dist.files or ():
        if f.parent.name == "kanji" and f.name.endswith(".svg") and "-" in f.name:
            files.setdefault(chr(int(f.name.split("-")[0], 16)), []).append(str(dist.locate_file(f)))
    return {c: tuple(sorted(paths)) for c, paths in files.items()}


@functools.lru_cache(maxsize=None)
def _raw_strokes(char: str, path: str | None = None) -> tuple[np.ndarray, ...]:
    """One character's strokes in KanjiVG units: float ``[n_points, 2]`` each, stroke order.

    ``path``: one of its variant SVGs instead of the plain one.
    """
    from svg.path import Move, parse_path

    root = ET.parse(path or svg_files()[char]).getroot()
    strokes = []
    for element in root.iter("{http://www.w3.org/2000/svg}path"):
        points = []
        for segment in parse_path(element.get("d")):
            if isinstance(segment, Move):
                continue
            ts = np.linspace(0, 1, _pieces(segment) + 1)[0 if not points else 1:]  # previous piece ended here
            points.extend(segment.point(t) for t in ts)
        if points:
            strokes.append(np.array([(p.real, p.imag) for p in points]))
    if not strokes:
        raise DataError(f"expected stroke paths in KanjiVG's file for {char!r}, found none")
    return tuple(strokes)


@functools.lru_cache(maxsize=None)
def _family_mapping(family: str) -> tuple[float, float]:
    """(scale, offset) taking KanjiVG units to the unit box so ``family``'s ink box is centred."""
    return family_box(np.concatenate([s for c in family for s in _raw_strokes(c)]))


def _pieces(segment) -> int:
    """How many straight pieces approximate an svg.path segment within :data:`FLATNESS`.

    Cubic Béziers (all KanjiVG strokes) use Wang's bound: n = sqrt(3/4 · max|P_i - 2P_(i+1) + P_(i+2)| / tol),
    so nearly straight strokes get few points and tight hooks get many.
    """
    from svg.path import Close, CubicBezier, Line, QuadraticBezier

    if isinstance(segment, (Line, Close)):
        return 1
    if isinstance(segment, (CubicBezier, QuadraticBezier)):
        ctrl = ([segment.control1, segment.control2] if isinstance(segment, CubicBezier) else [segment.control])
        p = np.array([segment.start, *ctrl, segment.end])
        bend = np.abs(p[:-2] - 2 * p[1:-1] + p[2:]).max()
        factor = 0.75 if isinstance(segment, CubicBezier) else 0.25
        return max(1, int(np.ceil(np.sqrt(factor * bend / FLATNESS))))
    # svg.path's default length tolerance (1e-12) is very slow; a point count needs a rough length.
    return max(1, int(np.ceil(segment.length(error=1e-3, min_depth=2) / SAMPLE_STEP)))


def glyph(char: str, family: str) -> list[np.ndarray]:
    """The strokes of ``char`` in the unit box (placed as its ``family`` is): float ``[n, 2]`` each."""
    scale, offset = _family_mapping(family)
    return [s * scale + offset for s in _raw_strokes(char)]


def glyphs(char: str, family: str) -> list[list[np.ndarray]]:
    """``char``'s plain strokes and those of its variant SVGs that draw a different shape (not only
    another stroke order), placed as :func:`glyph` places them."""
    scale, offset = _family_mapping(family)
    out, seen = [], set()
    for path in (None, *variant_files().get(char, ())):
        strokes = _raw_strokes(char, path)
        # same shape = the same set of strokes, whatever their order (rounded to 1 KanjiVG unit)
        shape = frozenset(tuple(np.rint(s[[0, -1]]).ravel()) for s in strokes)
        if shape not in seen:
            seen.add(shape)
            out.append([s * scale + offset for s in strokes])
    return out
