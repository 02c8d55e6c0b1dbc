"""``data.extra_root``: a folder of real drawings added to a data option's set, so a model trained on
synthesis also learns a hand it has a few drawings of (``glyphlab draw --collect DIR`` writes one).

The folder has the ``data=folder`` layout (``DIR/<class>/*.png``) and is read by the same reader
(:func:`glyphlab.data.folder.read_folder`) at the set's image size and normalisation. Its images are
appended after the built (possibly cached) set, so the set's cache key never depends on them. The
result carries a fixed split (``GlyphSet.split``): the built set's own seeded stratified split, and the
drawings split apart by :func:`split_extra` (seeded, per class), their training part appended
``data.extra_repeats`` times so a handful of drawings weigh against hundreds of synthetic ones.

``data.extra_rewrites`` also makes each training drawing a prototype: its ink thinned to centre-line strokes (as a
font's glyphs are, :mod:`glyphlab.data.sources.fonts`) and written more times by the set's own handwriting model, so
the model learns the drawer's *forms* under a hand's variation rather than five fixed images (experiments/few_shot).
``auto`` (the default) writes each class's drawings as many times together as the built set has images of that class
(400 synthetic a class and 5 drawings: 80 each); a count N writes every drawing N times; 0 none.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.errors import DataError

log = logging.getLogger(__name__)


def add_drawings(glyphs: GlyphSet, data_cfg, val_fraction: float, test_fraction: float, seed: int) -> GlyphSet:
    """``glyphs`` (the set ``data_cfg`` built) with ``data_cfg.extra_root``'s drawings and a fixed split;
    ``glyphs`` itself without ``extra_root``. ``split.val``, ``split.test`` and ``seed`` are the run's.

    Classes are matched by name; classes of the folder that ``glyphs`` lacks are dropped with one warning
    naming them; a missing or empty folder, or one with none of the set's classes, is a :class:`DataError`.
    ``meta["extra"]`` holds the folder, ``repeats``, the drawings per split (``counts``) and a digest.
    """
    from glyphlab.data import normalize_box, split
    from glyphlab.data.folder import read_folder, shown

    root, repeats = data_cfg.get("extra_root"), data_cfg.get("extra_repeats", 1)
    rewrites = data_cfg.get("extra_rewrites", "auto")
    if not root:
        return glyphs
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise DataError(f"data.extra_repeats must be an integer of at least 1, got {repeats!r}")
    if rewrites != "auto" and (isinstance(rewrites, bool) or not isinstance(rewrites, int) or rewrites < 0):
        raise DataError(f"data.extra_rewrites must be auto or an integer of at least 0, got {rewrites!r}")
    path = Path(str(root)).expanduser()
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise DataError(f"data.extra_root {shown(path)} {what}; expected a folder of real drawings, "
                        f"<class>/*.png (glyphlab draw --collect writes one)")
    if not any(p.is_file() for p in path.rglob("*")):
        raise DataError(f"data.extra_root {shown(path)} is empty; expected real drawings as <class>/*.png")
    real = read_folder(path, image_size=glyphs.image_size)
    images, labels = _known(real, glyphs.classes, shown(path))
    if data_cfg.get("normalize") == "box":  # as the built set was (glyphlab.data.load)
        images = normalize_box(images)
    fixed = np.empty(len(glyphs), np.int8)   # the built set's own split, kept (as data.split gives it)
    for k, part in enumerate(split(glyphs, val_fraction, test_fraction, seed)):
        fixed[part] = k
    real_train, real_val, real_test = split_extra(labels, val_fraction, test_fraction, seed)
    added = np.concatenate([np.tile(real_train, repeats), real_val, real_test])   # indices into the drawings
    fixed = np.concatenate([fixed, np.repeat(np.int8([0, 1, 2]), [len(real_train) * repeats, len(real_val),
                                                                 len(real_test)])])
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:16]
    counts = {f"data/extra_{name}": len(p) for name, p in zip(("train", "val", "test"), (real_train, real_val, real_test))}
    new_images, new_labels = [glyphs.images, images[added]], [glyphs.labels, labels[added]]
    times = rewrite_counts(rewrites, labels[real_train], glyphs.labels)
    if times.any():  # each training drawing a prototype, written `times` more times (training split only)
        written, written_labels = rewritten(path, real_train, labels, glyphs.classes, times, data_cfg, glyphs.image_size)
        new_images.append(written)
        new_labels.append(written_labels)
        fixed = np.concatenate([fixed, np.zeros(len(written), np.int8)])
        counts["data/extra_rewritten"] = len(written)
    meta = {**glyphs.meta, "extra": {"root": shown(path), "repeats": repeats, "rewrites": rewrites, "counts": counts,
                                     "digest": digest}}
    return GlyphSet(np.concatenate(new_images), np.concatenate(new_labels), glyphs.classes, fixed, meta)


def rewrite_counts(rewrites, train_labels: np.ndarray, built_labels: np.ndarray) -> np.ndarray:
    """How many times each training drawing (``train_labels``: their classes) is written from its strokes:
    ``rewrites`` each, or for ``"auto"`` the built set's images of its class shared among the class's drawings,
    rounded (so the rewrites of a class are as many as its synthetic images, however many drawings it has)."""
    if rewrites != "auto":
        return np.full(len(train_labels), rewrites, np.int64)
    size = int(max(train_labels.max(initial=0), built_labels.max(initial=0))) + 1
    built, drawings = np.bincount(built_labels, minlength=size), np.bincount(train_labels, minlength=size)
    return np.maximum(1, np.rint(built[train_labels] / np.maximum(drawings[train_labels], 1))).astype(np.int64)


STROKE_PX = 96  # side at which a drawing is thinned to its strokes (the fonts' RENDER_PX)


def drawing_strokes(image: np.ndarray) -> list[np.ndarray]:
    """A drawing (uint8 ``[S, S]``, ink bright, as read) as centre-line strokes in the unit box (its frame
    is the box: where and how large it was drawn is kept); [] when it has no ink."""
    from glyphlab.data.sources.fonts import thin, trace

    return [s / image.shape[0] for s in trace(thin(image > 127, min_neighbours=3))]


def rewritten(path: Path, train: np.ndarray, labels: np.ndarray, classes: list[str], times: np.ndarray, data_cfg,
              image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``times[j]`` images of training drawing ``train[j]`` (indices into the folder's drawings of the set's
    classes), written from its strokes by the handwriting model ``data_cfg`` gives its builder, seeded by
    ``data.seed``. Returns uint8 ``[n, S, S]`` (box-normalised when the set is) and their labels."""
    from omegaconf import DictConfig, OmegaConf

    from glyphlab.data import builder_config, normalize_box
    from glyphlab.data.folder import read_folder, shown
    from glyphlab.data.strokes import DEFAULT_STYLE, synthesize

    data = OmegaConf.to_container(data_cfg, resolve=True) if isinstance(data_cfg, DictConfig) else dict(data_cfg)
    style = {k: v for k, v in builder_config(data).items() if k in DEFAULT_STYLE}
    big = read_folder(path, image_size=STROKE_PX)
    images, same = _known(big, classes, shown(path), warn=False)   # the files of the set's own read, in its order
    if not np.array_equal(same, labels):  # a drawing saved or removed while the run read the folder
        raise DataError(f"data.extra_root {shown(path)} changed while it was read ({len(labels)} drawings, then "
                        f"{len(same)}); expected a folder nothing writes to during the run: run it again")
    protos = [(i, n, strokes) for i, n in zip(train, times) if n and (strokes := drawing_strokes(images[i]))]
    written, written_labels = [np.empty((0, image_size, image_size), np.uint8)], [np.empty(0, np.int64)]
    for n in sorted({n for _, n, _ in protos}):
        # each drawing is its own "class" of one prototype (seeded by its name), so it gets exactly `n` images
        group = [(i, s) for i, m, s in protos if m == n]
        out = synthesize([[s] for _, s in group], [f"{classes[labels[i]]}#{i}" for i, _ in group], int(n),
                         image_size, int(data.get("seed") or 0), **style)
        written.append(normalize_box(out.images) if data.get("normalize") == "box" else out.images)
        written_labels.append(np.repeat(np.asarray([labels[i] for i, _ in group], np.int64), n))
    return np.concatenate(written), np.concatenate(written_labels)


