"""``data.extra_root``: a folder of real drawings added to a data option's set, so a model trained on
synthesis also learns a hand it has a few drawings of (``glyphlab draw --collect DIR`` writes one).

The folder has the ``data=folder`` layout (``DIR/<class>/*.png``) and is read by the same reader
(:func:`glyphlab.data.folder.read_folder`) at the set's image size. Its images are appended after the
built (possibly cached) set, so the set's cache key never depends on them. They are split apart from
the built set by :func:`split_extra` (seeded, per class), and their training part is repeated
``data.extra_repeats`` times so a handful of drawings weigh against hundreds of synthetic ones.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from glyphlab.data import DataError, GlyphSet

log = logging.getLogger(__name__)


def add(glyphs: GlyphSet, root, repeats: int = 1) -> GlyphSet:
    """``glyphs`` with the images of the folder ``root`` appended, classes matched by name.

    Classes of ``root`` that ``glyphs`` lacks are dropped with one warning naming them; a missing or
    empty folder, or one with none of the set's classes, is a :class:`DataError`. The result's
    ``meta["extra"]`` says where the appended images start (``start``), the folder, ``repeats`` and a
    digest of the images (for the logged dataset's identity).
    """
    from glyphlab.data.folder import read_folder, shown

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
    index = {name: i for i, name in enumerate(glyphs.classes)}
    unknown = [name for name in real.classes if name not in index]
    if len(unknown) == len(real.classes):
        raise DataError(f"data.extra_root {shown(path)} has none of the data option's classes: it has "
                        f"{' '.join(real.classes[:30])}; the data option has {' '.join(glyphs.classes[:30])}")
    if unknown:
        log.warning("glyphlab: data.extra_root %s: %d class(es) the data option does not have, not used: %s",
                    shown(path), len(unknown), " ".join(unknown))
    keep = np.isin(real.labels, [i for i, name in enumerate(real.classes) if name in index])
    mapping = np.array([index.get(name, -1) for name in real.classes])
    images, labels = real.images[keep], mapping[real.labels[keep]]
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:16]
    split = None if glyphs.split is None else np.concatenate([glyphs.split, np.full(len(images), -1, np.int8)])
    meta = {**glyphs.meta, "extra": {"root": shown(path), "start": len(glyphs), "repeats": repeats,
                                     "digest": digest, "n_unknown_classes": len(unknown)}}
    return GlyphSet(np.concatenate([glyphs.images, images]), np.concatenate([glyphs.labels, labels]),
                    glyphs.classes, split, meta)


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


def counts(glyphs: GlyphSet, train, val, test) -> dict:
    """How many real (``data.extra_root``) images each split has, as run metrics
    (``data/extra_train`` counts distinct drawings, before ``data.extra_repeats``); {} without extra."""
    extra = glyphs.meta.get("extra")
    if not extra:
        return {}
    start = extra["start"]
    return {f"data/extra_{name}": int(len(np.unique(part[part >= start])))
            for name, part in (("train", train), ("val", val), ("test", test))}
