"""Omniglot's pen trajectories rendered as other datasets make their images, read by one logged model.

    python experiments/synth_to_real/renderings.py --model runs:/<run id>/model --tracking-uri sqlite:///<store>/mlflow.db \
        --omniglot <omniglot> --alphabet Latin [--alphabet Greek ...] [--out table.md]

The same drawings (Omniglot's strokes_background*.zip) are drawn as Omniglot's PNGs are (105 px, glyph ~63 px, pen
5 px, as measured on them; and pen 2.5), as UCI pendigits (8 points by arc length joined by lines, 100 px, pen 2; or
8 points spread over the strokes, pen-ups kept; pen 6: the 8-point shape alone), as a tablet (64 px, 1 px line, no
antialiasing), with a marker (64 px, pen 6), at 16 px (USPS-like: 64 px, pen 4, downscaled) and on grey paper
(gradient, noise). Each image goes to the model as a PNG file, so the served model's own preprocessing applies, as
to a user's file; the real PNGs (images_background*.zip) are read the same way for reference. Prints a markdown
table (accuracy (n) per rendering and alphabet; also to --out) and saves a contact sheet renderings_<alphabet>.png
beside --out (red frame: misread).
"""
from __future__ import annotations

import argparse
import functools
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SS = 8  # supersampling of the antialiased canvases
open_zip = functools.cache(zipfile.ZipFile)


def fit(strokes: list[np.ndarray], size: int, margin: float) -> list[np.ndarray]:
    """The strokes scaled (aspect kept) and centred into a ``size`` px canvas, ``margin`` px on each side."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(0), pts.max(0)
    scale = (size - 2 * margin) / max(float((hi - lo).max()), 1e-6)
    offset = size / 2 - (lo + hi) / 2 * scale
    return [s * scale + offset for s in strokes]


def draw(strokes: list[np.ndarray], size: int, pen: float, antialias: bool = True, margin: float | None = None):
    """uint8 ``[size, size]``: dark ink (0) on white paper (255), round pen of ``pen`` px."""
    ss = SS if antialias else 1
    strokes = fit(strokes, size, 0.1 * size + pen / 2 if margin is None else margin)
    im = Image.new("L", (size * ss, size * ss), 255)
    d = ImageDraw.Draw(im)
    w, r = max(1, round(pen * ss)), pen * ss / 2
    for s in strokes:
        p = [tuple(q) for q in (s + 0.5) * ss - 0.5]  # pixel centres at the same place on both canvases
        if len(p) > 1:
            d.line(p, fill=0, width=w, joint="curve")
        if w > 1:
            for x, y in (p[0], p[-1]) if len(p) > 1 else p:
                d.ellipse([x - r, y - r, x + r, y + r], fill=0)
        elif len(p) == 1:
            d.point(p[0], fill=0)
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS) if ss > 1 else im)


def resample(line: np.ndarray, n: int) -> np.ndarray:
    """``n`` points equally spaced by arc length along a polyline (a dot repeats its point)."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    t = np.linspace(0, arc[-1], n)
    return np.stack([np.interp(t, arc, line[:, 0]), np.interp(t, arc, line[:, 1])], 1)


def eight_per_stroke(strokes: list[np.ndarray], n: int = 8) -> list[np.ndarray]:
    """``n`` points over the strokes in proportion to their length, at least 2 per stroke."""
    length = np.array([np.linalg.norm(np.diff(s, axis=0), axis=1).sum() if len(s) > 1 else 0.0 for s in strokes])
    k = np.full(len(strokes), 2)
    extra = max(n - 2 * len(strokes), 0) * length / max(length.sum(), 1e-9)
    k += np.floor(extra).astype(int)
    for i in np.argsort(-(extra - np.floor(extra)), kind="stable")[:max(n - k.sum(), 0)]:
        k[i] += 1  # the largest remainders get the points left
    return [resample(s, int(m)) for s, m in zip(strokes, k)]


