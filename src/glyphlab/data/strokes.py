"""The stroke engine: turns glyphs drawn as strokes into many handwriting-like images.

A glyph is a list of strokes; a stroke is a float ``[n_points, 2]`` polyline of ``(x, y)`` in
the unit box (y down, ``(0, 0)`` top-left, ``(1, 1)`` bottom-right); curves are sampled into
polylines by whoever supplies them (``runes.py`` writes straight strokes by hand,
``kanjivg.py`` samples KanjiVG's SVG paths). :func:`render_glyph` draws ``n`` variants of one
glyph at once; :func:`synthesize` does that for every class and returns a :class:`GlyphSet`.

Every variant gets its own handwriting (all strengths are keyword arguments that the data YAMLs
expose; lengths are fractions of the image side):

- ``jitter``    std of the random displacement of each stroke's two ends (the stroke in between
                follows linearly), so strokes move, stretch and under/overshoot independently;
- ``wobble``    std of a slow bend of each stroke (half and full sine wave along the stroke),
                as a fraction of the stroke's length;
- ``pen_width`` ``[min, max]`` uniform pen diameter;
- ``rotation``  max degrees of rotation, uniform in ``±rotation``;
- ``slant``     max shear (x shift per unit of height), uniform in ``±slant``;
- ``scale``     ``[min, max]`` uniform scale about the glyph's centre;
- ``shift``     max translation per axis, uniform in ``±shift``;
- ``margin``    gap kept between the ink and the image border: a variant that would cross it
                is shrunk about its centre and moved inside. Glyphs keep their placement in the
                box otherwise, so a small kana stays small and low;
- ``aspect``    max log width/height change, uniform in ``±aspect``;
- ``stroke_shift``, ``stroke_rotation``, ``stroke_scale``: std of each whole stroke's move
                (fraction of the image side), turn about its centre (degrees) and log length
                change — real writers place, turn and lengthen whole strokes independently;
- ``pen_relative`` ``pen_width`` is a fraction of each variant's ink box (larger side) rather than
                of the image: after box normalisation every glyph has the measured pen, however
                small it is drawn;
- ``fit``       when > 0, each glyph is first scaled (aspect kept) so its ink box's larger side is
                ``fit`` of the image, and centred — as people draw a character alone in a box, and
                as box normalisation will see it; 0 keeps the glyph's own size and place;
- ``join``, ``split`` (:func:`synthesize`) the chance that a stroke is drawn on from the previous one
                when that ended near its start (within :data:`JOIN_GAP`), and that a stroke is
                lifted halfway and restarted; the pieces then vary on their own;
- ``low_res``   ``[min, max]`` pixel side: a share ``low_res_p`` of the variants is averaged down to
                a random side in that range and scaled back up (bicubic), as a scan or a small
                bitmap reaches the model (scikit-learn's digits are 8×8 counts), with the darkest ink
                stretched back to full contrast; ``low_res_p`` 0: off;
- ``low_res_mode`` ``average`` (above) or ``bitmap``: the low-res copy is made as scikit-learn's
                digits were (UCI optdigits): the glyph's ink box size-normalised (aspect kept, centred)
                into a binary bitmap of 4× the side, its strokes grown or thinned to an even share of
                ink (NIST's stroke-width normalisation), the on-pixels of each 4×4 block counted, and
                the counts scaled up exactly as ``eval_data=digits`` shows the real ones (glyphlab.data.digits);
- ``supersample`` draw at this multiple of ``image_size`` and average down (area), so thin
                pens stay smooth and even.

``python -m glyphlab.data.calibrate`` measures these quantities on real pen trajectories
(Omniglot); the synthetic sets' defaults come from it (README, "Where the handwriting comes from").

Lines are drawn anti-aliased from the exact distance of each pixel centre to each segment.
No drawing library does this for a whole batch of variants at once (Pillow draws one image at
a time without anti-aliasing), and the vectorised field below renders several thousand 32×32
runes per second on one core: ``make bench`` measures it (benchmarks/synth.py).
"""
from __future__ import annotations

