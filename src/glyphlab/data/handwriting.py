"""How a hand rewrites a prototype before the stroke engine varies it: strokes drawn on from the
previous one (``join``), lifted halfway (``split``), or traced by a sparse pen (``sparse_p``).

These change the *list* of strokes, so they act per prototype rather than per variant (the engine's
:func:`glyphlab.data.strokes.render_glyph` varies a fixed list). The values come from the
``handwriting`` config group (conf/handwriting/), the one model of a person's hand that every
synthetic data option shares.
"""
from __future__ import annotations

import numpy as np

JOIN_GAP = 0.15       # a stroke may be joined to the previous one when it starts this close to its end
SPARSE_POINTS = (6, 12)  # a sparse pen trace keeps this many points of the whole glyph, uniform


def rewrite(strokes, rng: np.random.Generator, join: float, split: float) -> list[np.ndarray]:
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
        arc = _arc(stroke)
        if len(stroke) > 1 and arc[-1] > 0 and rng.random() < split:
            at = rng.uniform(0.3, 0.7) * arc[-1]
            k = int(np.searchsorted(arc, at))  # the cut lies in segment k-1 .. k
            cut = stroke[k - 1] + (stroke[k] - stroke[k - 1]) * (at - arc[k - 1]) / max(arc[k] - arc[k - 1], 1e-12)
            pieces += [np.vstack([stroke[:k], cut]), np.vstack([cut, stroke[k:]])]
        else:
            pieces.append(stroke)
    return pieces


def sparse_trace(strokes, rng: np.random.Generator) -> list[np.ndarray]:
    """The glyph as a pen digitiser that keeps a few points sees it: the strokes in writing order as
    one trace (pen-up moves included), resampled to 6-12 points evenly along it, joined by straight
    lines. A one-point glyph stays a dot."""
    trace = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    arc = _arc(trace)
    if len(trace) < 2 or arc[-1] <= 0:
        return [trace[:1]]
    k = int(rng.integers(SPARSE_POINTS[0], SPARSE_POINTS[1] + 1))
    at = np.linspace(0.0, arc[-1], k)
    return [np.stack([np.interp(at, arc, trace[:, 0]), np.interp(at, arc, trace[:, 1])], -1)]


def _arc(stroke: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))])