def grey_paper(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ink = 1 - img / 255.0
    paper = 190 + np.linspace(-25, 25, img.shape[1])[None, :]
    return np.clip(paper * (1 - ink) + 90 * ink + rng.normal(0, 6, img.shape), 0, 255).round().astype(np.uint8)


def renderings(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    # Omniglot's PNGs: glyph ~63 of 105 px, pen ~5 px (ink / Zhang-Suen skeleton, median); the brief's 2.5 px is half
    return {"omniglot-like": lambda s: draw(s, 105, 5, margin=21),
            "omniglot-pen-2.5": lambda s: draw(s, 105, 2.5),
            "pendigits-8pt": lambda s: draw([resample(np.concatenate(s), 8)], 100, 2),
            "pendigits-8pt-strokes": lambda s: draw(eight_per_stroke(s), 100, 2),
            "pendigits-8pt-pen6": lambda s: draw([resample(np.concatenate(s), 8)], 100, 6),  # control: shape alone
            "tablet-thin": lambda s: draw(s, 64, 1, antialias=False),
            "marker-bold": lambda s: draw(s, 64, 6),
            "lowres-16": lambda s: np.asarray(Image.fromarray(draw(s, 64, 4)).resize((16, 16), Image.Resampling.LANCZOS)),
            "grey-paper": lambda s: grey_paper(draw(s, 105, 5, margin=21), rng)}


def omniglot_sets(folder: Path, kind: str) -> dict[str, dict[str, list]]:
    """``{alphabet: {characterNN: [zip member, ...]}}`` of the ``<kind>_background*.zip`` in ``folder``."""
    out: dict = {}
    for path in sorted(folder.glob(f"{kind}_background*.zip")):
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                m = re.search(r"([^/]+)/(character\d+)/[^/]+\.(png|txt)$", name)
                if m and "__MACOSX" not in name and not m.group(1).startswith("."):
                    out.setdefault(m.group(1), {}).setdefault(m.group(2), []).append((path, name))
    return out


def class_names(alphabet: str, characters: list[str]) -> dict[str, str]:
    """characterNN → the class name, as eval_data=omniglot (class_names=letters) names it."""
    from glyphlab.data.omniglot import LETTERS

    letters = LETTERS.get(alphabet, "")
    return {c: letters[i] if len(letters) == len(characters) else c for i, c in enumerate(sorted(characters))}


def read(model, classes: list[str], images: list, batch: int = 256) -> np.ndarray:
    """The class read for each image (uint8 array, or image file bytes), through the pyfunc as predict.py does."""
    import pandas as pd

    from glyphlab.serving import INPUT_COLUMN, encode_png

    files = [im if isinstance(im, bytes) else encode_png(im) for im in images]
    out = [model.predict(pd.DataFrame({INPUT_COLUMN: files[i:i + batch]})).to_numpy().argmax(1)
           for i in range(0, len(files), batch)]
    return np.asarray(classes)[np.concatenate(out)]


def contact_sheet(rows: dict[str, list], ok: dict[str, list], path: Path, tile: int = 84) -> None:
    names = list(rows)
    n = max(len(v) for v in rows.values())
    label = 150
    sheet = Image.new("RGB", (label + n * tile, len(names) * tile), "white")
    d = ImageDraw.Draw(sheet)
    for r, name in enumerate(names):
        d.text((4, r * tile + tile // 2 - 6), name, fill="black")
        for c, (img, good) in enumerate(zip(rows[name], ok[name])):
            x, y = label + c * tile, r * tile
            sheet.paste(Image.fromarray(img).convert("RGB").resize((tile - 6, tile - 6), Image.Resampling.NEAREST),
                        (x + 3, y + 3))
            if not good:
                d.rectangle([x + 1, y + 1, x + tile - 2, y + tile - 2], outline="red", width=2)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="MLflow model URI, e.g. runs:/<run id>/model")
    parser.add_argument("--tracking-uri", help="the MLflow store of the model URI")
    parser.add_argument("--omniglot", required=True, type=Path, help="the folder holding Omniglot's zips")
    parser.add_argument("--alphabet", action="append", required=True, help="Latin, Greek, katakana, ... (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the table here (contact sheets go beside it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from glyphlab.data.calibrate import read_strokes
    from glyphlab.predict import load_model

    model, classes = load_model(args.model, args.tracking_uri)
    known = set(classes)
    strokes_sets, image_sets = omniglot_sets(args.omniglot, "strokes"), omniglot_sets(args.omniglot, "images")
    table: dict = {}
    for wanted in args.alphabet:
        match = [a for a in strokes_sets if wanted.lower() in (a.lower(), a.lower().strip("_()").split("_(")[-1])]
        if not match:
            raise SystemExit(f"no alphabet {wanted!r} in {args.omniglot}; found {', '.join(sorted(strokes_sets))}")
        alphabet = match[0]
        names = class_names(alphabet, list(strokes_sets[alphabet]))
        unknown = sorted(n for n in names.values() if n not in known)
        print(f"{alphabet}: {len(names)} characters, {len(unknown)} unknown to the model (skipped) "
              f"{' '.join(unknown[:30])}", flush=True)
        zip_path = strokes_sets[alphabet][next(iter(strokes_sets[alphabet]))][0][0]
        drawings = [(names[key.split("/")[1]], d) for key, items in read_strokes(zip_path, [alphabet]).items()
                    for _, d in items if names[key.split("/")[1]] in known]
        if not drawings:
            continue
        truth = np.array([t for t, _ in drawings])
        pick = np.random.default_rng(args.seed).choice(len(drawings), min(10, len(drawings)), replace=False)
        sheet, sheet_ok = {}, {}
        real = [(names[c], open_zip(z).read(name)) for c, items in sorted(image_sets.get(alphabet, {}).items())
                if names[c] in known for z, name in items]
        if real:
            pred = read(model, classes, [b for _, b in real])
            table.setdefault("real Omniglot PNGs", {})[alphabet] = (np.mean(pred == [t for t, _ in real]), len(real))
        for name, render in renderings(args.seed).items():
            images = [render(d) for _, d in drawings]
            pred = read(model, classes, images)
            table.setdefault(name, {})[alphabet] = (float(np.mean(pred == truth)), len(truth))
            sheet[name], sheet_ok[name] = [images[i] for i in pick], [pred[i] == truth[i] for i in pick]
            print(f"  {name:22s} {table[name][alphabet][0]:.3f} (n={len(truth)})", flush=True)
        where = args.out.parent if args.out else Path(".")
        contact_sheet(sheet, sheet_ok, where / f"renderings_{alphabet}.png")
    alphabets = list(dict.fromkeys(a for row in table.values() for a in row))
    lines = [f"model {args.model}", "", "| rendering | " + " | ".join(alphabets) + " |", "| --- |" + " --: |" * len(alphabets)]
    lines += [f"| {name} | " + " | ".join(f"{row[a][0]:.3f} ({row[a][1]})" if a in row else "" for a in alphabets) + " |"
              for name, row in table.items()]
    import mlflow

    try:
        run_id = mlflow.models.get_model_info(args.model).run_id
    except mlflow.exceptions.MlflowException:   # a model folder whose store is not the one given: no run to quote
        run_id = None
    if run_id:
        metrics = mlflow.get_run(run_id).data.metrics
        lines += ["", f"the run's own eval/accuracy (eval_data, arrays): {metrics.get('eval/accuracy', float('nan')):.3f}"]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