import numpy as np

from glyphlab.data import DataError, GlyphSet

# Default handwriting; each data YAML states its own values.
DEFAULT_STYLE = dict(jitter=0.02, wobble=0.03, pen_width=(0.06, 0.1), rotation=8.0, slant=0.2,
                     scale=(0.85, 1.05), shift=0.05, margin=0.04, aspect=0.0, stroke_shift=0.0,
                     stroke_rotation=0.0, stroke_scale=0.0, pen_relative=False, fit=0.0, supersample=1,
                     low_res=(8, 16), low_res_p=0.0, low_res_mode="average", join=0.0, split=0.0)
LOW_RES_MODES = ("average", "bitmap")
STYLE_KEYS = tuple(DEFAULT_STYLE)

# Long segments are cut into pieces of at most this many pixels before drawing: the wobble
# needs interior points to bend a straight stroke, and each segment is drawn inside a small
# window around it, so short segments keep the windows (and the work) small.
MAX_SEGMENT_PX = 4.0
JOIN_GAP = 0.15     # a stroke may be joined to the previous one when it starts this close to its end
REWRITES = 4        # with join/split: rewritten copies of each prototype, each image draws one
CHUNK_PIXELS = 1 << 20  # window pixels evaluated per numpy pass; keeps temporaries in cache


FAMILY_SIDE = 0.84  # a font family's common ink box fills this much of the image side (as KanjiVG's does)


def family_box(points: np.ndarray) -> tuple[float, np.ndarray]:
    """(scale, offset) that put the ink box of ``points`` (float ``[n, 2]``, a whole font family's
    strokes in the font's units) centred in the unit box with its longer side :data:`FAMILY_SIDE`."""
    lo, hi = points.min(0), points.max(0)
    scale = FAMILY_SIDE / (hi - lo).max()
    return scale, 0.5 - scale * (lo + hi) / 2


