"""Glyph images drawn from fonts (``data=kana renderer=fonts``), and finding a font that has given characters
(for labels in figures and the drawing page). Strokes from fonts are :mod:`glyphlab.data.sources.fonts`.

Each character is drawn with every font that really contains it (checked in the font's
character map, so no empty or "tofu" box is drawn), at several sizes, small shifts and
small rotations. Fonts come from three places, in this order: the configured
``font_files``, IPAexGothic from the ``matplotlib-fontja`` package (kana, kanji, Latin),
and the system's fonts (``matplotlib.font_manager.findSystemFonts``).
"""
from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.errors import DataError, check_image_size

# Draw at this multiple of the image size, then box-average down: smooth edges after rotation.
# 2 looks the same as 4 at 28-32 px and renders faster (Pillow's rotate dominates).
SUPERSAMPLE = 2
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def render_fonts(chars: list[str] | str, *, image_size: int, samples_per_class: int, seed: int,
                 font_files: list[str] | None = None, sizes=(0.7, 0.75, 0.8), shift: float = 0.08,
                 rotation: float = 10.0, system_fonts: bool = True) -> GlyphSet:
    """Draw every character ``samples_per_class`` times with the fonts that have it.

    chars:       the classes, each a character (or a short string drawn as one glyph); a str is split
                 into its characters.
    sizes:       font sizes (em height) as fractions of ``image_size``; each sample picks one. Keep the
                 range narrow where size tells classes apart (small kana ゃ っ vs や つ are ~0.7 as big).
    shift:       largest shift of the glyph centre, as a fraction of ``image_size``, per axis.
    rotation:    largest rotation, in degrees, either way.
    font_files:  extra .ttf/.otf/.ttc files, used before the bundled and system fonts.
    system_fonts: also use the system's fonts that have the character.

    The fonts of a character take turns, so each is used about equally often; sizes, shifts
    and rotations are drawn from a generator seeded with ``seed``.
    Returns a :class:`GlyphSet`: images uint8 ``[len(chars) * samples_per_class, image_size,
    image_size]`` (ink 255 on 0), labels int64 in the order of ``chars``, classes ``chars``.
    """
    chars = list(chars)
    _check_arguments(chars, image_size, samples_per_class, sizes, shift, rotation)
    fonts = _fonts(tuple(font_files or ()), system_fonts)
    # A font that maps a character to an empty glyph (a space, or a stub) is no use either.
    # Nor is one FreeType cannot draw at every size asked for (a bitmap-only font: fixed strikes, colour emoji).
    covering = {ch: [f for f in fonts if _covers(f, ch)
                     and all(_draw(ch, f, size, 0, 0, 0, image_size).any() for size in dict.fromkeys(sizes))]
                for ch in chars}
    missing = [ch for ch, found in covering.items() if not found]
    if missing:
        codes = " ".join(f"U+{ord(c):04X}" for ch in missing[:20] for c in ch)
        raise DataError(f"no font has {len(missing)} character(s): {' '.join(missing[:20])} ({codes}); "
                        f"searched {len(fonts)} fonts; add one that has them with font_files")

    rng = np.random.default_rng(seed)
    images = np.empty((len(chars) * samples_per_class, image_size, image_size), np.uint8)
    for c, ch in enumerate(chars):
        for i in range(samples_per_class):
            font = covering[ch][i % len(covering[ch])]
            size = sizes[rng.integers(len(sizes))]
            dx, dy = rng.uniform(-shift, shift, 2)
            angle = rng.uniform(-rotation, rotation)
            images[c * samples_per_class + i] = _draw(ch, font, size, dx, dy, angle, image_size)
    labels = np.repeat(np.arange(len(chars)), samples_per_class)
    used = sorted({Path(f).name for found in covering.values() for f in found})
    return GlyphSet(images, labels, chars, None, {"source": "fonts", "fonts": used})


