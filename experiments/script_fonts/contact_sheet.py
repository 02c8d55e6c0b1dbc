"""Contact sheets for mapping an Omniglot alphabet's character01.. to Unicode (issue #28): per character,
a few real drawings beside the glyph each font draws for the character LETTERS gives it. Look at the PNG.

    python experiments/script_fonts/contact_sheet.py ../shared/data/omniglot Korean /usr/share/fonts/truetype/nanum/NanumPen.ttf
    python experiments/script_fonts/contact_sheet.py ../shared/data/omniglot Balinese \
        /usr/share/fonts/truetype/noto/NotoSansBalinese-Regular.ttf /usr/share/fonts/truetype/noto/NotoSerifBalinese-Regular.ttf

Writes contact_<Alphabet>.png (in the current folder, or --out). The letters come from
glyphlab.data.omniglot.LETTERS, or --letters to try another mapping before writing it there.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from glyphlab.data import omniglot

CELL = 90


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="Omniglot folder or zip")
    parser.add_argument("alphabet")
    parser.add_argument("fonts", nargs="+", help="font files to draw the mapped characters with")
    parser.add_argument("--letters", help="the characters in character01.. order (default: omniglot.LETTERS)")
    parser.add_argument("--drawings", type=int, default=4, help="real drawings per character")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    real = omniglot.build(root=args.root, alphabet=args.alphabet, image_size=CELL - 4, class_names=None)
    letters = args.letters or omniglot.LETTERS[args.alphabet]
    assert len(letters) == real.n_classes, f"{len(letters)} letters for {real.n_classes} characters"
    k, width = args.drawings, args.drawings + len(args.fonts)
    sheet = Image.new("L", (40 + width * CELL, real.n_classes * CELL), 255)
    draw = ImageDraw.Draw(sheet)
    label = ImageFont.load_default()
    for c, name in enumerate(real.classes):
        y = c * CELL
        draw.text((2, y + CELL // 2 - 6), name[-2:], fill=0, font=label)
        for j, i in enumerate(np.flatnonzero(real.labels == c)[:k]):
            sheet.paste(Image.fromarray(255 - real.images[i]), (40 + j * CELL, y))
        for f, path in enumerate(args.fonts):
            x = 40 + (k + f) * CELL
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=225)
            draw.text((x + CELL // 2, y + CELL // 2), letters[c], fill=0, font=ImageFont.truetype(path, 50), anchor="mm")
            draw.text((x + 2, y + 1), f"U+{ord(letters[c]):04X}", fill=0, font=label)
        draw.line([0, y, sheet.width, y], fill=120)
    out = args.out or f"contact_{args.alphabet}.png"
    sheet.save(out)
    print(out)


if __name__ == "__main__":
    main()
