"""Make the font subsets glyphlab ships (src/glyphlab/data/sources/bundled/), each cut down to the characters
glyphlab draws from it: Klee One Regular (Fontworks, OFL 1.1), a Japanese pen/pencil hand and the one
handwriting face with kana to be had offline — its kana and ASCII.

    apt install fonts-klee      # Debian/Ubuntu: the full font, 20 MB
    python scripts/subset_fonts.py

fontTools keeps the chosen characters' outlines unchanged, with their metrics, names and hinting (layout
features dropped), so FreeType draws them as the full font does: glyphlab's thinned strokes of the subset
equal the full font's, point for point, and the file is the same bytes every time it is made. OFL 1.1
allows a modified version to be redistributed under the same licence (KleeOne-OFL.txt beside it); Klee One
declares no reserved font name. Two more Japanese pen hands, Seto font and kiloji, were measured as kana
prototypes and not kept (experiments/synth_to_real/HISTORY.md).
"""
from __future__ import annotations

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parents[1] / "src" / "glyphlab" / "data" / "sources" / "bundled"
ASCII = [*range(0x21, 0x7F)]
KANA = [*range(0x3041, 0x3100)]  # hiragana and katakana
FONTS = {  # system file → (shipped file, characters)
    "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf": ("KleeOne-Regular-kana.ttf", ASCII + KANA),
}


def main() -> None:
    for source, (name, chars) in FONTS.items():
        options = subset.Options()
        options.layout_features, options.name_IDs = [], ["*"]   # hinting kept: FreeType draws as the full font
        options.drop_tables += ["gasp"]   # FreeType draws these glyphs the same without it (checked stroke for stroke)
        font = TTFont(source, recalcTimestamp=False)   # the same bytes every time it is made
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=chars)
        subsetter.subset(font)
        font.save(OUT / name)
        print(f"{OUT / name}: {(OUT / name).stat().st_size} bytes, {len(font.getBestCmap())} characters")


if __name__ == "__main__":
    main()
