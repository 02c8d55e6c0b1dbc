"""Strokes from handwriting fonts: each glyph's outline rendered, thinned to its centre line and
traced into polylines, so the stroke engine can write it with a real pen and real variation.

The fonts are OFL families packaged on PyPI by ``fontpkg``, in two groups (:data:`GROUPS`):
handwriting (Caveat, Indie Flower, Kalam, Shadows Into Light) and print (Comfortaa, Noto Sans
upright and italic: they also have Greek; IPAexGothic from matplotlib-fontja: kana), plus the OFL fonts
glyphlab ships (:data:`BUNDLED_FONTS`: Klee One's kana and ASCII, a Japanese pen hand); a package's fonts
are used when it is installed. A glyph is drawn at
:data:`RENDER_PX` pixels, thinned (Zhang–Suen, below: a few numpy passes), and its skeleton cut at
junctions into branches; each branch becomes one stroke (spurs shorter than :data:`MIN_BRANCH` of the
glyph are dropped, pixel steps smoothed). Strokes are placed like the Hershey fonts: one mapping per
(font, family) centres the family's common ink box.
"""
from __future__ import annotations

import functools
from importlib import metadata

import numpy as np

from glyphlab.data import BUNDLED_DIR, BUNDLED_FONTS
from glyphlab.data.strokes import family_box

GROUPS = {"handwriting": ("fontpkg-caveat", "fontpkg-indie-flower", "fontpkg-kalam", "fontpkg-shadows-into-light"),
          "print": ("fontpkg-comfortaa", "fontpkg-noto-sans", "matplotlib-fontja")}

PACKAGES = GROUPS["handwriting"]
SKIP_FILES = ("Kalam-Bold", "Kalam-Regular")  # after thinning the same as Kalam Light
RENDER_PX = 96           # em size of the rendering that is thinned
MIN_BRANCH = 0.08        # spurs shorter than this fraction of the glyph's larger side are dropped


@functools.lru_cache(maxsize=None)
def font_files(group: str = "handwriting") -> tuple[str, ...]:
    """The installed font files of a :data:`GROUPS` group, in its order."""
    found = []
    for package in GROUPS[group]:
        try:
            files = metadata.files(package) or []
        except metadata.PackageNotFoundError:
            continue
        found += sorted(str(f.locate()) for f in files
                        if f.name.lower().endswith((".ttf", ".otf")) and not any(s in f.name for s in SKIP_FILES))
    found += [str(BUNDLED_DIR / name) for name in BUNDLED_FONTS[group]]
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap() or ())


@functools.lru_cache(maxsize=None)
def raw_strokes(char: str, path: str) -> tuple[np.ndarray, ...]:
    """``char``'s centre-line strokes in ``path``'s font, in pixels of a :data:`RENDER_PX` em
    with the baseline at a fixed height (so a family keeps its relative sizes); () if absent."""
    from PIL import Image, ImageDraw, ImageFont

    if ord(char) not in _cmap(path):
        return ()
    side = 2 * RENDER_PX
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text((side // 4, int(side * 0.65)), char, fill=255,
                                font=ImageFont.truetype(path, RENDER_PX), anchor="ls")
    ink = np.asarray(canvas) > 127
    if not ink.any():
        return ()
    return tuple(trace(thin(ink)))


def thin(ink: np.ndarray, min_neighbours: int = 2) -> np.ndarray:
    """Zhang–Suen thinning of a bool image to one-pixel-wide lines (bool, same shape).

    ``min_neighbours`` 3 is Lü and Wang's (1986) correction: a pixel with only two inked neighbours stays, so
    a line that erodes to a two-pixel staircase (a straight / scaled up from a small drawing) is kept instead
    of thinned away to one pixel; the staircase traces as one line (m-adjacency in :func:`trace`). Drawings use
    it (glyphlab.data.extra); the fonts keep 2, with which every recipe was measured."""
    img = np.pad(ink.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(img, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]  # P2..P9
            b = sum(p)
            a = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.uint8) for i in range(8))
            if step == 0:
                c1, c2 = p[0] * p[2] * p[4], p[2] * p[4] * p[6]
            else:
                c1, c2 = p[0] * p[2] * p[6], p[0] * p[4] * p[6]
            kill = (img == 1) & (b >= min_neighbours) & (b <= 6) & (a == 1) & (c1 == 0) & (c2 == 0)
            if kill.any():
                img[kill] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def trace(skeleton: np.ndarray) -> list[np.ndarray]:
    """Cut a one-pixel skeleton at its junctions into branches: float ``[n, 2]`` (x, y) polylines."""
    pixels = {(int(y), int(x)) for y, x in zip(*np.nonzero(skeleton))}
    if not pixels:
        return []

    def neighbours(p):
        # m-adjacency: a diagonal neighbour counts only when no 4-neighbour links the two already,
        # so a staircase is a line and not a chain of junctions
        y, x = p
        return [(y + dy, x + dx) for dy, dx in _NEIGHBOURS if (y + dy, x + dx) in pixels
                and (dy == 0 or dx == 0 or ((y + dy, x) not in pixels and (y, x + dx) not in pixels))]

    nodes = {p for p in pixels if len(neighbours(p)) != 2}
    used: set = set()  # pixel pairs already walked
    branches = []

    def walk(start, nxt):
        path = [start, nxt]
        used.add(frozenset((start, nxt)))
        while path[-1] not in nodes:
            step = [q for q in neighbours(path[-1]) if frozenset((path[-1], q)) not in used and q != path[-2]]
            if not step:
                break
            used.add(frozenset((path[-1], step[0])))
            path.append(step[0])
            if path[-1] == start:
                break
        return path

    for node in sorted(nodes):
        for q in neighbours(node):
            if frozenset((node, q)) not in used:
                branches.append(walk(node, q))
    branches += [[p] for p in sorted(nodes) if not neighbours(p)]  # a dot thinned to one pixel
    for p in sorted(pixels):  # closed loops without a junction (an o): start anywhere on them
        for q in neighbours(p):
            if frozenset((p, q)) not in used:
                branches.append(walk(p, q))
    ys, xs = np.nonzero(skeleton)
    size = max(np.ptp(ys), np.ptp(xs)) + 1

    def length(path):
        return sum(np.hypot(a[0] - b[0], a[1] - b[1]) for a, b in zip(path, path[1:]))

    # a short branch with one free end off a junction is a thinning spur, not a stroke
    branches = [b for b in branches if length(b) >= MIN_BRANCH * size
                or sum(len(neighbours(b[i])) == 1 for i in (0, -1)) != 1]
    return [_polyline(path) for path in _join_through_junctions(branches, nodes)]


