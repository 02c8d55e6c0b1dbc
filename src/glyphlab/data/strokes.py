"""The stroke engine: turns glyphs drawn as strokes into many handwriting-like images.

A glyph is a list of strokes; a stroke is a float ``[n_points, 2]`` polyline of ``(x, y)`` in
the unit box (y down, ``(0, 0)`` top-left, ``(1, 1)`` bottom-right); curves are sampled into
polylines by whoever supplies them (``runes.py`` writes straight strokes by hand,
``sources/kanjivg.py`` samples KanjiVG's SVG paths). :func:`render_glyph` draws ``n`` variants of one
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
                when that ended near its start, and that a stroke is lifted halfway and restarted; the
                pieces then vary on their own (:mod:`glyphlab.data.handwriting`);
- ``sparse_p``  (:func:`synthesize`) the share of images traced by a sparse pen: the glyph's strokes as
                one trace through 6-12 points joined by straight lines, as a digitiser that keeps few
                points draws them (:func:`glyphlab.data.handwriting.sparse_trace`);
- ``blend``     (:func:`synthesize`) the share of images written between two of the character's prototypes:
                two that have as many strokes, and strokes that correspond, each image moving a random share
                of the way from one to the other (:func:`glyphlab.data.handwriting.blend_pairs`) — a hand
                that learned the letter from both forms; a character without such a pair draws its
                prototypes as before;
- ``low_res``   ``[min, max]`` pixel side: a share ``low_res_p`` of the variants is averaged down to
                a random side in that range and scaled back up (bicubic), as a scan or a small
                bitmap reaches the model (scikit-learn's digits are 8×8 counts), with the darkest ink
                stretched back to full contrast; ``low_res_p`` 0: off;
- ``low_res_pick`` ``range`` (any side from ``low_res``'s min to max) or ``each`` (``low_res`` lists the
                sides, e.g. ``[8, 16]``: each copy takes one of them, as the field's sets come at a few
                sizes: optdigits 8, USPS and Semeion 16);
- ``low_res_mode`` ``average`` (above) or ``bitmap``, or a list of them (each low-res image picks one):
                the low-res copy is made as scikit-learn's digits were (UCI optdigits): the glyph's
                ink box size-normalised (aspect kept, centred)
                into a binary bitmap of 4× the side, its strokes grown or thinned to an even share of
                ink (NIST's stroke-width normalisation), the on-pixels of each 4×4 block counted, and
                the counts scaled up exactly as ``eval_data=digits`` shows the real ones (glyphlab.data.digits);
- ``supersample`` draw at this multiple of ``image_size`` and average down (area), so thin
                pens stay smooth and even.

``python -m glyphlab.data.calibrate`` measures these quantities on real pen trajectories
(Omniglot); the synthetic sets' defaults come from it (docs/data.md, "Where the handwriting comes from").

Drawing the variants into pixels, and their low-resolution copies: :mod:`glyphlab.data.raster`.
"""
from __future__ import annotations

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.data.handwriting import blend, blend_pairs, rewrite, sparse_trace
from glyphlab.data.raster import draw, keep_inside, low_res, prepare, stroke_length
from glyphlab.errors import DataError

# Default handwriting; each data YAML states its own values.
DEFAULT_STYLE = dict(jitter=0.02, wobble=0.03, pen_width=(0.06, 0.1), rotation=8.0, slant=0.2,
                     scale=(0.85, 1.05), shift=0.05, margin=0.04, aspect=0.0, stroke_shift=0.0,
                     stroke_rotation=0.0, stroke_scale=0.0, pen_relative=False, fit=0.0, supersample=1,
                     low_res=(8, 16), low_res_p=0.0, low_res_mode="average",
                     low_res_pick="range", join=0.0, split=0.0, sparse_p=0.0, blend=0.0)
LOW_RES_MODES = ("average", "bitmap")
LOW_RES_PICKS = ("range", "each")
STYLE_KEYS = tuple(DEFAULT_STYLE)

# Long segments are cut into pieces of at most this many pixels before drawing: the wobble
# needs interior points to bend a straight stroke, and each segment is drawn inside a small
# window around it, so short segments keep the windows (and the work) small.
MAX_SEGMENT_PX = 4.0
REWRITES = 4        # with join/split: rewritten copies of each prototype, each image draws one


FAMILY_SIDE = 0.84  # a font family's common ink box fills this much of the image side (as KanjiVG's does)


def family_box(points: np.ndarray) -> tuple[float, np.ndarray]:
    """(scale, offset) that put the ink box of ``points`` (float ``[n, 2]``, a whole font family's
    strokes in the font's units) centred in the unit box with its longer side :data:`FAMILY_SIDE`."""
    lo, hi = points.min(0), points.max(0)
    scale = FAMILY_SIDE / (hi - lo).max()
    return scale, 0.5 - scale * (lo + hi) / 2


