"""``data=script``: any Unicode characters written as handwriting from the fonts that have them.

Every character of ``charset`` is looked up in the fonts' character maps (fontTools); each font that
has it gives one prototype: its outline rendered, thinned to the centre line and cut into strokes
(:mod:`glyphlab.data.sources.fonts`'s method), then written by the stroke engine
(:func:`glyphlab.data.strokes.synthesize`) with the handwriting ``style``. Several fonts are several
ways to write the character; the class names are the characters themselves.

``charset`` is a string of characters (``'कखग'``; whitespace ignored), a named set (:data:`NAMED`:
``hangul_jamo``, ``balinese``, ``phoenician`` ..., or ``omniglot:<Alphabet>``: the letters of an
Omniglot alphabet glyphlab knows, in character01.. order) or code point ranges
(``U+1B05-U+1B33``, several joined by commas). A range keeps the assigned characters that can be
drawn alone; in an explicit string a combining mark or an invisible character is refused.

``fonts`` lists ``.ttf/.otf/.ttc`` files; empty = the installed ones (:func:`installed_fonts`:
PyPI's ``fontpkg-*`` packages, IPAexGothic, then the system's fonts: Debian's ``fonts-noto-core``,
``fonts-nanum`` ...). ``glyphlab fonts CHARS`` lists which installed fonts cover which characters.
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import unicodedata
from importlib import metadata
from pathlib import Path

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.data.font_images import FONT_SUFFIXES
from glyphlab.data.sources.fonts import RENDER_PX
from glyphlab.errors import DataError

MAX_FONTS = 16           # discovered fonts used per character at most (handwriting faces first, the rest spread)
# a font whose characters thin into this many times the fonts' median number of strokes is a textured,
# distressed or outline-only face (its outline's holes and specks become strokes): left out. Serif faces
# reach about 2.5 times the median; such faces 5 to 10 times (experiments/script_fonts)
FRAGMENTED = 4.0
# Named sets: Unicode blocks (their letters) and a few alphabets; data.charset=<name>.
NAMED: dict[str, str | list[tuple[int, int]]] = {
    "latin_upper": [(0x41, 0x5A)], "latin_lower": [(0x61, 0x7A)], "digits": [(0x30, 0x39)],
    "greek_lower": "αβγδεζηθικλμνξοπρστυφχψω", "greek_upper": "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    "cyrillic": [(0x410, 0x44F)], "armenian": [(0x531, 0x556)], "georgian": [(0x10D0, 0x10F0)],
    "hebrew": [(0x5D0, 0x5EA)], "arabic": [(0x627, 0x64A)], "devanagari": [(0x904, 0x939)],
    "bengali": [(0x985, 0x9B9)], "tamil": [(0xB85, 0xBB9)], "thai": [(0xE01, 0xE2E)],
    "khmer": [(0x1780, 0x17B3)], "tagalog": [(0x1700, 0x1711)], "balinese": [(0x1B05, 0x1B33)],
    "runic": [(0x16A0, 0x16EA)], "cherokee": [(0x13A0, 0x13F4)], "tifinagh": [(0x2D30, 0x2D67)],
    "hiragana": [(0x3041, 0x3093)], "katakana": [(0x30A1, 0x30F6)],
    # Hangul Compatibility Jamo: the letters as written alone (the Hangul Jamo block U+1100.. holds
    # the conjoining forms that syllables are composed of)
    "hangul_jamo": [(0x3131, 0x3163)],
    "phoenician": [(0x10900, 0x10915)], "imperial_aramaic": [(0x10840, 0x10855)],
}
_RANGE = re.compile(r"U\+([0-9A-Fa-f]{4,6})(?:\s*(?:-|\.\.)\s*(?:U\+)?([0-9A-Fa-f]{4,6}))?")
# style words stripped from a font file's name to find its family (one weight of a family is enough:
# thinning draws every weight the same)
_STYLE = re.compile(r"([-_ ]?(Regular|Bold|Black|Heavy|Thin|Light|ExtraLight|UltraLight|Medium|SemiBold|DemiBold|"
                    r"ExtraBold|UltraBold|Condensed|SemiCondensed|ExtraCondensed|Italic|Oblique|Eco|Book|R|B|L|EB|"
                    r"UI))+$")


def parse_charset(charset) -> str:
    """The characters ``charset`` means, in label order (see the module docstring)."""
    if isinstance(charset, (list, tuple)):
        charset = "".join(map(str, charset))
    text = str(charset or "").strip()
    if text.startswith("omniglot:"):
        from glyphlab.data.omniglot import LETTERS

        alphabet = text.split(":", 1)[1]
        letters = LETTERS.get(alphabet) or {a.lower(): v for a, v in LETTERS.items()}.get(alphabet.lower())
        if not letters:
            raise DataError(f"data.charset={text}: expected an Omniglot alphabet with known letters "
                            f"({', '.join(LETTERS)}), got {alphabet!r}")
        return _checked(letters, text)
    named = NAMED.get(text.lower())
    if isinstance(named, str):
        return _checked(named, text)
    ranges = named or _ranges(text)
    if ranges is not None:
        chars = "".join(chr(c) for lo, hi in ranges for c in range(lo, hi + 1) if _drawable(chr(c)))
        if not chars:
            raise DataError(f"data.charset={text}: the range holds no character that can be drawn alone")
        return _checked(chars, text)
    if re.match(r"[Uu]\+", text):  # meant as a range but not one: not the characters U, +, Z ...
        raise DataError(f"data.charset={text}: expected ranges like U+1B05-U+1B33 (4-6 hex digits each, "
                        f"comma-separated), got a part that is not one")
    chars = "".join(text.split())
    if not chars:
        raise DataError(f"expected data.charset to be characters ('कखग'), a range (U+1B05-U+1B33) or one of "
                        f"{', '.join(NAMED)}, omniglot:<Alphabet>; got {charset!r}")
    marks = [c for c in chars if unicodedata.category(c).startswith("M")]
    if marks:
        raise DataError(f"data.charset: {' '.join(_name(c) for c in marks[:10])} "
                        f"{'is a combining mark' if len(marks) == 1 else 'are combining marks'}, not drawable alone; "
                        f"leave {'it' if len(marks) == 1 else 'them'} out or write a letter that carries "
                        f"{'it' if len(marks) == 1 else 'them'}")
    invisible = [c for c in chars if not _drawable(c)]
    if invisible:
        raise DataError(f"data.charset: {' '.join(_name(c) for c in invisible[:10])} cannot be drawn alone "
                        f"(a control, format, space or unassigned code point)")
    return _checked(chars, text)


def _ranges(text: str) -> list[tuple[int, int]] | None:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(_RANGE.fullmatch(p) for p in parts):
        return None
    out = []
    for p in parts:
        lo, hi = _RANGE.fullmatch(p).groups()
        lo, hi = int(lo, 16), int(hi or lo, 16)
        if hi < lo or hi > 0x10FFFF:
            raise DataError(f"data.charset: expected a range U+XXXX-U+YYYY with XXXX <= YYYY <= 10FFFF, got {p}")
        out.append((lo, hi))
    return out


def _drawable(c: str) -> bool:
    category = unicodedata.category(c)
    return category[0] in "LNSP" or category == "Co"


def _checked(chars: str, text: str) -> str:
    repeated = sorted({c for c in chars if chars.count(c) > 1})
    if repeated:
        raise DataError(f"expected each character once in data.charset, got repeated: {''.join(repeated)}")
    return chars


def _name(c: str) -> str:
    return f"U+{ord(c):04X} {unicodedata.name(c, '(unnamed)')}"


# ---------------------------------------------------------------------------------------------------- fonts

def installed_fonts() -> list[str]:
    """The installed font files, in the order they are preferred: the ``fontpkg-*`` packages (the
    handwriting faces of :data:`glyphlab.data.sources.fonts.GROUPS` first), IPAexGothic, then the system's
    fonts (sorted, so a machine always gives the same order)."""
    return list(_installed_fonts())


@functools.lru_cache(maxsize=None)
def _installed_fonts() -> tuple[str, ...]:
    from glyphlab.data.font_images import ipaex_gothic
    from glyphlab.data.sources import fonts

    handwriting = set(fonts.GROUPS["handwriting"])
    packages = sorted({d.metadata["Name"] for d in metadata.distributions()
                       if (d.metadata["Name"] or "").lower().startswith("fontpkg-")},
                      key=lambda n: (n.lower() not in handwriting, n.lower()))
    paths = []
    for package in packages:
        files = metadata.files(package) or []
        paths += sorted(str(f.locate()) for f in files if f.name.lower().endswith(FONT_SUFFIXES)
                        and not any(s in f.name for s in fonts.SKIP_FILES))
    ipa = ipaex_gothic()
    if ipa:
        paths.append(ipa)
    from matplotlib import font_manager

    paths += sorted(p for p in font_manager.findSystemFonts() if p.lower().endswith(FONT_SUFFIXES))
    # one file per family: thinning makes its weights (Bold, Light ...) the same strokes
    families: dict[str, list[str]] = {}
    for p in dict.fromkeys(paths):
        families.setdefault(_family(p), []).append(p)
    # the upright regular weight of each family where there is one (Bold sorts before Regular)
    return tuple(min(found, key=lambda p: (not _regular(p), found.index(p))) for found in families.values())


def _regular(path: str) -> bool:
    stem = re.sub(r"\[.*?\]", "", Path(path).stem)
    style = stem[len(_STYLE.sub("", stem)):]
    return not re.search(r"Bold|Black|Heavy|Thin|Light|Medium|Italic|Oblique|Condensed|B$|L$|EB$", style)


def _family(path: str) -> str:
    stem = re.sub(r"\[.*?\]", "", Path(path).stem)
    return _STYLE.sub("", stem).lower() or stem.lower()


def check_fonts(fonts) -> list[str]:
    """The configured font files, resolved; a path that is missing or not a font is one line."""
    fonts = [fonts] if isinstance(fonts, (str, os.PathLike)) else list(fonts or ())
    out = []
    for name in fonts:
        path = Path(str(name)).expanduser().resolve()
        if not path.is_file():
            raise DataError(f"data.fonts: expected a .ttf/.otf/.ttc font file, found nothing at {path}")
        try:
            _cmap(str(path))
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"data.fonts: {path} is not a TrueType/OpenType font ({reason})") from None
        out.append(str(path))
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
    """Code points the font maps (first font of a collection); raises on a file that is not a font."""
    from fontTools.ttLib import TTFont

    with TTFont(path, fontNumber=0, lazy=True) as font:
        return frozenset(font.getBestCmap() or ())


def _safe_cmap(path: str) -> frozenset[int]:
    try:
        return _cmap(path)
    except Exception:  # a broken installed font is skipped, not fatal
        return frozenset()


def covering(chars: str, fonts=(), max_fonts: int = MAX_FONTS) -> tuple[dict[str, list[str]], list[str]]:
    """``({char: [font paths that have it, in use order]}, fonts tried)``. Given ``fonts`` are all used;
    discovered ones are capped at ``max_fonts`` per character (the handwriting faces first, then the
    others spread evenly over the installed order)."""
    given = check_fonts(fonts)
    tried = given or installed_fonts()
    out = {}
    for ch in chars:
        found = [p for p in tried if ord(ch) in _safe_cmap(p)]
        if not given and len(found) > max_fonts:
            found = _spread(found, max_fonts)
        out[ch] = found
    return out, tried


def _spread(found: list[str], k: int) -> list[str]:
    from glyphlab.data.sources import fonts

    handwriting = set(fonts.font_files("handwriting"))
    hand = [p for p in found if p in handwriting][:k]
    rest = [p for p in found if p not in hand]
    pick = np.linspace(0, len(rest) - 1, k - len(hand)).round().astype(int) if k > len(hand) else []
    return hand + [rest[i] for i in dict.fromkeys(pick)]


def font_identity(path: str) -> list:
    """What identifies a font file's content for the cache key: its name, size and modification time."""
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


