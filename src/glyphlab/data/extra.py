"""``data.extra_root``: a folder of real drawings added to a data option's set, so a model trained on
synthesis also learns a hand it has a few drawings of (``glyphlab draw --collect DIR`` writes one).

The folder has the ``data=folder`` layout (``DIR/<class>/*.png``) and is read by the same reader
(:func:`glyphlab.data.folder.read_folder`) at the set's image size and normalisation. Its images are
appended after the built (possibly cached) set, so the set's cache key never depends on them. The
result carries a fixed split (``GlyphSet.split``): the built set's own seeded stratified split, and the
drawings split apart by :func:`split_extra` (seeded, per class), their training part appended
``data.extra_repeats`` times so a handful of drawings weigh against hundreds of synthetic ones.
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
    if not root:
        return glyphs
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise DataError(f"data.extra_repeats must be an integer of at least 1, got {repeats!r}")
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
    meta = {**glyphs.meta, "extra": {"root": shown(path), "repeats": repeats, "counts": counts, "digest": digest}}
    return GlyphSet(np.concatenate([glyphs.images, images[added]]), np.concatenate([glyphs.labels, labels[added]]),
                    glyphs.classes, fixed, meta)


def _known(real: GlyphSet, classes: list[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``real`` whose class is among ``classes``, labelled as indices into ``classes``."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in real.classes if name not in index]
    if len(unknown) == len(real.classes):
        raise DataError(f"data.extra_root {where} has none of the data option's classes: it has "
                        f"{' '.join(real.classes[:30])}; the data option has {' '.join(classes[:30])}")
    if unknown:
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
