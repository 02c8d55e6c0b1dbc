"""Make the Klee One subset glyphlab ships (src/glyphlab/data/sources/bundled/): the kana and ASCII of
Fontworks' Klee One Regular, an OFL pen/pencil hand — the one handwriting face with kana to be had offline.

    apt install fonts-klee    # Debian/Ubuntu: the full font, 20 MB
    python scripts/subset_klee.py [/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf]

fontTools keeps the chosen characters' outlines unchanged, with their metrics, names and hinting (layout
features dropped), so FreeType draws them as the full font does: glyphlab's thinned strokes of the subset
equal the full font's, point for point. OFL 1.1 allows this modified version
to be redistributed under the same licence (OFL.txt beside it); Klee One declares no reserved font name.
"""
from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parents[1] / "src" / "glyphlab" / "data" / "sources" / "bundled" / "KleeOne-Regular-kana.ttf"
CHARS = [*range(0x21, 0x7F), *range(0x3041, 0x30A0), *range(0x30A0, 0x3100)]  # ASCII, hiragana, katakana


def main(source: str = "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf") -> None:
    options = subset.Options()
    options.layout_features, options.name_IDs = [], ["*"]   # hinting kept: FreeType draws the glyphs as the full font
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=CHARS)
    subsetter.subset(font)
    font.save(OUT)
    print(f"{OUT}: {OUT.stat().st_size} bytes, {len(font.getBestCmap())} characters")


if __name__ == "__main__":
    main(*sys.argv[1:])