# ---------------------------------------------------------------------------------------------------- strokes

@functools.lru_cache(maxsize=None)
def font_strokes(char: str, path: str) -> tuple[np.ndarray, ...]:
    """``char``'s centre-line strokes in ``path``'s font, in pixels of a :data:`RENDER_PX` em with the
    origin at the pen position on the baseline (so a font's characters keep their sizes and places);
    () when the font draws nothing for it."""
    from PIL import Image, ImageDraw, ImageFont

    from glyphlab.data.sources.fonts import thin, trace

    try:
        font = ImageFont.truetype(path, RENDER_PX)
        left, top, right, bottom = font.getbbox(char, anchor="ls")
    except OSError:  # a bitmap-only font (colour emoji) has no outline at this size: it draws nothing here
        return ()
    if right <= left or bottom <= top:
        return ()
    pad = 4
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    origin = (pad - left, pad - top)
    ImageDraw.Draw(canvas).text(origin, char, fill=255, font=font, anchor="ls")
    ink = np.asarray(canvas) > 127
    if not ink.any():
        return ()
    return tuple(s - np.array(origin, dtype=np.float64) for s in trace(thin(ink)))


def font_prototypes(chars: str, cover: dict[str, list[str]]) -> list[list[list[np.ndarray]]]:
    """Per character, its prototypes in the unit box: one per font, each font's characters placed
    alike (the ink box of all the charset's characters in that font centred, as sources.fonts places a family)."""
    from glyphlab.data.strokes import family_box

    mapping = {}
    for path in dict.fromkeys(p for found in cover.values() for p in found):
        pts = [s for c in chars if path in cover[c] for s in font_strokes(c, path)]
        if pts:
            mapping[path] = family_box(np.concatenate(pts))
    out = []
    for ch in chars:
        protos = []
        for path in cover[ch]:
            strokes = font_strokes(ch, path)
            if strokes and path in mapping:
                scale, offset = mapping[path]
                protos.append([s * scale + offset for s in strokes])
        out.append(protos)
    return out