def _polyline(path: list) -> np.ndarray:
    """A branch's (y, x) pixels as a float ``[n, 2]`` (x, y) polyline, its pixel staircase smoothed, its ends kept."""
    pts = np.array([(x, y) for y, x in path], dtype=np.float64)
    if len(pts) > 4:
        kernel = np.ones(5) / 5
        inner = np.stack([np.convolve(np.pad(pts[:, k], 2, mode="edge"), kernel, "valid") for k in (0, 1)], 1)
        inner[[0, -1]] = pts[[0, -1]]
        pts = inner[::2] if len(inner) > 8 else inner
        if not np.array_equal(pts[-1], inner[-1]):
            pts = np.concatenate([pts, inner[-1:]])
    return pts


def _join_through_junctions(branches: list[list], nodes: set, max_turn: float = 50.0) -> list[list]:
    """Join branches that meet at a junction and go on nearly straight (turn < ``max_turn`` degrees),
    straightest pair first, so a stem crossed by a bar stays one stroke as a pen would draw it."""
    def direction(path, at_start):  # unit vector pointing out of the junction along the branch
        a, b = (path[0], path[min(6, len(path) - 1)]) if at_start else (path[-1], path[max(-7, -len(path))])
        v = np.array([b[1] - a[1], b[0] - a[0]], dtype=float)
        return v / (np.linalg.norm(v) or 1.0)

    while True:
        best = None
        for i, p in enumerate(branches):
            for j, q in enumerate(branches):
                if j <= i or len(p) < 2 or len(q) < 2:
                    continue
                for pe in (0, -1):
                    for qe in (0, -1):
                        if p[pe] != q[qe] or p[pe] not in nodes:
                            continue
                        # going straight through: the two outgoing directions are opposite
                        turn = 180 - np.degrees(np.arccos(np.clip(direction(p, pe == 0) @ direction(q, qe == 0), -1, 1)))
                        if turn < max_turn and (best is None or turn < best[0]):
                            best = (turn, i, j, pe, qe)
        if best is None:
            return branches
        _, i, j, pe, qe = best
        p, q = branches[i], branches[j]
        p = p[::-1] if pe == 0 else p          # p now ends at the junction
        q = q if qe == 0 else q[::-1]          # q now starts there
        branches = [b for k, b in enumerate(branches) if k not in (i, j)] + [p + q[1:]]


@functools.lru_cache(maxsize=None)
def family_mapping(path: str, family: str) -> tuple[float, float] | None:
    """(scale, offset) placing ``family`` in the unit box as the font draws it; None when the font draws
    none of the family (a Latin font asked for ``a`` of a kana set): it has no place to put the character."""
    pts = [s for c in family for s in raw_strokes(c, path)]
    return family_box(np.concatenate(pts)) if pts else None


def glyphs(char: str, family: str, group: str = "handwriting") -> list[list[np.ndarray]]:
    """``char`` from every installed font of ``group`` that has it, placed as its ``family`` is."""
    out = []
    for path in font_files(group):
        strokes = raw_strokes(char, path)
        if strokes and (mapping := family_mapping(path, family)) is not None:
            scale, offset = mapping
            out.append([s * scale + offset for s in strokes])
    return out