def render_glyph(strokes: list[np.ndarray], n: int, image_size: int, rng: np.random.Generator,
                 **style) -> np.ndarray:
    """Draw ``n`` handwritten variants of one glyph.

    strokes: list of float ``[n_points, 2]`` polylines (x, y) in the unit box, y down;
             a one-point stroke is a dot.
    rng:     the ``np.random.Generator`` that makes the variants (same state → same images).
    style:   the variation strengths of the module docstring (missing keys take
             :data:`DEFAULT_STYLE`).
    Returns uint8 ``[n, image_size, image_size]``, ink 255 on 0.
    """
    style = _check_style(style)
    draw_size = image_size * style["supersample"]
    if style["fit"]:
        strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
        every = np.concatenate(strokes)
        lo, hi = every.min(0), every.max(0)
        grow = style["fit"] / max(float((hi - lo).max()), 1e-6)
        strokes = [(s - (lo + hi) / 2) * grow + 0.5 for s in strokes]
    points, stroke_id, along, seg = _prepare(strokes, MAX_SEGMENT_PX / (draw_size * style["scale"][1]))
    n_strokes = len(strokes)
    lengths = np.array([_length(s) for s in strokes])
    if style["stroke_shift"] or style["stroke_rotation"] or style["stroke_scale"]:
        points = _move_strokes(points, stroke_id, n_strokes, n, rng, style)            # [n, P, 2]
    else:
        points = points[None]

    # Per-stroke variation: ends displaced independently, the middle bent by two sine modes.
    ends = rng.normal(0.0, style["jitter"], (n, n_strokes, 2, 2))            # [n, stroke, end, xy]
    bend = rng.normal(0.0, style["wobble"], (n, n_strokes, 2, 2)) * lengths[None, :, None, None]
    t = along[None, :, None]                                                  # [1, P, 1]
    pts = (points
           + ends[:, stroke_id, 0] * (1 - t) + ends[:, stroke_id, 1] * t
           + bend[:, stroke_id, 0] * np.sin(np.pi * t) + 0.5 * bend[:, stroke_id, 1] * np.sin(2 * np.pi * t))

    # Per-variant affine: scale, slant, rotation about the box centre, then a shift.
    angle = np.deg2rad(rng.uniform(-style["rotation"], style["rotation"], n))
    shear = rng.uniform(-style["slant"], style["slant"], n)
    size = rng.uniform(*style["scale"], n)
    move = rng.uniform(-style["shift"], style["shift"], (n, 2))
    radius = rng.uniform(*style["pen_width"], n) / 2                         # unit box
    if style["aspect"]:  # drawn only when asked, so the older sets keep their random streams
        stretch = np.exp(rng.uniform(-style["aspect"], style["aspect"], n) / 2)
        size = np.stack([size * stretch, size / stretch], -1)                  # [n, 2]: x, y
    else:
        size = np.stack([size, size], -1)
    cos, sin = np.cos(angle), np.sin(angle)
    # y grows downwards, so x += shear * (0.5 - y) leans the top to the right like italics.
    shear_m = np.stack([np.stack([np.ones(n), -shear], -1), np.stack([np.zeros(n), np.ones(n)], -1)], -2)
    rot_m = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    affine = rot_m @ shear_m @ (np.eye(2) * size[:, None, :])                # [n, 2, 2]
    pts = (pts - 0.5) @ affine.transpose(0, 2, 1) + 0.5 + move[:, None, :]
    if style["pen_relative"]:
        radius = radius * np.ptp(pts, axis=1).max(-1)

    pts = _keep_inside(pts, style["margin"] + radius)
    if style["supersample"] == 1:
        images = big = _draw(pts * image_size, seg, radius * image_size, image_size)
    else:
        big = _draw(pts * draw_size, seg, radius * draw_size, draw_size)
        k = style["supersample"]
        images = np.rint(big.astype(np.float32).reshape(n, image_size, k, image_size, k).mean((2, 4))).astype(np.uint8)
    if style["low_res_p"]:
        images = _low_res(images, rng, style["low_res"], style["low_res_p"], style["low_res_mode"], big)
    return images


def _low_res(images: np.ndarray, rng, sides, p, mode="average", big=None) -> np.ndarray:
    """A share ``p`` of ``images`` averaged down to a side in ``sides`` and scaled back up (bicubic);
    ``mode="bitmap"``: made from ``big`` (the same images drawn at a higher resolution) as block counts
    of a binary bitmap, see :func:`_bitmap_counts`."""
    from PIL import Image

    size = images.shape[1]
    which = rng.random(len(images)) < p
    side = rng.integers(int(sides[0]), int(sides[1]) + 1, len(images))
    out = images.copy()
    if mode == "bitmap":
        from glyphlab.data.digits import BITMAP_INK

        ink = rng.uniform(*BITMAP_INK, len(images))
    for i in np.flatnonzero(which):
        if mode == "bitmap":
            out[i] = _bitmap_counts(images[i] if big is None else big[i], int(side[i]), size, ink[i])
            continue
        small = Image.fromarray(images[i]).resize((side[i], side[i]), Image.Resampling.BOX)
        up = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        # a thin line averaged into big pixels turns grey; scanners and bitmap makers (the digits'
        # 0..16 counts) keep full contrast, so the darkest ink is stretched back to 255
        out[i] = np.clip(np.rint(up * (255.0 / max(up.max(), 1.0))), 0, 255).astype(np.uint8)
    return out