def _fonts_for(chars: str, fonts, max_fonts: int) -> dict[str, list[str]]:
    cover, tried = covering(chars, fonts, max_fonts)
    # a font that maps a character but draws nothing for it (a stub) does not cover it
    cover = {ch: [p for p in found if font_strokes(ch, p)] for ch, found in cover.items()}
    fragmented = _fragmented(cover)
    cover = {ch: [p for p in found if p not in fragmented] or found for ch, found in cover.items()}
    missing = [ch for ch, found in cover.items() if not found]
    if missing:
        names = [Path(p).name for p in tried]
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise DataError(f"no font has {len(missing)} character(s) of data.charset: {' '.join(missing[:20])} "
                        f"({' '.join(f'U+{ord(c):04X}' for c in missing[:20])}); tried {len(tried)} font(s): "
                        f"{shown or 'none installed'}; add one with data.fonts=[path.ttf] "
                        f"(`glyphlab fonts CHARS` lists what covers what)")
    return cover


def _fragmented(cover: dict[str, list[str]]) -> set[str]:
    """The fonts (of three or more) whose mean strokes per character exceed :data:`FRAGMENTED` times
    the fonts' median: their outlines do not thin into a way to write."""
    counts: dict[str, list[int]] = {}
    for ch, found in cover.items():
        for p in found:
            counts.setdefault(p, []).append(len(font_strokes(ch, p)))
    if len(counts) < 3:
        return set()
    means = {p: float(np.mean(n)) for p, n in counts.items()}
    limit = FRAGMENTED * float(np.median(list(means.values())))
    return {p for p, m in means.items() if m > limit}