def _known(real: GlyphSet, classes: list[str], where: str, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``real`` whose class is among ``classes``, labelled as indices into ``classes`` (``warn``:
    say once which of its classes are not used)."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in real.classes if name not in index]
    if len(unknown) == len(real.classes):
        raise DataError(f"data.extra_root {where} has none of the data option's classes: it has "
                        f"{' '.join(real.classes[:30])}; the data option has {' '.join(classes[:30])}")
    if unknown and warn:
        log.warning("glyphlab: data.extra_root %s: %d class(es) the data option does not have, not used: %s",
                    where, len(unknown), " ".join(unknown))
    keep = np.isin(real.labels, [i for i, name in enumerate(real.classes) if name in index])
    mapping = np.array([index.get(name, -1) for name in real.classes])
    return real.images[keep], mapping[real.labels[keep]]


def split_extra(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int):
    """The seeded split of the real drawings: per class, ``floor(n × split.test)`` to test and
    ``floor(n × split.val)`` to val, the rest to train, in an order drawn from ``seed``. A class with
    fewer drawings than ``1 / fraction`` (7 at the default 0.15) keeps all of them for training:
    a few drawings teach more than they would measure. Returns three sorted int64 index arrays."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test, n_val = int(len(members) * test_fraction), int(len(members) * val_fraction)
        parts[2] += members[:n_test].tolist()
        parts[1] += members[n_test:n_test + n_val].tolist()
        parts[0] += members[n_test + n_val:].tolist()
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def counts(glyphs: GlyphSet) -> dict:
    """How many real (``data.extra_root``) drawings each split has, as run metrics (``data/extra_train``:
    distinct drawings, before ``data.extra_repeats``); {} without extra_root."""
    return dict(glyphs.meta.get("extra", {}).get("counts", {}))
