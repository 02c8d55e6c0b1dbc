"""Measure how real writers deviate from a character's mean drawing: where the stroke engine's
defaults come from.

    python -m glyphlab.data.calibrate ../shared/data/omniglot/strokes_background_small1.zip \\
        [--images ../shared/data/omniglot/images_background_small1.zip] [--alphabets Korean Balinese Early_Aramaic]

Omniglot's stroke files (``<Alphabet>/characterNN/<id>_<drawer>.txt``: ``START``, then ``x,y,ms``
lines, ``BREAK`` after each stroke; x right, y up, in the 105 px drawing box) hold 20 drawers'
pen trajectories per character. Per character, the drawings with the most common stroke count
have their strokes matched to a reference (assignment on mean point distance, a stroke may be
drawn backwards), each resampled to :data:`POINTS` points by arc length, and averaged into a
mean drawing (two rounds). Each drawing is then compared with the mean:

- the whole character: the affine map (least squares) from the mean to the drawing, split into
  size, aspect, rotation and slant (shear), and the centre's position;
- each stroke, after that affine: its move (mean residual), length change, angle change of its
  chord, its ends' displacement, and its bend (the residual across the stroke, projected on the
  engine's two sine modes), all in units of the character's size (the mean drawing's larger side);
- how often the stroke count differs from the most common one (strokes joined or split);
- with the images zip: the pen width, ink pixels / trajectory length, in pixels and relative
  to the character's size.

Calibrate on alphabets that are not evaluated (default: Korean, Balinese, Early_Aramaic), so
Latin and Greek stay honest test sets. Prints the numbers and the style values they imply for
a glyph that fills :data:`GLYPH_SIDE` of the image (``fit``; the engine's lengths are fractions of the
image side, the pen a fraction of the glyph's side with ``pen_relative``).
"""
from __future__ import annotations

import argparse
import io
import re
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from glyphlab.errors import DataError

CALIBRATION_ALPHABETS = ("Korean", "Balinese", "Early_Aramaic")
POINTS = 16         # points per stroke after resampling by arc length
GLYPH_SIDE = 0.75   # a typical glyph's larger side, as a fraction of the image side, in the synthetic sets
MIN_DRAWINGS = 5    # characters with fewer drawings of the common stroke count are skipped


def read_strokes(zip_path, alphabets=CALIBRATION_ALPHABETS) -> dict[str, list[tuple[str, list[np.ndarray]]]]:
    """``{"Alphabet/characterNN": [(name, drawing), ...]}`` for the ``alphabets`` (all if empty):
    ``name`` is ``Alphabet/characterNN/<id>_<drawer>``, a drawing a list of float ``[n, 2]`` strokes
    (x right, y down, pixels of the 105 px box)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"expected Omniglot's strokes zip (strokes_background*.zip), cannot read {zip_path}: {e}") from None
    wanted = {a.lower() for a in alphabets} if alphabets else None
    out: dict[str, list] = defaultdict(list)
    with archive:
        for name in sorted(archive.namelist()):
            parts = PurePosixPath(name).parts
            if not name.endswith(".txt") or len(parts) < 3 or any(p.startswith((".", "__MACOSX")) for p in parts):
                continue
            if wanted is not None and parts[-3].lower() not in wanted:
                continue
            drawing = _parse(archive.read(name).decode("utf-8", "replace"), name)
            if drawing:
                out[f"{parts[-3]}/{parts[-2]}"].append((PurePosixPath(*parts[-3:]).with_suffix("").as_posix(), drawing))
    if not out:
        raise DataError(f"expected Omniglot stroke files (<Alphabet>/characterNN/*.txt) of {', '.join(alphabets or ['any'])} "
                        f"in {zip_path}, found none")
    return dict(out)


def _parse(text: str, name: str) -> list[np.ndarray]:
    strokes, current = [], []
    for line in text.splitlines():
        line = line.strip()
        if line in ("START", "BREAK", ""):
            if len(current) > 0:
                strokes.append(np.array(current))
            current = []
            continue
        try:
            x, y = map(float, line.split(",")[:2])
        except ValueError:
            raise DataError(f"{name}: expected 'x,y,ms' lines between START/BREAK, found {line[:40]!r}") from None
        current.append((x, -y))  # y up in the files; y down like images and the stroke engine
    if current:
        strokes.append(np.array(current))
    return strokes


def resample(stroke: np.ndarray, n: int = POINTS) -> np.ndarray:
    """``n`` points evenly spaced by arc length along a polyline (a dot repeats its point)."""
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return np.repeat(stroke[:1], n, 0)
    t = np.linspace(0, arc[-1], n)
    return np.stack([np.interp(t, arc, stroke[:, 0]), np.interp(t, arc, stroke[:, 1])], 1)


def _match(reference: np.ndarray, drawing: np.ndarray) -> np.ndarray:
    """``drawing``'s strokes ``[k, POINTS, 2]`` reordered (and reversed where drawn backwards) to match ``reference``."""
    from scipy.optimize import linear_sum_assignment

    fwd = np.linalg.norm(reference[:, None] - drawing[None], axis=-1).mean(-1)
    bwd = np.linalg.norm(reference[:, None] - drawing[None, :, ::-1], axis=-1).mean(-1)
    rows, cols = linear_sum_assignment(np.minimum(fwd, bwd))
    return np.stack([drawing[c] if fwd[r, c] <= bwd[r, c] else drawing[c, ::-1] for r, c in zip(rows, cols)])