def _place_variants(pts: np.ndarray, n: int, rng: np.random.Generator, style: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each variant's affine: scale, slant, rotation about the box centre, then a shift; and its pen radius.
    ``pts`` float ``[n or 1, P, 2]`` → ``[n, P, 2]``; radius ``[n]`` in the unit box."""
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
    return pts, radius


def render_glyph(strokes: list[np.ndarray], n: int, image_size: int, rng: np.random.Generator,
                 fit_box=None, **style) -> np.ndarray:
    """Draw ``n`` handwritten variants of one glyph.

    strokes: list of float ``[n_points, 2]`` polylines (x, y) in the unit box, y down;
             a one-point stroke is a dot.
    rng:     the ``np.random.Generator`` that makes the variants (same state → same images).
    fit_box: with ``fit``: the ``(lo, hi)`` ink box to fit instead of the glyph's own (a small kana is
             scaled as its full-size partner is, so it stays small).
    style:   the variation strengths of the module docstring (missing keys take
             :data:`DEFAULT_STYLE`).
    Returns uint8 ``[n, image_size, image_size]``, ink 255 on 0.
    """
    style = _check_style(style)
    draw_size = image_size * style["supersample"]
    if style["fit"]:
        strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
        every = np.concatenate(strokes)
        lo, hi = (every.min(0), every.max(0)) if fit_box is None else map(np.asarray, fit_box)
        grow = style["fit"] / max(float((hi - lo).max()), 1e-6)
        strokes = [(s - (lo + hi) / 2) * grow + 0.5 for s in strokes]
    points, stroke_id, along, seg = prepare(strokes, MAX_SEGMENT_PX / (draw_size * style["scale"][1]))
    n_strokes = len(strokes)
    lengths = np.array([stroke_length(s) for s in strokes])
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

    pts, radius = _place_variants(pts, n, rng, style)
    if style["pen_relative"]:
        radius = radius * np.ptp(pts, axis=1).max(-1)

    pts = keep_inside(pts, style["margin"] + radius)
    if style["supersample"] == 1:
        images = big = draw(pts * image_size, seg, radius * image_size, image_size)
    else:
        big = draw(pts * draw_size, seg, radius * draw_size, draw_size)
        k = style["supersample"]
        images = np.rint(big.astype(np.float32).reshape(n, image_size, k, image_size, k).mean((2, 4))).astype(np.uint8)
    if style["low_res_p"]:
        images = low_res(images, rng, style["low_res"], style["low_res_p"], style["low_res_mode"], big,
                         pick=style["low_res_pick"])
    return images


def synthesize(glyphs: list, classes: list[str], samples_per_class: int,
               image_size: int, seed: int, fit_boxes: dict | None = None, **style) -> GlyphSet:
    """Render ``samples_per_class`` variants of every glyph.

    glyphs:  per class, in label order, one stroke list (see :func:`render_glyph`) or a list of
             stroke lists — several prototypes (ways to write the character); each image then
             draws one of them at random, all equally likely. A prototype may also be a function of
             a numpy Generator returning a stroke list (:class:`glyphlab.data.sources.allographs.Varied`): an
             image that draws it gets strokes of its own.
    classes: the class names (the characters), same length as ``glyphs``.
    fit_boxes: class name → the ink box ``fit`` scales that class by (a script fact: small kana keep
             their size); other classes fit their own box.
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
    _check_style(style)  # bad values say so before any drawing
    images = np.empty((len(classes) * samples_per_class, image_size, image_size), np.uint8)
    counts = []
    for label, (entry, name) in enumerate(zip(glyphs, classes)):
        rng = np.random.default_rng([seed, *map(ord, str(name))])
        protos = _prototypes(entry, name)
        counts.append(len(protos))
        _draw_class(images[label * samples_per_class:(label + 1) * samples_per_class], protos, rng, image_size,
                    dict(style, fit_box=(fit_boxes or {}).get(name)))
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), samples_per_class)
    return GlyphSet(images, labels, list(classes),
                    meta={"source": "strokes", "seed": seed, "prototypes": dict(zip(map(str, classes), counts))})