def _bitmap_counts(image: np.ndarray, side: int, size: int, ink: float | None = None) -> np.ndarray:
    """uint8 ``[H, H]`` glyph → uint8 ``[size, size]`` made as UCI optdigits made scikit-learn's digits:
    the ink box fitted (aspect kept, centred) into a binary bitmap of ``BLOCK * side`` pixels (half ink
    counts as on), its strokes thickened or thinned until about ``ink`` of the bitmap is on (NIST's
    stroke-width normalisation; None: as drawn), on-pixels counted per block and the counts scaled
    up as the eval loader does."""
    from PIL import Image

    from glyphlab.data.digits import BLOCK, block_counts, even_ink, upscale

    full = BLOCK * side
    rows, cols = np.flatnonzero((image >= 128).any(1)), np.flatnonzero((image >= 128).any(0))
    if rows.size == 0:
        return np.zeros((size, size), np.uint8)
    crop = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = full / max(crop.shape)
    h, w = min(full, max(1, round(crop.shape[0] * scale))), min(full, max(1, round(crop.shape[1] * scale)))
    bitmap = np.zeros((full, full), bool)
    top, left = (full - h) // 2, (full - w) // 2
    inked = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR)) >= 128
    bitmap[top:top + h, left:left + w] = inked
    if ink is not None:
        bitmap = even_ink(bitmap, ink)
    return upscale(block_counts(bitmap[None]), size)[0]


def synthesize(glyphs: list, classes: list[str], samples_per_class: int,
               image_size: int, seed: int, **style) -> GlyphSet:
    """Render ``samples_per_class`` variants of every glyph.

    glyphs:  per class, in label order, one stroke list (see :func:`render_glyph`) or a list of
             stroke lists — several prototypes (ways to write the character); each image then
             draws one of them at random, all equally likely.
    classes: the class names (the characters), same length as ``glyphs``.
    Returns a GlyphSet with images uint8 ``[n_classes * samples_per_class, H, W]`` grouped by
    class, labels int64 0..n_classes-1; ``meta["prototypes"]`` is each class's prototype count.
    The same seed gives the same images.
    """
    if len(glyphs) != len(classes):
        raise DataError(f"expected one stroke list per class, got {len(glyphs)} for {len(classes)} classes")
    if samples_per_class < 1 or image_size < 8 or seed < 0:
        raise DataError(f"expected samples_per_class >= 1, image_size >= 8 and seed >= 0, "
                        f"got {samples_per_class}, {image_size} and {seed}")
    # Each class's generator is seeded by (seed, the class name), so a class's images do not
    # depend on which other classes are in the set: charset='アイウ' draws the same ア as
    # charset=katakana.
    images = np.empty((len(classes) * samples_per_class, image_size, image_size), np.uint8)
    counts = []
    for label, (entry, name) in enumerate(zip(glyphs, classes)):
        rng = np.random.default_rng([seed, *map(ord, str(name))])
        protos = _prototypes(entry, name)
        counts.append(len(protos))
        if style.get("join") or style.get("split"):
            protos = [_rewrite(p, rng, style.get("join", 0), style.get("split", 0))
                      for p in protos for _ in range(REWRITES)]
        out = images[label * samples_per_class:(label + 1) * samples_per_class]
        if len(protos) == 1:
            out[:] = render_glyph(protos[0], samples_per_class, image_size, rng, **style)
            continue
        which = rng.integers(len(protos), size=samples_per_class)
        for k, strokes in enumerate(protos):
            if (which == k).any():
                out[which == k] = render_glyph(strokes, int((which == k).sum()), image_size, rng, **style)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), samples_per_class)
    return GlyphSet(images, labels, list(classes),
                    meta={"source": "strokes", "seed": seed, "prototypes": dict(zip(map(str, classes), counts))})


def _rewrite(strokes, rng, join: float, split: float) -> list[np.ndarray]:
    """One way of writing a prototype: strokes drawn on from the previous one (``join``) or in two (``split``)."""
    out: list[np.ndarray] = []
    for stroke in strokes:
        stroke = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        if out and rng.random() < join and np.linalg.norm(out[-1][-1] - stroke[0]) < JOIN_GAP:
            out[-1] = np.concatenate([out[-1], stroke])
        else:
            out.append(stroke)
    pieces = []
    for stroke in out:
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))])
        if len(stroke) > 1 and arc[-1] > 0 and rng.random() < split:
            at = rng.uniform(0.3, 0.7) * arc[-1]
            k = int(np.searchsorted(arc, at))  # the cut lies in segment k-1 .. k
            cut = stroke[k - 1] + (stroke[k] - stroke[k - 1]) * (at - arc[k - 1]) / max(arc[k] - arc[k - 1], 1e-12)
            pieces += [np.vstack([stroke[:k], cut]), np.vstack([cut, stroke[k:]])]
        else:
            pieces.append(stroke)
    return pieces


