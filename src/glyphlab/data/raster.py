"""Strokes to pixels, for a batch of variants at once: the strokes cut into short segments
(:func:`prepare`), each variant kept inside the image (:func:`keep_inside`), drawn anti-aliased
(:func:`draw`), and low-resolution copies as a scan or a small bitmap makes them (:func:`low_res`).
The stroke engine (:mod:`glyphlab.data.strokes`) decides what is drawn.

Lines are drawn anti-aliased from the exact distance of each pixel centre to each segment.
No drawing library does this for a whole batch of variants at once (Pillow draws one image at
a time without anti-aliasing), and the vectorised field below renders several thousand 32×32
runes per second on one core: ``make bench`` measures it (benchmarks/synth.py).
"""
from __future__ import annotations

import numpy as np

from glyphlab.errors import DataError

CHUNK_PIXELS = 1 << 20  # window pixels evaluated per numpy pass; keeps temporaries in cache


def stroke_length(stroke: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(stroke, axis=0), axis=1).sum())


def prepare(strokes: list[np.ndarray], max_len: float):
    """Cut long segments and flatten the strokes into one point array.

    Returns points float ``[P, 2]``, stroke_id int ``[P]``, along float ``[P]`` (0 at a stroke's
    start to 1 at its end, by arc length) and seg int ``[S, 2]`` (point indices of each segment).
    """
    points, stroke_id, along, seg = [], [], [], []
    start = 0
    for k, stroke in enumerate(strokes):
        stroke = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        if len(stroke) == 0:
            raise DataError(f"stroke {k} has no points")
        # Segment i is cut into cuts[i] equal pieces: point j of it is a + (b - a) * j / cuts[i].
        cuts = np.maximum(1, np.ceil(np.linalg.norm(np.diff(stroke, axis=0), axis=1) / max_len)).astype(int)
        which = np.repeat(np.arange(len(cuts)), cuts)
        frac = (np.arange(cuts.sum()) - np.repeat(np.cumsum(cuts) - cuts, cuts) + 1) / cuts[which]
        dense = np.concatenate([stroke[:1], stroke[which] + (stroke[which + 1] - stroke[which]) * frac[:, None]])
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        points.append(dense)
        stroke_id.append(np.full(len(dense), k))
        along.append(arc / arc[-1] if arc[-1] > 0 else np.zeros_like(arc))
        idx = np.arange(start, start + len(dense))
        seg.append(np.stack([idx[:-1], idx[1:]], 1) if len(dense) > 1 else np.stack([idx, idx], 1))
        start += len(dense)
    return (np.concatenate(points), np.concatenate(stroke_id), np.concatenate(along),
            np.concatenate(seg))


