"""Ink-box aspect (log of width / height) per class: the read_real recipe's synthetic images against Omniglot's.

    python experiments/synth_to_real/aspect.py --omniglot <omniglot> [--sets katakana,latin,greek] [override ...]

Both sets are taken as drawn (data.normalize=null: box normalisation keeps the aspect anyway), ink = pixels > 48.
Prints per set: the mean real − synthetic offset of the class means and its spread over classes (how far the
prototypes' proportions sit from the drawers'), the mean within-class std of each (how much the synthesis and the
drawers vary a class's proportions), and the classes whose mean aspect differs most. Overrides (e.g.
handwriting.aspect=0.27) change the synthesis.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

KATAKANA = "アイウエオカキクコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン"
SETS = {"katakana": ["data=kana", f"data.charset='{KATAKANA}'", "eval_data.alphabet='Japanese_(katakana)'"],
        "latin": ["data=latin", "data.charset=lower", "eval_data.alphabet=Latin"],
        "greek": ["data=greek", "eval_data.alphabet=Greek"]}
CONF = Path(__file__).resolve().parents[2] / "conf"


def log_aspect(images: np.ndarray, threshold: int = 48) -> np.ndarray:
    """log(ink width / ink height) per image; NaN for an image without ink."""
    out = np.full(len(images), np.nan)
    for i, image in enumerate(images):
        ys, xs = np.nonzero(image > threshold)
        if len(xs):
            out[i] = np.log((np.ptp(xs) + 1) / (np.ptp(ys) + 1))
    return out


def compare(name: str, omniglot: Path, overrides: list[str]) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from glyphlab import data

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose("config", overrides=[*SETS[name], "+experiment=read_real", "eval_data=omniglot",
                                           f"eval_data.root={omniglot}", "data.normalize=null",
                                           "eval_data.normalize=null", *overrides])
    synth = data.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=cfg.cache_dir)
    real = data.load(OmegaConf.to_container(cfg.eval_data, resolve=True))
    s_all, r_all = log_aspect(synth.images), log_aspect(real.images)
    rows, s_within, r_within = [], [], []
    for c, cls in enumerate(real.classes):
        s, r = s_all[synth.labels == synth.classes.index(cls)], r_all[real.labels == c]
        rows.append((np.nanmean(r) - np.nanmean(s), cls, np.nanmean(s), np.nanmean(r)))
        s_within.append(np.nanstd(s))
        r_within.append(np.nanstd(r))
    offsets = np.array([row[0] for row in rows])
    print(f"{name}: {len(synth.images)} synthetic, {len(real.images)} real images; class-mean offset real − synthetic "
          f"{offsets.mean():+.3f} ± {offsets.std():.3f} over classes; within-class std synthetic "
          f"{np.mean(s_within):.3f}, real {np.mean(r_within):.3f}")
    rows.sort()
    for off, cls, s, r in rows[:3] + rows[-5:]:
        print(f"  {cls}: width / height synthetic {np.exp(s):.2f}, real {np.exp(r):.2f} ({off:+.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omniglot", required=True, type=Path, help="the folder holding Omniglot's zips")
    parser.add_argument("--sets", default="katakana,latin,greek")
    args, overrides = parser.parse_known_args()
    for name in args.sets.split(","):
        compare(name, args.omniglot, overrides)


if __name__ == "__main__":
    main()