def _affine(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``A, t`` with ``dst ≈ src @ A.T + t`` (points ``[n, 2]``)."""
    x = np.concatenate([src, np.ones((len(src), 1))], 1)
    sol, *_ = np.linalg.lstsq(x, dst, rcond=None)
    return sol[:2].T, sol[2]


def measure_character(drawings: list[list[np.ndarray]]) -> dict[str, list] | None:
    """The deviations of one character's drawings from their mean (see the module docstring)."""
    counts = Counter(len(d) for d in drawings)
    k, n_common = counts.most_common(1)[0]
    out: dict[str, list] = defaultdict(list)
    out["strokes"] = [len(d) for d in drawings]
    out["fewer_strokes"] = [len(d) < k for d in drawings]
    out["more_strokes"] = [len(d) > k for d in drawings]
    if n_common < MIN_DRAWINGS:
        return out
    shapes = np.stack([np.stack([resample(s) for s in d]) for d in drawings if len(d) == k])  # [m, k, P, 2]
    mean = shapes[0]
    for _ in range(2):
        shapes = np.stack([_match(mean, s) for s in shapes])
        mean = shapes.mean(0)
    flat_mean = mean.reshape(-1, 2)
    size = float(np.ptp(flat_mean, 0).max())
    if size <= 0:
        return out
    centre = (flat_mean.min(0) + flat_mean.max(0)) / 2
    t = np.linspace(0, 1, POINTS)
    modes = np.stack([np.sin(np.pi * t), 0.5 * np.sin(2 * np.pi * t)])  # the engine's bend shapes
    for shape in shapes:
        flat = shape.reshape(-1, 2)
        a, shift = _affine(flat_mean - centre, flat)
        # A = R(angle) @ [[sx, k], [0, sy]]: QR with a positive diagonal
        q, r = np.linalg.qr(a)
        sign = np.sign(np.diag(r))
        q, r = q * sign, r * sign[:, None]
        out["size"].append(np.log(abs(np.linalg.det(a))) / 2)
        out["aspect"].append(np.log(r[0, 0] / r[1, 1]))
        out["rotation"].append(np.degrees(np.arctan2(q[1, 0], q[0, 0])))
        out["slant"].append(-r[0, 1] / r[1, 1])  # x shift per unit height, tops to the right positive
        out["position"].extend(((shift - centre) / size).tolist())
        # Each stroke against the mean's, after the whole-character affine, in character sizes.
        fitted = ((shape.reshape(-1, 2) - shift) @ np.linalg.inv(a).T + centre).reshape(shape.shape)
        for s, m in zip(fitted, mean):
            res = (s - m) / size
            out["stroke_move"].extend(res.mean(0).tolist())
            out["end_displacement"].extend(res[[0, -1]].ravel().tolist())
            chord_s, chord_m = s[-1] - s[0], m[-1] - m[0]
            len_m = np.linalg.norm(chord_m)
            if len_m > 0.15 * size and np.linalg.norm(chord_s) > 0:
                out["stroke_length"].append(np.log(np.linalg.norm(chord_s) / len_m))
                turn = np.arctan2(chord_s[1], chord_s[0]) - np.arctan2(chord_m[1], chord_m[0])
                out["stroke_angle"].append(np.degrees((turn + np.pi) % (2 * np.pi) - np.pi))
                # bend: what is left after the ends' linear move, across the mean stroke
                lin = res[0] + (res[-1] - res[0]) * t[:, None]
                normal = np.array([-chord_m[1], chord_m[0]]) / len_m
                across = (res - lin) @ normal * size / len_m          # fraction of the stroke's length
                coef, *_ = np.linalg.lstsq(modes.T, across, rcond=None)
                out["bend"].extend(coef.tolist())
    return out


def pen_widths(images_zip, names: list[str], strokes: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Pen width in pixels of the 105 px drawings (ink pixels / trajectory length) and relative
    to each drawing's larger side, for the drawings in ``names`` (``Alphabet/characterNN/id_drawer``)."""
    from PIL import Image

    px, rel = [], []
    with zipfile.ZipFile(images_zip) as archive:
        index = {PurePosixPath(*PurePosixPath(n).parts[-3:]).with_suffix("").as_posix(): n
                 for n in archive.namelist() if n.endswith(".png") and "__MACOSX" not in n}
        for name in names:
            if name not in index:
                continue
            ink = np.asarray(Image.open(io.BytesIO(archive.read(index[name]))).convert("L")) < 128
            pts = strokes[name]
            length = sum(np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s in pts)
            rows, cols = np.nonzero(ink)
            if length < 10 or rows.size == 0:
                continue
            width = ink.sum() / length
            px.append(width)
            rel.append(width / max(np.ptp(rows) + 1, np.ptp(cols) + 1))
    return np.array(px), np.array(rel)


def calibrate(strokes_zip, images_zip=None, alphabets=CALIBRATION_ALPHABETS) -> dict[str, float]:
    """All the numbers (robust stds: 1.4826 × median absolute deviation, so a few wild drawings
    do not dominate) and the style values they imply; see the module docstring.

    ``strokes_zip`` may be one zip or a list of them (pooled); ``images_zip`` then a list of the same
    length (None entries: no pen width from that zip). ``alphabets`` empty: every alphabet found."""
    zips = [strokes_zip] if isinstance(strokes_zip, (str, Path)) else list(strokes_zip)
    images = images_zip if isinstance(images_zip, (list, tuple)) else [images_zip] * len(zips)
    by_zip = [read_strokes(z, alphabets) for z in zips]
    chars = {k: v for part in by_zip for k, v in part.items()}
    pooled: dict[str, list] = defaultdict(list)
    for drawings in chars.values():
        for key, values in (measure_character([d for _, d in drawings]) or {}).items():
            pooled[key].extend(values)
    if not pooled.get("size"):
        raise DataError(f"expected at least {MIN_DRAWINGS} drawings with the same stroke count for some "
                        f"character in {strokes_zip}, found none")
    r = {"characters": len(chars), "drawings": sum(len(d) for d in chars.values()),
         "compared": len(pooled["size"])}
    for key in ("size", "aspect", "rotation", "slant", "position", "stroke_move", "end_displacement",
                "stroke_length", "stroke_angle", "bend"):
        r[f"{key}_std"] = _robust_std(pooled[key])
    r["joined_fraction"] = float(np.mean(pooled["fewer_strokes"]))
    r["split_fraction"] = float(np.mean(pooled["more_strokes"]))
    r["strokes_mean"] = float(np.mean(pooled["strokes"]))
    px_rel = [pen_widths(img, [n for drawings in part.values() for n, _ in drawings],
                         {n: d for drawings in part.values() for n, d in drawings})
              for part, img in zip(by_zip, images) if img is not None]
    if px_rel:
        px, rel = (np.concatenate(a) for a in zip(*px_rel))
        if rel.size:
            r.update(pen_px_median=float(np.median(px)), pen_rel_p10=float(np.percentile(rel, 10)),
                     pen_rel_median=float(np.median(rel)), pen_rel_p90=float(np.percentile(rel, 90)))
    return r


def implied_style(r: dict[str, float]) -> dict:
    """The stroke engine's style values these numbers imply. The engine draws whole-glyph rotation, slant,
    scale and aspect uniformly in ±v, whose robust std (1.4826 × MAD, what :func:`calibrate` measures) is
    1.4826 · v/2, so v = robust std / :data:`UNIFORM_ROBUST_STD` (not √3 × it: that is the plain std's
    relation and overstates v by 28 %); the stroke-level keys and jitter are normal stds, taken as measured."""
    g = GLYPH_SIDE
    u = UNIFORM_ROBUST_STD
    style = {
        "jitter": r["end_displacement_std"] * g,
        "wobble": r["bend_std"],
        "rotation": r["rotation_std"] / u,
        "slant": r["slant_std"] / u,
        "scale": [float(np.exp(-r["size_std"] / u)), float(np.exp(r["size_std"] / u))],
        "aspect": r["aspect_std"] / u,
        "stroke_shift": r["stroke_move_std"] * g,
        "stroke_rotation": r["stroke_angle_std"],
        "stroke_scale": r["stroke_length_std"],
        # per stroke (split) and per pair of strokes (join): a drawing has strokes_mean chances
        "split": r["split_fraction"] / r["strokes_mean"],
        "join": r["joined_fraction"] / max(r["strokes_mean"] - 1, 1),
    }
    if "pen_rel_median" in r:  # with pen_relative=true: a fraction of the glyph's own larger side
        style["pen_relative"] = True
        style["pen_width"] = [r["pen_rel_p10"], r["pen_rel_p90"]]
    style["fit"] = g
    return {k: [round(x, 3) for x in v] if isinstance(v, list) else v if isinstance(v, bool) else round(float(v), 3)
            for k, v in style.items()}


UNIFORM_ROBUST_STD = 1.4826 / 2  # the robust std of a uniform ±1: its median absolute deviation is 1/2


def _robust_std(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) if v.size else float("nan")


def _images_beside(strokes_zip) -> Path | None:  # strokes_background_x.zip -> images_background_x.zip
    guess = Path(strokes_zip).with_name(re.sub(r"^strokes_", "images_", Path(strokes_zip).name))
    return guess if guess.name != Path(strokes_zip).name and guess.is_file() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glyphlab.data.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("strokes_zip", nargs="+", help="Omniglot's strokes_background*.zip (several are pooled)")
    parser.add_argument("--images", nargs="+", help="the matching images zips, one per strokes zip "
                        "(default: images_* beside each strokes zip)")
    parser.add_argument("--alphabets", nargs="+", default=list(CALIBRATION_ALPHABETS),
                        help="alphabets to measure; 'all': every alphabet in the zips")
    args = parser.parse_args(argv)
    images = args.images or [_images_beside(z) for z in args.strokes_zip]
    alphabets = [] if args.alphabets == ["all"] else args.alphabets
    try:
        if len(images) != len(args.strokes_zip):
            raise DataError(f"expected one --images zip per strokes zip ({len(args.strokes_zip)}), got {len(images)}")
        r = calibrate(args.strokes_zip, images, alphabets)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"calibration on {', '.join(alphabets) or 'every alphabet'}: {r['characters']} characters, {r['drawings']} drawings, "
          f"{r['compared']} compared with their character's mean")
    for key, value in r.items():
        if key not in ("characters", "drawings", "compared"):
            print(f"  {key:22s} {value:.4f}")
    print(f"implied style (glyph side {GLYPH_SIDE} of the image):")
    for key, value in implied_style(r).items():
        print(f"  {key:22s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
