"""The project's own stroke table for common ways of writing a character that no stroke source has.

Real writers do not all write a character the same way: an open or a closed 4, a 7 with a bar,
a 1 with a flag and a base, a 9 with a straight or a hooked tail, a flat-topped 3, a two-storey a,
a y with a straight tail, a closed θ. A model that has only seen one of them reads the others as
something else (experiments/synth_to_real: real 7s with a bar read as 1/3/9, 9s whose tail hooks
back left as 3).

Some ways of writing vary continuously rather than in a few fixed forms, and a model must learn how far
they reach: how far a one-storey ɑ's stem may pass its bowl and still be an a rather than a d or q, how far
an n's or r's stem may start above the arch and still not be an h. :data:`VARIED` holds such families:
every image drawn from one gets proportions of its own (:class:`Varied`).

Coordinates are Hershey units (x right, y down; capitals and digits from y = -12 to the
baseline at y = 9, lower case from y = -5, descenders to 16), so an allograph is placed in the
image exactly like the Hershey font of its family (:data:`PLACED_AS`).
"""
from __future__ import annotations

import numpy as np


def _arc(cx, cy, rx, ry, start, end, n=24) -> list[tuple[float, float]]:
    """Points of an ellipse arc, angles in degrees (0 = right, 90 = down since y is down)."""
    t = np.deg2rad(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# char -> list of allographs; an allograph is a list of strokes, a stroke a list of (x, y).
TABLE: dict[str, list[list[list[tuple[float, float]]]]] = {
    "1": [[[(11, -12), (11, 9)]],                                              # a plain bar
          [[(6, -7), (11, -12), (11, 9)], [(6, 9), (16, 9)]]],                 # flag and base
    "4": [[[(5, -12), (3, 2), (18, 2)], [(14, -6), (14, 9)]]],                 # open top
    "7": [[[(3, -12), (17, -12), (8, 9)], [(7, -1), (16, -1)]],                # with a bar
          [[(3, -9), (3, -12), (17, -12), (9, 9)]],                            # with a serif, one stroke
          [[(3, -8), (4, -12), (17, -12), (8, 9)], [(6, -1), (15, -1)]]],      # serif and bar
    "9": [[_arc(9.5, -6, 6.5, 6, -10, 350), [(16, -7), (15, 9)]],             # straight tail
          [_arc(9.5, -6, 6.5, 6, -10, 350),                                      # tail hooked back left
           [(16, -7), (16, 2), (14.5, 6.5), (11, 8.7), (7, 9), (4, 7.5)]],
          [_arc(9, -8, 5.5, 4.5, -10, 350),                                      # small loop, long hooked tail
           [(14.5, -9), (15.5, 0), (15, 5), (12.5, 8.3), (8, 9.2), (3.5, 8)]]],
    "3": [[[(4, -12), (16, -12), (9, -3)] + _arc(9.5, 3, 6.5, 6, -90, 150)[1:]]],  # flat top (a Z above a bowl)
    "2": [[_arc(10, -6, 6.5, 6, 190, 360)[:-1] + [(16, -6), (3, 9), (17, 9)]]],  # round top, flat base
    "a": [[_arc(9.5, -1.5, 5.5, 3.5, 200, 340) + [(15, -2), (15, 9)],          # two-storey
           _arc(9.5, 4.5, 5.5, 4.5, 300, 40)]],
    "y": [[[(3, -5), (9, 4)], [(15, -5), (5, 16)]]],                           # straight tail
    "t": [[[(9, -10), (9, 9)], [(3, -4), (15, -4)]]],                           # a plain cross, no hook
    "g": [[_arc(9, -1, 6, 4.5, 0, 360), [(15, -5), (15, 13), (12, 16), (6, 16), (4, 14)]]],  # closed bowl, hook
    "θ": [[_arc(10, -1.5, 6, 10.5, -90, 270), [(4, -1.5), (16, -1.5)]]],      # closed, barred
    "φ": [[_arc(10, 2, 6.5, 6, 0, 360), [(10, -10), (10, 16)]]],             # ring and stem
    "ν": [[[(3, -5), (9, 9), (15, -3), (16, -5)]]],                            # pointed, as printed
    "γ": [[[(3, -5), (9, 5), (9, 16)], [(15, -5), (9, 5)]]],                   # a Y
    "τ": [[[(3, -5), (16, -5)], [(9, -5), (9, 6), (11, 9), (14, 9)]]],          # bar, stem with a hook
    "β": [[[(5, 16), (5, -8)] + _arc(9.5, -8, 4.5, 4, 180, 450)[1:] + _arc(9.5, 3, 5.5, 6, 270, 450)[1:]]],  # B-like
}

X_TOP, BASE = -5.0, 9.0       # lower case: x-height and baseline, Hershey units
X_HEIGHT = BASE - X_TOP
OVERSHOOT = 0.35              # a stem passes the bowl or arch by up to this share of the x-height; the varied
                              # h's ascender by 0.4-0.9, the sources' d and h by 0.25-1.0 (KanjiVG 0.34,
                              # Hershey 0.5): the ranges touch, as the drawers' forms do (experiments/synth_to_real)


def _superellipse(x0, x1, y0, y1, p, start, sweep, n=40) -> list[tuple[float, float]]:
    """Points of the superellipse |x|^p + |y|^p = 1 in the box, angles in radians (p 2: an ellipse,
    4: nearly a rounded square), from ``start`` over ``sweep`` (negative: counter-clockwise as seen)."""
    t = np.linspace(start, start + sweep, n)
    c, s = np.cos(t), np.sin(t)
    return list(zip((x0 + x1) / 2 + (x1 - x0) / 2 * np.sign(c) * np.abs(c) ** (2 / p),
                    (y0 + y1) / 2 + (y1 - y0) / 2 * np.sign(s) * np.abs(s) ** (2 / p)))


def _open_a(rng):
    """One-storey ɑ: a round to squarish bowl drawn from its top right, the stem on its right passing
    the bowl above and below by a random share of the x-height, sometimes with a small foot."""
    w = X_HEIGHT * rng.uniform(0.8, 1.15)
    x0, x1 = 9.5 - w / 2, 9.5 + w / 2
    bowl = _superellipse(x0, x1, X_TOP, BASE, rng.uniform(2.0, 4.0), np.deg2rad(-20), -2 * np.pi * 0.97)
    up, down = rng.uniform(0, OVERSHOOT, 2) * X_HEIGHT
    stem = [(x1, X_TOP - up), (x1, BASE + down)]
    if rng.random() < 0.4:
        stem = [stem[0], (x1, BASE + down - 1.0), (x1 + 1.5, BASE + down)]
    return [bowl, stem]


def _stem_and_arch(rng, width, arm, reach=(0.0, OVERSHOOT)):
    """n (``arm`` False: the arch comes down to the baseline) or r (True: a short arm) whose stem starts
    above the arch by a random share of the x-height in ``reach``, as a lead-in or an overshoot; with a
    longer reach, an h."""
    w = X_HEIGHT * rng.uniform(*width)
    x0 = 9.5 - w / 2
    up = rng.uniform(*reach) * X_HEIGHT
    if arm:
        t = np.linspace(np.pi, np.pi / 4, 14)
        curve = [(x0, -0.5)] + list(zip(x0 + w / 2 + w / 2 * np.cos(t), X_TOP + 4.5 - 4.5 * np.sin(t)))
    else:
        t = np.linspace(np.pi, 0, 20)
        curve = [(x0, -1.0)] + list(zip(9.5 + w / 2 * np.cos(t), X_TOP + 4.0 - 4.0 * np.sin(t))) + [(x0 + w, BASE)]
    return [[(x0, X_TOP - up), (x0, BASE)], curve]


def _round_o(rng):
    """An o from round to squarish, of random width, closed or a little over- or under-drawn at its top."""
    w = X_HEIGHT * rng.uniform(0.7, 1.15)
    return [_superellipse(9.5 - w / 2, 9.5 + w / 2, X_TOP, BASE, rng.uniform(2.0, 4.0), -np.pi / 2,
                          -2 * np.pi * rng.uniform(0.97, 1.05))]


def _cup_u(rng):
    """A stemless u: one cup of random width, depth and roundness."""
    w = X_HEIGHT * rng.uniform(0.7, 1.05)
    x0, x1 = 9.5 - w / 2, 9.5 + w / 2
    p, depth = rng.uniform(2.0, 4.0), rng.uniform(0.35, 0.6) * X_HEIGHT
    t = np.linspace(np.pi, 0, 20)
    c, s = np.cos(t), np.sin(t)
    cup = zip(9.5 + w / 2 * np.sign(c) * np.abs(c) ** (2 / p), BASE - depth + depth * np.abs(s) ** (2 / p))
    return [[(x0, X_TOP), *cup, (x1, X_TOP)]]


# char -> (its share of the class's prototype draw, in prototypes; a function of a numpy Generator that
# returns one allograph's strokes in Hershey units). About half of these letters' images. The o and the h
# are there for their neighbours: a squarish ɑ whose stem barely passes the bowl must not take the squarish
# o's, an n with a lead-in not the h's with a short ascender (experiments/synth_to_real).
VARIED = {
    "a": (8, _open_a),
    "n": (6, lambda rng: _stem_and_arch(rng, (0.7, 1.0), arm=False)),
    "h": (6, lambda rng: _stem_and_arch(rng, (0.7, 1.0), arm=False, reach=(0.4, 0.9))),
    "r": (6, lambda rng: _stem_and_arch(rng, (0.45, 0.7), arm=True)),
    "u": (6, _cup_u),
    "o": (6, _round_o),
}


class Varied:
    """A family of allographs as a prototype: ``varied(rng)`` draws one, in the unit box (placed as its
    font family). :func:`glyphlab.data.strokes.synthesize` calls it once per image."""

    def __init__(self, char: str, scale: float, offset: np.ndarray):
        self.char, self.scale, self.offset = char, scale, offset

    def __call__(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [np.asarray(s, dtype=np.float64) * self.scale + self.offset for s in VARIED[self.char][1](rng)]


# Whose placement an allograph takes: the Hershey font of the character's family.
PLACED_AS = {c: "greeks" for c in "θφνγτβ"}
DEFAULT_PLACED_AS = "futural"


def glyphs(char: str, family: str) -> list:
    """The table's allographs of ``char`` in the unit box (placed as ``family`` in its Hershey font), then
    its :class:`Varied` family as many times as its share of the draw."""
    from glyphlab.data.sources.hershey import family_mapping

    if char not in TABLE and char not in VARIED:
        return []
    scale, offset = family_mapping(PLACED_AS.get(char, DEFAULT_PLACED_AS), family)
    fixed = [[np.asarray(s, dtype=np.float64) * scale + offset for s in strokes] for strokes in TABLE.get(char, [])]
    return fixed + [Varied(char, scale, offset)] * VARIED.get(char, (0, None))[0]
