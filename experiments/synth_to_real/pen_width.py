"""Pen width relative to the glyph, on real and synthetic images, as the model sees them (box-normalised).

    python experiments/synth_to_real/pen_width.py --omniglot <omniglot>            # the real sets
    python experiments/synth_to_real/pen_width.py --synth katakana,latin,greek,digits [override ...]

Per image: (ink pixels / skeleton pixels) / the ink box's larger side — the stroke's width over the glyph's
size (ink = pixels >= 128, skeleton = Zhang–Suen thinning). Prints the 5/25/50/75/95 percentiles per set.
Synthetic sets are the read_real recipe's training images (40 per class, before augmentation); overrides such
as handwriting.pen_width=[0.05,0.3] change the hand.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

KATAKANA = "アイウエオカキクコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン"
SYNTH = {"katakana": ["data=kana", f"data.charset='{KATAKANA}'"], "latin": ["data=latin", "data.charset=lower"],
         "greek": ["data=greek"], "digits": ["data=digits_synth"]}


def ratio(img: np.ndarray) -> float:
    from glyphlab.data.sources.fonts import thin

    ink = img >= 128
    if ink.sum() < 5:
        return float("nan")
    ys, xs = np.nonzero(ink)
    side = max(np.ptp(ys), np.ptp(xs)) + 1
    return float(ink.sum() / max(thin(ink).sum(), 1) / side)


def summary(name: str, images: np.ndarray) -> None:
    from glyphlab.data import normalize_box

    r = np.array([ratio(im) for im in normalize_box(images)])
    r = r[np.isfinite(r)]
    q = np.percentile(r, [5, 25, 50, 75, 95])
    print(f"{name:40s} n={len(r):5d}  " + "  ".join(f"p{p} {v:.3f}" for p, v in zip((5, 25, 50, 75, 95), q)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omniglot", help="the folder holding Omniglot's zips")
    parser.add_argument("--synth", help="comma-separated: katakana,latin,greek,digits")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.omniglot:
        from glyphlab.data import digits, omniglot

        for alphabet in ["Latin", "Greek", "Japanese_(katakana)", "Korean", "Early_Aramaic", "Balinese"]:
            size = 48 if "katakana" in alphabet else 32
            summary(f"omniglot {alphabet} @{size}", omniglot.build(root=args.omniglot, alphabet=alphabet, image_size=size).images)
        summary("sklearn digits @32", digits.build(image_size=32).images)
    if args.synth:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        from glyphlab import data as datasets

        conf = str(Path(__file__).resolve().parents[2] / "conf")
        for name in args.synth.split(","):
            with initialize_config_dir(config_dir=conf, version_base=None):
                cfg = compose("config", overrides=SYNTH[name] + ["+experiment=read_real", "data.samples_per_class=40"]
                              + args.overrides)
            glyphs = datasets.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=None)
            summary(f"synthetic {name} {' '.join(args.overrides)}".strip(), glyphs.images)


if __name__ == "__main__":
    main()
