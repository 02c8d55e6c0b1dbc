"""The project's own stroke table for common ways of writing a character that no stroke source has.

Real writers do not all write a character the same way: an open or a closed 4, a 7 with a bar,
a 1 with a flag and a base, a 9 with a straight or a hooked tail, a flat-topped 3, a two-storey a,
a y with a straight tail, a closed θ. A model that has only seen one of them reads the others as
something else (experiments/synth_to_real: real 7s with a bar read as 1/3/9, 9s whose tail hooks
back left as 3).

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

# Whose placement an allograph takes: the Hershey font of the character's family.
PLACED_AS = {c: "greeks" for c in "θφνγτβ"}
DEFAULT_PLACED_AS = "futural"


def glyphs(char: str, family: str) -> list[list[np.ndarray]]:
    """The table's allographs of ``char`` in the unit box (placed as ``family`` in its Hershey font)."""
    from glyphlab.data.hershey_strokes import family_mapping

    if char not in TABLE:
        return []
    scale, offset = family_mapping(PLACED_AS.get(char, DEFAULT_PLACED_AS), family)
    return [[np.asarray(s, dtype=np.float64) * scale + offset for s in strokes] for strokes in TABLE[char]]