def _prototypes(entry, name) -> list[list[np.ndarray]]:
    """A class's prototypes: ``entry`` is one glyph (a list of ``[n, 2]`` strokes) or a list of glyphs."""
    if len(entry) == 0:
        raise DataError(f"expected strokes for class {name!r}, got none")
    first = entry[0]
    one_glyph = isinstance(first, np.ndarray) or (len(first) > 0 and np.ndim(first[0]) == 1)
    protos = [entry] if one_glyph else list(entry)
    if any(len(p) == 0 for p in protos):
        raise DataError(f"expected every prototype of class {name!r} to have strokes, got an empty one")
    return protos


def _move_strokes(points, stroke_id, n_strokes, n, rng, style) -> np.ndarray:
    """Each variant's strokes moved, turned and scaled as wholes about their own centres: ``[n, P, 2]``."""
    centre = np.stack([points[stroke_id == k].mean(0) for k in range(n_strokes)])          # [S, 2]
    shift = rng.normal(0.0, style["stroke_shift"], (n, n_strokes, 2))
    turn = np.deg2rad(rng.normal(0.0, style["stroke_rotation"], (n, n_strokes)))
    grow = np.exp(rng.normal(0.0, style["stroke_scale"], (n, n_strokes)))
    cos, sin = np.cos(turn) * grow, np.sin(turn) * grow                                     # [n, S]
    rel = points - centre[stroke_id]                                                        # [P, 2]
    c, s = cos[:, stroke_id], sin[:, stroke_id]                                             # [n, P]
    x = c * rel[:, 0] - s * rel[:, 1]
    y = s * rel[:, 0] + c * rel[:, 1]
    return np.stack([x, y], -1) + centre[stroke_id] + shift[:, stroke_id]


def _check_style(style: dict) -> dict:
    unknown = set(style) - set(STYLE_KEYS)
    if unknown:
        raise DataError(f"expected style keys among {', '.join(STYLE_KEYS)}, got {', '.join(sorted(unknown))}")
    style = {**DEFAULT_STYLE, **style}
    for key in ("pen_width", "scale", "low_res"):
        lo_hi = style[key]
        if not (np.ndim(lo_hi) == 1 and len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1]):
            raise DataError(f"{key} must be [min, max] with 0 < min <= max, got {lo_hi!r}")
        style[key] = (float(lo_hi[0]), float(lo_hi[1]))
    for key in ("jitter", "wobble", "rotation", "slant", "shift", "margin", "aspect", "stroke_shift",
                "stroke_rotation", "stroke_scale", "fit", "join", "split"):
        if style[key] < 0:
            raise DataError(f"{key} must be >= 0, got {style[key]}")
    if style["low_res_mode"] not in LOW_RES_MODES:
        raise DataError(f"low_res_mode must be one of {', '.join(LOW_RES_MODES)}, got {style['low_res_mode']!r}")
    if not 0 <= style["low_res_p"] <= 1:
        raise DataError(f"low_res_p must be a probability in [0, 1], got {style['low_res_p']}")
    if style["supersample"] not in (1, 2, 3, 4, 5, 6, 7, 8):
        raise DataError(f"supersample must be an integer from 1 to 8, got {style['supersample']!r}")
    style["supersample"] = int(style["supersample"])
    return style


def _length(stroke: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(stroke, axis=0), axis=1).sum())


def _prepare(strokes: list[np.ndarray], max_len: float):
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


def _keep_inside(pts: np.ndarray, border: np.ndarray) -> np.ndarray:
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


def _draw(pts: np.ndarray, seg: np.ndarray, radius: np.ndarray, image_size: int) -> np.ndarray:
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