def build(*, charset, fonts=(), image_size: int = 32, samples_per_class: int = 200, seed: int = 0,
          max_fonts: int = MAX_FONTS, **style) -> GlyphSet:
    """Handwritten ``charset`` from its fonts (module docstring). ``style``: the stroke engine's
    handwriting keys (:func:`glyphlab.data.strokes.synthesize`), passed on as they are.

    Returns images uint8 ``[n_classes * samples_per_class, image_size, image_size]``, classes = the characters,
    ``meta["fonts"]`` the font files used and ``meta["prototypes"]`` the fonts per class.
    """
    from glyphlab.data.strokes import synthesize

    chars = parse_charset(charset)
    if int(max_fonts) < 1:
        raise DataError(f"data.max_fonts must be at least 1, got {max_fonts}")
    cover = _fonts_for(chars, fonts, int(max_fonts))
    protos = font_prototypes(chars, cover)
    out = synthesize(protos, list(chars), samples_per_class, image_size, seed, **style)
    out.meta["source"] = "script"
    out.meta["fonts"] = sorted({Path(p).name for found in cover.values() for p in found})
    return out


def cache_identity(cfg: dict):
    """The font files a config's set is drawn from (name, size, mtime): part of its cache key, so a set
    drawn before a font was installed, removed or updated is rebuilt (data/__init__.py's cache_key)."""
    try:
        chars = parse_charset(cfg.get("charset"))
        cover, _ = covering(chars, cfg.get("fonts") or (), int(cfg.get("max_fonts", MAX_FONTS)))
    except DataError:
        return None  # the builder says what is wrong
    return [font_identity(p) for p in sorted({p for found in cover.values() for p in found})]