def font_for(chars) -> str | None:
    """Path of a font file (IPAexGothic first, then system fonts) that has all of ``chars``, else None.

    For labelling plots with the characters themselves; whitespace is ignored.
    """
    needed = {ord(c) for text in chars for c in str(text) if not c.isspace()}
    for path in _fonts((), True):
        if needed <= _cmap(path):
            return path
    return None


def ipaex_gothic() -> str | None:
    """Path of IPAexGothic shipped in the matplotlib-fontja package, or None when it is not installed.

    Found through the package's installed-file list, so the package is not imported
    (importing it changes matplotlib's default font).
    """
    try:
        files = metadata.files("matplotlib-fontja") or []
    except metadata.PackageNotFoundError:
        return None
    found = sorted(str(f.locate()) for f in files if f.name.lower() == "ipaexg.ttf")
    return found[0] if found else None


def _check_arguments(chars, image_size, samples_per_class, sizes, shift, rotation):
    if not chars or any(not isinstance(ch, str) or not ch for ch in chars):
        raise DataError(f"chars must be a non-empty list of non-empty strings, got {chars!r}")
    duplicates = sorted({ch for ch in chars if chars.count(ch) > 1})
    if duplicates:
        raise DataError(f"chars must be distinct, found repeated: {' '.join(duplicates)}")
    check_image_size(image_size, "image_size", error=DataError)
    if samples_per_class < 1:
        raise DataError(f"samples_per_class must be at least 1, got {samples_per_class}")
    if not sizes or any(not 0 < s <= 1.5 for s in sizes):
        raise DataError(f"sizes must be fractions of the image size in (0, 1.5], got {list(sizes)}")
    if not 0 <= shift < 0.5:
        raise DataError(f"shift must be a fraction of the image size in [0, 0.5), got {shift}")
    if not 0 <= rotation <= 180:
        raise DataError(f"rotation must be in [0, 180] degrees, got {rotation}")


@functools.lru_cache(maxsize=None)
def _fonts(font_files: tuple[str, ...], system_fonts: bool) -> list[str]:
    """Candidate font paths, configured first, without repeats."""
    paths = []
    for name in font_files:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise DataError(f"font_files: expected a font file, found nothing at {path}")
        if not _cmap(str(path)):
            raise DataError(f"font_files: expected a TrueType/OpenType font, cannot read the character map of {path}")
        paths.append(str(path))
    ipa = ipaex_gothic()
    if ipa:
        paths.append(ipa)
    if system_fonts:
        from matplotlib import font_manager

        # sorted: the same machine always yields the same font order, hence the same images
        paths += sorted(p for p in font_manager.findSystemFonts() if p.lower().endswith(FONT_SUFFIXES))
    return list(dict.fromkeys(paths))


@functools.lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
    """Code points the font maps to a glyph (first font of a collection); empty if unreadable."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or ())
    except Exception:  # a broken or exotic font file is skipped, not fatal
        return frozenset()


def _covers(path: str, text: str) -> bool:
    cmap = _cmap(path)
    return all(ord(c) in cmap for c in text)


@functools.lru_cache(maxsize=256)
def _truetype(path: str, pixels: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, pixels)
    except OSError:  # a bitmap-only font has no outline at this size ("invalid pixel size"): it draws nothing
        return None


def _draw(text: str, path: str, size: float, dx: float, dy: float, angle: float, image_size: int) -> np.ndarray:
    """One glyph: uint8 ``[image_size, image_size]``, ink 255 on 0, em box centred then shifted and rotated."""
    from PIL import Image, ImageDraw

    big = image_size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    font = _truetype(path, max(1, round(size * big)))
    if font is None:
        return np.zeros((image_size, image_size), np.uint8)
    # anchor "mm": the font's own vertical metrics place the glyph, so small kana stay small and low
    ImageDraw.Draw(canvas).text((big * (0.5 + dx), big * (0.5 + dy)), text, fill=255, font=font, anchor="mm")
    if angle:
        canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR)
    return np.asarray(canvas.reduce(SUPERSAMPLE))
