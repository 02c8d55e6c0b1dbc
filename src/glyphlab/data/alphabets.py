"""The ``kana``, ``latin``, ``greek`` and ``digits_synth`` builders: which characters, written from
the prototypes of the stroke sources a set names in ``sources`` (:mod:`glyphlab.data.prototypes`,
:mod:`glyphlab.data.sources`).
"""
from __future__ import annotations

from glyphlab.data import GlyphSet
from glyphlab.data.prototypes import stroke_set
from glyphlab.data.sources.hershey import GREEK
from glyphlab.errors import DataError

HIRAGANA = "".join(chr(c) for c in range(0x3041, 0x3094))  # ぁ..ん, 83 characters
KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30F7))  # ァ..ヶ, 86 characters
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
# Small kana are written smaller than their full-size partners: a fact of the script, kept when the
# handwriting model fits each glyph to the box (fit > 0).
SMALL_KANA = dict(zip("ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ", "あいうえおつやゆよわかけアイウエオツヤユヨワカケ"))


def resolve_charset(charset: str, named: dict[str, str]) -> str:
    """The characters a ``charset`` option means: a name in ``named`` or the characters themselves.

    Whitespace in an explicit string is ignored; label order is the order given.
    """
    chars = named.get(charset)
    if chars is None:
        chars = "".join(str(charset).split())
        if not chars:
            raise DataError(f"expected charset to be one of {', '.join(named)} or a string of "
                            f"characters, got {charset!r}")
        repeated = sorted({c for c in chars if chars.count(c) > 1})
        if repeated:
            raise DataError(f"expected each character once in charset, got repeated: {''.join(repeated)}")
    return chars


def _stroke_set(chars: str, family: str, image_size: int, samples_per_class: int, seed: int,
                style: dict, sources=("kanjivg",), same_size=None) -> GlyphSet:
    return stroke_set(chars, family, image_size, samples_per_class, seed, sources, style, same_size)


def build_kana(*, image_size: int = 48, samples_per_class: int = 100, seed: int = 0,
               charset: str = "all", renderer: str = "strokes", font_files=(), sources=("kanjivg",),
               **style) -> GlyphSet:
    """Handwritten kana: hiragana U+3041–U+3093 and katakana U+30A1–U+30F6 (169 classes).

    charset:  ``all``, ``hiragana`` (83), ``katakana`` (86) or an explicit string of characters
              (label order = the order given; any KanjiVG character is allowed).
    renderer: ``strokes`` (KanjiVG strokes through the stroke engine, with ``style``) or
              ``fonts`` (installed or given ``font_files`` rendered by glyphlab.data.font_images).
    Returns images uint8 ``[n_classes * samples_per_class, image_size, image_size]``.
    """
    chars = resolve_charset(charset, {"all": HIRAGANA + KATAKANA, "hiragana": HIRAGANA,
                                      "katakana": KATAKANA})
    if renderer == "fonts":
        from glyphlab.data.font_images import render_fonts  # fonts are an alternative, loaded on demand

        return render_fonts(chars, image_size=image_size, samples_per_class=samples_per_class,
                            seed=seed, font_files=list(font_files or []))
    if renderer != "strokes":
        raise DataError(f"expected renderer 'strokes' or 'fonts', got {renderer!r}")
    return _stroke_set(chars, HIRAGANA + KATAKANA, image_size, samples_per_class, seed, style, sources, SMALL_KANA)


def build_latin(*, image_size: int = 32, samples_per_class: int = 200, seed: int = 0,
                charset: str = "all", sources=("kanjivg",), **style) -> GlyphSet:
    """Handwritten Latin letters: ``all`` (A–Z then a–z, 52 classes), ``upper``, ``lower`` or an
    explicit string. Case is kept by placement (o is smaller and lower than O). ``sources``: where
    the prototypes come from (:mod:`glyphlab.data.prototypes`).
    Returns images uint8 ``[n_classes * samples_per_class, image_size, image_size]``.
    """
    chars = resolve_charset(charset, {"all": UPPER + LOWER, "upper": UPPER, "lower": LOWER})
    return _stroke_set(chars, UPPER + LOWER, image_size, samples_per_class, seed, style, sources)


def build_digits(*, image_size: int = 32, samples_per_class: int = 500, seed: int = 0, sources=("kanjivg",),
                 **style) -> GlyphSet:
    """Handwritten digits 0–9 (10 classes) from KanjiVG strokes (and the other ``sources``).

    Returns images uint8 ``[10 * samples_per_class, image_size, image_size]``.
    """
    return _stroke_set(DIGITS, DIGITS, image_size, samples_per_class, seed, style, sources)


def build_greek(*, image_size: int = 32, samples_per_class: int = 200, seed: int = 0,
                sources=("hershey", "allographs", "print_fonts"), **style) -> GlyphSet:
    """Handwritten lower case Greek α..ω (24 classes, :data:`GREEK` order) from Hershey's Greek
    strokes, the project's allographs (a closed θ, a pointed ν ...) and print fonts' strokes
    (see :mod:`glyphlab.data.prototypes`).

    Returns images uint8 ``[24 * samples_per_class, image_size, image_size]``.
    """
    return stroke_set(GREEK, GREEK, image_size, samples_per_class, seed, sources, style)