build.cache_identity = cache_identity


# ---------------------------------------------------------------------------------------------------- glyphlab fonts

def main(argv: list[str] | None = None) -> int:
    """``glyphlab fonts CHARS``: which installed fonts (or ``--fonts`` files) cover which characters."""
    parser = argparse.ArgumentParser(
        prog="glyphlab fonts",
        description="Which fonts cover which characters (the fonts data=script draws them from).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="CHARS: characters ('ㄱㄴㄷ'), a range (U+1B05-U+1B33) or a named set\n"
               f"({', '.join(NAMED)}, omniglot:<Alphabet>).\n"
               "Exit status 1 when a character has no font. Examples:\n"
               "  glyphlab fonts hangul_jamo\n  glyphlab fonts --all 'कखग'\n  glyphlab fonts --fonts MyHand.ttf U+0410-U+044F")
    parser.add_argument("chars", help="the characters, a range or a named set")
    parser.add_argument("--fonts", nargs="+", default=[], help="font files to look in instead of the installed ones")
    parser.add_argument("--all", action="store_true", help="every covering font, not only the ones data=script uses "
                                                           f"(at most {MAX_FONTS} a character)")
    args = parser.parse_args(argv)
    try:
        chars = parse_charset(args.chars)
        cover, tried = covering(chars, args.fonts, 10**9 if args.all else MAX_FONTS)
    except DataError as e:
        print(f"glyphlab fonts: {e}", file=sys.stderr)
        return 2
    print(f"{len(chars)} character(s), {len(tried)} font(s) searched")
    for ch in chars:
        found = cover[ch]
        names = ", ".join(Path(p).name for p in found) or "NO FONT"
        print(f"{ch}  U+{ord(ch):04X} {unicodedata.name(ch, '?')}: {len(found)}  {names}")
    per_font: dict[str, int] = {}
    for found in cover.values():
        for p in found:
            per_font[p] = per_font.get(p, 0) + 1
    if per_font:
        print("\nfonts:")
        for p, n in sorted(per_font.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:4d}/{len(chars)}  {p}")
    missing = [ch for ch in chars if not cover[ch]]
    if missing:
        print(f"\nno font has: {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