def keep_inside(pts: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Shrink and move each variant so its ink stays ``border`` (``[n]``) away from the edges.

    pts float ``[n, P, 2]`` in the unit box; variants already inside are left untouched, so
    the variation keeps the glyph's own size and placement wherever it can.
    """
    lo, hi = pts.min(1), pts.max(1)                                          # [n, 2]
    room = np.maximum(1 - 2 * border, 1e-3)[:, None]
    shrink = np.minimum(1.0, (room / np.maximum(hi - lo, 1e-9)).min(1))[:, None, None]
    centre = (lo + hi) / 2
    pts = (pts - centre[:, None]) * shrink + centre[:, None]
    lo, hi = pts.min(1), pts.max(1)
    b = border[:, None]
    move = np.maximum(0, b - lo) - np.maximum(0, hi - (1 - b))
    return pts + move[:, None]


def draw(pts: np.ndarray, seg: np.ndarray, radius: np.ndarray, image_size: int) -> np.ndarray:
    """Anti-aliased thick polylines.

    pts float ``[n, P, 2]`` in pixels, seg int ``[S, 2]``, radius float ``[n]`` pixels.
    Each segment is evaluated only in a K×K window around it: the coverage of a pixel is
    ``clip(radius + 0.5 - distance, 0, 1)`` (a 1-pixel linear ramp at the edge), and strokes
    combine by maximum so crossings do not get brighter. Returns uint8 ``[n, H, W]``.
    """
    n = len(pts)
    a = pts[:, seg[:, 0]].astype(np.float32)                                  # [n, S, 2]
    d = pts[:, seg[:, 1]].astype(np.float32) - a
    r = radius.astype(np.float32)[:, None]                                    # [n, 1]
    low = np.floor(np.minimum(a, a + d) - r[..., None] - 1).astype(np.int32)  # window corner
    k = int(np.ceil(np.abs(d).max() + 2 * r.max() + 3))                       # window side
    pad = k + 1  # canvas border so windows never need clipping
    side = image_size + 2 * pad
    low = np.clip(low, -pad, image_size)
    d2 = (d ** 2).sum(-1)
    inv_d2 = 1.0 / np.maximum(d2, 1e-12)
    grid = np.arange(k, dtype=np.float32) + 0.5
    canvas = np.zeros(n * side * side, np.float32)

    n_seg = seg.shape[0]
    step = max(1, CHUNK_PIXELS // (n * k * k))
    sample_base = (np.arange(n) * side * side)[:, None]                       # [n, 1]
    for s0 in range(0, n_seg, step):
        sl = slice(s0, s0 + step)
        # Pixel centres relative to the segment start, separably in x and y: [n, s, k].
        ux = low[:, sl, 0, None] + grid - a[:, sl, 0, None]
        uy = low[:, sl, 1, None] + grid - a[:, sl, 1, None]
        dx, dy = d[:, sl, 0, None, None], d[:, sl, 1, None, None]
        # Projection of each pixel onto the segment, clamped to its ends: [n, s, k(y), k(x)].
        ud = uy[..., :, None] * dy + ux[..., None, :] * dx
        t = np.clip(ud * inv_d2[:, sl, None, None], 0, 1)
        # |u - t d|² = |u|² - t (2 u·d - t |d|²)
        dist2 = (uy[..., :, None] ** 2 + ux[..., None, :] ** 2) - t * (2 * ud - t * d2[:, sl, None, None])
        cover = np.clip(r[:, :, None, None] + 0.5 - np.sqrt(np.maximum(dist2, 0)), 0, 1)
        # Flat canvas index of every window pixel.
        rows = (low[:, sl, 1] + pad)[..., None] + np.arange(k)                # [n, s, k]
        cols = (low[:, sl, 0] + pad)[..., None] + np.arange(k)
        index = (sample_base[:, :, None, None] + rows[..., :, None] * side + cols[..., None, :])
        # Combine by maximum one segment at a time: within one segment the windows of
        # different variants never share a canvas pixel, so plain fancy indexing is exact
        # (and several times faster than np.maximum.at over everything).
        for j in range(index.shape[1]):
            at = index[:, j]
            canvas[at] = np.maximum(canvas[at], cover[:, j])

    canvas = canvas.reshape(n, side, side)[:, pad:pad + image_size, pad:pad + image_size]
    return np.rint(canvas * 255).astype(np.uint8)


def low_res(images: np.ndarray, rng, sides, p, mode="average", big=None, pick="range") -> np.ndarray:
    """A share ``p`` of ``images`` averaged down to a side in ``sides`` and scaled back up (bicubic):
    ``pick="range"`` any side from ``sides[0]`` to ``sides[1]``, ``pick="each"`` one of the listed ``sides``;
    ``mode`` a tuple of modes: each image picks one; ``mode="bitmap"``: made from ``big`` (the same images drawn
    at a higher resolution) as block counts of a binary bitmap, see :func:`bitmap_counts`."""
    from PIL import Image

    size = images.shape[1]
    which = rng.random(len(images)) < p
    if pick == "each":
        side = rng.choice(np.asarray(sides, dtype=int), len(images))
    else:
        side = rng.integers(int(sides[0]), int(sides[1]) + 1, len(images))
    out = images.copy()
    modes = np.full(len(images), mode, dtype=object) if isinstance(mode, str) else rng.choice(list(mode), len(images))
    if "bitmap" in set(modes):
        from glyphlab.data.digits import BITMAP_INK

        ink = rng.uniform(*BITMAP_INK, len(images))
    for i in np.flatnonzero(which):
        if modes[i] == "bitmap":
            out[i] = bitmap_counts(images[i] if big is None else big[i], int(side[i]), size, ink[i])
            continue
        small = Image.fromarray(images[i]).resize((side[i], side[i]), Image.Resampling.BOX)
        up = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        # a thin line averaged into big pixels turns grey; scanners and bitmap makers (the digits'
        # 0..16 counts) keep full contrast, so the darkest ink is stretched back to 255
        out[i] = np.clip(np.rint(up * (255.0 / max(up.max(), 1.0))), 0, 255).astype(np.uint8)
    return out


def bitmap_counts(image: np.ndarray, side: int, size: int, ink: float | None = None) -> np.ndarray:
    """uint8 ``[H, H]`` glyph → uint8 ``[size, size]`` made as UCI optdigits made scikit-learn's digits:
    the ink box fitted (aspect kept, centred) into a binary bitmap of ``BLOCK * side`` pixels (half ink
    counts as on), its strokes thickened or thinned until about ``ink`` of the bitmap is on (NIST's
    stroke-width normalisation; None: as drawn), on-pixels counted per block and the counts scaled
    up as the eval loader does."""
    from glyphlab.data import normalize_box
    from glyphlab.data.digits import BLOCK, block_counts, even_ink, upscale

    if not (image >= 128).any():
        return np.zeros((size, size), np.uint8)
    bitmap = normalize_box(image[None], margin=0.0, threshold=127, size=BLOCK * side)[0] >= 128
    if ink is not None:
        bitmap = even_ink(bitmap, ink)
    return upscale(block_counts(bitmap[None]), size)[0]
