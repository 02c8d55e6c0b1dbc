"""Digit sequences: numbers of 1 to ``max_digits`` handwritten digits, one label per position.

Each number's digit images are put side by side and resized to ``image_size`` × ``image_size``.
``layout: slots`` (the default) pads the strip with empty digit cells to ``max_digits`` first, so
every digit has the same width and place whatever the length; ``layout: stretch`` resizes the
``[S, n·S]`` strip of the n digits alone, so a long number has narrower digits than a short one
and each position head must first find where its digit is (the harder task). Labels have ``max_digits``
positions read left to right; positions past the number's end hold the blank class :data:`BLANK`.

The digits come from a base digit set (``source``): scikit-learn's real digits, the
KanjiVG-stroke digits, or MNIST. The base set is split into train/val/test *before* any
number is made, and each part's numbers are stitched only from that part's digits, so no
digit image is seen both in training and in the test (the sequences' split is fixed in
``GlyphSet.split``).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from glyphlab.data import GlyphSet
from glyphlab.errors import DataError, check_image_size

# The blank class: a visible ASCII character that reads as an empty slot, so a prediction
# prints as "42___", and CSV headers, metric keys and figure labels stay plain ASCII (a space
# would vanish in all three; a word like "blank" would break "class names are characters").
BLANK = "_"
DIGIT_CLASSES = [str(d) for d in range(10)]
CLASSES = DIGIT_CLASSES + [BLANK]
BASE_SOURCES = ("digits", "digits_synth", "mnist")
LAYOUTS = ("stretch", "slots")
PARTS = ("train", "val", "test")


def build(*, image_size: int = 64, max_digits: int = 5, min_digits: int = 1, length_weights=None,
          n_train: int = 40000, n_val: int = 2000, n_test: int = 2000, layout: str = "slots",
          source: str = "digits",
          source_image_size: int = 28, source_options: dict | None = None, val_fraction: float = 0.15,
          test_fraction: float = 0.15, seed: int = 0) -> GlyphSet:
    """Numbers of ``min_digits``..``max_digits`` digits stitched from the ``source`` digit set.

    length_weights: null (every length equally likely) or one relative weight per length
                    ``min_digits``..``max_digits``.
    layout:         ``stretch`` (the n digits fill the width) or ``slots`` (``max_digits`` cells
                    of equal width, the unused ones empty).
    source_options: extra keyword arguments for the source's builder (e.g. ``root`` for mnist).
    val_fraction, test_fraction: how the *base digits* are split (a source with its own
                    fixed split, like MNIST's official test part, keeps it).
    Returns images uint8 ``[n_train + n_val + n_test, image_size, image_size]``, labels int64
    ``[N, max_digits]`` over :data:`CLASSES` (``"0"``..``"9"``, ``"_"``), and a fixed split
    (0 train, 1 val, 2 test) in that order.
    """
    check_sequence_options(image_size=image_size, max_digits=max_digits, min_digits=min_digits,
                  length_weights=length_weights, counts=(n_train, n_val, n_test), layout=layout,
                  source=source)
    base = load_source(source, source_image_size, seed, source_options or {})
    parts = base_split(base, val_fraction, test_fraction, seed)
    glyphs, _ = make_sequences(base, parts, (n_train, n_val, n_test), image_size=image_size,
                               max_digits=max_digits, min_digits=min_digits, length_weights=length_weights,
                               layout=layout, seed=seed)
    glyphs.meta.update(source=source, base_digits={p: len(ix) for p, ix in zip(PARTS, parts)})
    return glyphs


def check_sequence_options(*, image_size, max_digits, min_digits, length_weights, counts, layout, source) -> None:
    check_image_size(image_size, error=DataError)
    if not (isinstance(max_digits, int) and isinstance(min_digits, int) and 1 <= min_digits <= max_digits):
        raise DataError(f"expected integers 1 <= data.min_digits <= data.max_digits, "
                        f"got min_digits={min_digits!r} max_digits={max_digits!r}")
    if length_weights is not None:
        weights = np.asarray(length_weights, dtype=float)
        n_lengths = max_digits - min_digits + 1
        if weights.shape != (n_lengths,) or (weights < 0).any() or weights.sum() <= 0:
            raise DataError(f"data.length_weights must be null or {n_lengths} non-negative weights (lengths "
                            f"{min_digits}..{max_digits}) with a positive sum, got {list(length_weights)}")
    for name, n in zip(("n_train", "n_val", "n_test"), counts):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DataError(f"data.{name} must be a positive integer (number of sequences), got {n!r}")
    if layout not in LAYOUTS:
        raise DataError(f"data.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if source not in BASE_SOURCES:
        raise DataError(f"data.source must be one of {', '.join(BASE_SOURCES)}, got {source!r}")


def load_source(source: str, image_size: int, seed: int, options: dict) -> GlyphSet:
    """The base digit set, images uint8 ``[n, image_size, image_size]``, classes ``"0"``..``"9"``."""
    # Imported here: each source pulls in its own dependencies (KanjiVG data, IDX files).
    if source == "digits":
        from glyphlab.data.digits import build as builder
    elif source == "digits_synth":
        from glyphlab.data.alphabets import build_digits as builder
    else:
        from glyphlab.data.idx import mnist as builder
    kwargs = {"image_size": image_size, **options}
    if source != "digits":  # sklearn's digits are a fixed set; the others draw or pick with a seed
        kwargs.setdefault("seed", seed)
    try:
        base = builder(**kwargs)
    except TypeError as e:  # an unknown key in data.source_options
        raise DataError(f"data.source_options: source {source!r} cannot take {sorted(options)}: {e}") from None
    except DataError as e:  # the source's own keys are data.source_options.<key> here
        raise DataError(f"source {source!r}: {str(e).replace('data.', 'data.source_options.')}") from None
    if list(base.classes) != DIGIT_CLASSES or base.labels.ndim != 1:
        raise DataError(f"source {source!r} must give single digits with classes 0..9, "
                        f"got classes {' '.join(base.classes[:20])}")
    return base


def base_split(base: GlyphSet, val_fraction: float, test_fraction: float, seed: int):
    """Disjoint index arrays (train, val, test) into ``base``: its own fixed split when it has one."""
    from glyphlab.data import split

    parts = split(base, val_fraction, test_fraction, seed)
    for name, index in zip(PARTS, parts):
        if len(index) == 0:
            raise DataError(f"the {name} part of the {len(base)} base digits is empty; "
                            f"raise split.{name} or use a larger source")
    return parts


def make_sequences(base: GlyphSet, parts, counts, *, image_size: int, max_digits: int, min_digits: int = 1,
                   length_weights=None, layout: str = "slots", seed: int = 0) -> tuple[GlyphSet, np.ndarray]:
    """Stitch ``counts[k]`` numbers from the base digits ``parts[k]`` (k = train, val, test).

    Returns the sequence set (fixed split 0/1/2 in that order) and ``used``, int64
    ``[N, max_digits]``: the base index of the digit at each position, -1 for blanks.
    """
    rng = np.random.default_rng(seed)
    lengths = np.arange(min_digits, max_digits + 1)
    p = None if length_weights is None else np.asarray(length_weights, float) / np.sum(length_weights)
    cells = max_digits if layout == "slots" else None
    images, used, split = [], [], []
    for k, (index, n) in enumerate(zip(parts, counts)):
        n_digits = rng.choice(lengths, size=n, p=p)                                      # [n]
        picks = np.where(np.arange(max_digits) < n_digits[:, None],
                         rng.choice(np.asarray(index), size=(n, max_digits)), -1)        # [n, max_digits]
        images += [stitch(base.images[row[row >= 0]], image_size, cells) for row in picks]
        used.append(picks)
        split.append(np.full(n, k, np.int8))
    used = np.concatenate(used)
    labels = np.where(used >= 0, base.labels[np.maximum(used, 0)], len(DIGIT_CLASSES))  # blank = class 10
    glyphs = GlyphSet(np.stack(images), labels, list(CLASSES), np.concatenate(split),
                      meta={"blank": BLANK, "max_digits": max_digits, "layout": layout})
    return glyphs, used


def stitch(digits: np.ndarray, image_size: int, cells: int | None = None) -> np.ndarray:
    """uint8 digits ``[n, S, S]`` side by side → uint8 ``[image_size, image_size]``.

    The ``[S, n·S]`` strip (``[S, cells·S]`` with empty cells on the right when ``cells`` is
    given) is squeezed to a square, bilinear with Pillow's antialiasing, so the pixels a narrow
    digit loses are averaged, not dropped.
    """
    n, size = len(digits), digits.shape[1]
    strip = np.zeros((size, (cells or n) * size), np.uint8)  # [S, n·S]
    strip[:, :n * size] = np.concatenate(list(digits), axis=1)
    return np.asarray(Image.fromarray(strip).resize((image_size, image_size), Image.Resampling.BILINEAR))