def _draw_class(out: np.ndarray, protos: list, rng: np.random.Generator, image_size: int, style: dict) -> None:
    """Fill ``out`` (uint8 ``[n, size, size]``) with one class's images: each draws one of its prototypes
    (rewritten with joins and splits), or is written between two of them (``blend``), or traced by a
    sparse pen (``sparse_p``)."""
    n = len(out)
    join, split, sparse = style.get("join", 0), style.get("split", 0), style.get("sparse_p", 0)
    pairs = blend_pairs(protos) if style.get("blend") else []
    base = protos
    if join or split:
        protos = [p if callable(p) else rewrite(p, rng, join, split) for p in protos for _ in range(REWRITES)]
    if len(protos) == 1 and not callable(protos[0]) and not sparse:
        out[:] = render_glyph(protos[0], n, image_size, rng, **style)
        return
    which = rng.integers(len(protos), size=n)
    alone = rng.random(n) < sparse if sparse else np.zeros(n, bool)
    between = (rng.random(n) < style["blend"]) & ~alone if pairs else np.zeros(n, bool)
    for i in np.flatnonzero(between):  # written between two prototypes: each image its own mix
        a, b, match = pairs[rng.integers(len(pairs))]
        drawn = blend(base[a], base[b], match, rng.random())
        out[i] = render_glyph(rewrite(drawn, rng, join, split) if join or split else drawn, 1, image_size, rng,
                              **style)[0]
    for k, strokes in enumerate(protos):
        chosen = np.flatnonzero((which == k) & ~alone & ~between)
        if callable(strokes):  # a family of allographs (allographs.Varied): each image its own proportions
            for i in chosen:
                drawn = rewrite(strokes(rng), rng, join, split) if join or split else strokes(rng)
                out[i] = render_glyph(drawn, 1, image_size, rng, **style)[0]
        elif chosen.size:
            out[chosen] = render_glyph(strokes, chosen.size, image_size, rng, **style)
    for i in np.flatnonzero(alone):  # a sparse pen: each image its own trace of its prototype
        strokes = protos[which[i]](rng) if callable(protos[which[i]]) else protos[which[i]]
        out[i] = render_glyph(sparse_trace(strokes, rng), 1, image_size, rng, **style)[0]


def _prototypes(entry, name) -> list[list[np.ndarray]]:
    """A class's prototypes: ``entry`` is one glyph (a list of ``[n, 2]`` strokes) or a list of glyphs."""
    if len(entry) == 0:
        raise DataError(f"expected strokes for class {name!r}, got none")
    first = entry[0]
    one_glyph = not callable(first) and (isinstance(first, np.ndarray) or (len(first) > 0 and np.ndim(first[0]) == 1))
    protos = [entry] if one_glyph else list(entry)
    if any(not callable(p) and len(p) == 0 for p in protos):
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
    if style["low_res_pick"] not in LOW_RES_PICKS:
        raise DataError(f"low_res_pick must be one of {', '.join(LOW_RES_PICKS)}, got {style['low_res_pick']!r}")
    ranges = ("pen_width", "scale", "low_res") if style["low_res_pick"] == "range" else ("pen_width", "scale")
    for key in ranges:
        lo_hi = style[key]
        if not (np.ndim(lo_hi) == 1 and len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1]):
            raise DataError(f"{key} must be [min, max] with 0 < min <= max, got {lo_hi!r}")
        style[key] = (float(lo_hi[0]), float(lo_hi[1]))
    if style["low_res_pick"] == "each":
        sides = style["low_res"]
        if not (np.ndim(sides) == 1 and len(sides) and all(float(v).is_integer() and v >= 2 for v in sides)):
            raise DataError(f"low_res with low_res_pick=each must list pixel sides >= 2, got {sides!r}")
        style["low_res"] = tuple(int(v) for v in sides)
    for key in ("jitter", "wobble", "rotation", "slant", "shift", "margin", "aspect", "stroke_shift",
                "stroke_rotation", "stroke_scale", "fit", "join", "split", "sparse_p"):
        if style[key] < 0:
            raise DataError(f"{key} must be >= 0, got {style[key]}")
    modes = [style["low_res_mode"]] if isinstance(style["low_res_mode"], str) else list(style["low_res_mode"])
    if not modes or any(m not in LOW_RES_MODES for m in modes):
        raise DataError(f"low_res_mode must be one of {', '.join(LOW_RES_MODES)} or a list of them, "
                        f"got {style['low_res_mode']!r}")
    style["low_res_mode"] = modes[0] if len(modes) == 1 else tuple(modes)
    for key in ("low_res_p", "sparse_p", "blend"):
        if not 0 <= style[key] <= 1:
            raise DataError(f"{key} must be a probability in [0, 1], got {style[key]}")
    if style["supersample"] not in (1, 2, 3, 4, 5, 6, 7, 8):
        raise DataError(f"supersample must be an integer from 1 to 8, got {style['supersample']!r}")
    style["supersample"] = int(style["supersample"])
    return style
