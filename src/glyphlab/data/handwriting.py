"""How a hand rewrites a prototype before the stroke engine varies it: strokes drawn on from the
previous one (``join``), lifted halfway (``split``), traced by a sparse pen (``sparse_p``), or written
between two of its prototypes (``blend``).

These change the *list* of strokes, so they act per prototype rather than per variant (the engine's
:func:`glyphlab.data.strokes.render_glyph` varies a fixed list). The values come from the
``handwriting`` config group (conf/handwriting/), the one model of a person's hand that every
synthetic data option shares.
"""
from __future__ import annotations

import numpy as np

JOIN_GAP = 0.15       # a stroke may be joined to the previous one when it starts this close to its end
SPARSE_POINTS = (6, 12)  # a sparse pen trace keeps this many points of the whole glyph, uniform
BLEND_POINTS = 16     # strokes are compared at this many points along their length (blends keep at least this many)
BLEND_MAX_GAP = 0.1   # two prototypes blend only when their matched strokes lie this close, on average (unit box)


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


def blend_pairs(protos) -> list[tuple[int, int, list[tuple[int, bool]]]]:
    """The prototypes of one character that can be written between: ``(i, j, match)`` for every pair with
    the same number of strokes whose strokes correspond — stroke k of ``i`` goes with stroke ``match[k][0]``
    of ``j`` (``match[k][1]``: drawn the other way), the assignment with the least mean distance between
    points at equal arc length, and that distance under :data:`BLEND_MAX_GAP`. Prototypes that are
    functions (allograph families) and pairs whose strokes do not correspond take no part."""
    from scipy.optimize import linear_sum_assignment

    fixed = [(i, [_resample(s, BLEND_POINTS) for s in p]) for i, p in enumerate(protos) if not callable(p)]
    pairs = []
    for x, (i, a) in enumerate(fixed):
        for j, b in fixed[x + 1:]:
            if len(a) != len(b):
                continue
            forward = np.array([[np.linalg.norm(sa - sb, axis=1).mean() for sb in b] for sa in a])
            backward = np.array([[np.linalg.norm(sa - sb[::-1], axis=1).mean() for sb in b] for sa in a])
            cost = np.minimum(forward, backward)
            rows, cols = linear_sum_assignment(cost)
            if cost[rows, cols].mean() < BLEND_MAX_GAP:
                pairs.append((i, j, [(int(c), bool(backward[r, c] < forward[r, c])) for r, c in zip(rows, cols)]))
    return pairs


def blend(a, b, match: list[tuple[int, bool]], t: float) -> list[np.ndarray]:
    """The glyph written a share ``t`` of the way from prototype ``a`` to ``b`` (``match`` from :func:`blend_pairs`):
    each stroke of ``a`` moved towards its partner in ``b``, point by point at equal arc length."""
    out = []
    for stroke, (k, reverse) in zip(a, match):
        stroke = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        other = np.asarray(b[k], dtype=np.float64).reshape(-1, 2)
        other = other[::-1] if reverse else other
        n = max(len(stroke), len(other), BLEND_POINTS) if len(stroke) > 1 or len(other) > 1 else 1
        out.append((1 - t) * _resample(stroke, n) + t * _resample(other, n))
    return out


def _resample(stroke, n: int) -> np.ndarray:
    """``n`` points evenly spaced along a stroke (a dot: the point ``n`` times)."""
    stroke = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
    arc = _arc(stroke)
    if len(stroke) < 2 or arc[-1] <= 0:
        return np.repeat(stroke[:1], n, axis=0)
    at = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])], -1)


def _arc(stroke: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))])
