"""Glyph sets: what every dataset option produces, the shared split, and the on-disk cache.

A dataset option (``conf/data/<name>.yaml``) names a builder with ``_target_``; the
builder is called with the option's other keys and returns a :class:`GlyphSet`.
Keys that describe how the set is *used* rather than what it contains
(:data:`USAGE_KEYS`) are not passed to the builder and do not change the cache key.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glyphlab.data import cache
from glyphlab.errors import DataError, check_split

log = logging.getLogger(__name__)

# Keys of a data config that are not builder arguments.
USAGE_KEYS = ("name", "class_weights", "ignore_unknown", "cache", "normalize", "extra_root", "extra_repeats",
              "extra_rewrites")
NORMALIZE = (None, "box")
CACHE_VERSION = 4  # bump when the cache file's layout changes (the builders' code is in the key anyway)
# Installed packages whose data or drawing goes into a built set: a new version may draw other images.
SOURCE_PACKAGES = ("numpy", "Pillow", "kanjivg", "Hershey-Fonts", "matplotlib-fontja", "fonttools")
# Fonts shipped with glyphlab (sources/bundled/, each with its licence): Klee One's kana and ASCII, a Japanese
# pen/pencil hand, the one handwriting face with kana to be had offline (scripts/subset_fonts.py made it).
# Shipped rather than looked up on the system, so every machine draws the same prototypes.
BUNDLED_FONTS = {"handwriting": ("KleeOne-Regular-kana.ttf",), "print": ()}
BUNDLED_DIR = Path(__file__).parent / "sources" / "bundled"


@dataclass
class GlyphSet:
    """Images of characters with their labels.

    images:  uint8 ``[n_samples, height, width]``, ink bright (255) on a dark (0) ground.
    labels:  int64 ``[n_samples]`` class indices into ``classes``
             (or ``[n_samples, n_positions]`` for sequence data).
    classes: the class names, normally the characters themselves (``"ᚠ"``).
    split:   optional int8 ``[n_samples]`` fixed assignment (0 train, 1 val, 2 test) for
             sets whose builder must keep parts disjoint; ``None`` lets :func:`split` decide.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    split: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise DataError(f"images must be uint8 [N, H, W], got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = np.asarray(self.labels, dtype=np.int64)

    def __len__(self):
        return len(self.images)

    @property
    def image_size(self) -> int:
        return self.images.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """Samples per class, int64 ``[n_classes]`` (single-label sets only)."""
        return np.bincount(self.labels, minlength=self.n_classes)


def builder_config(cfg: dict) -> dict:
    """The part of a data config that determines the set's content (and its cache key). A synthetic
    option's ``handwriting`` (the handwriting group, conf/handwriting/) reaches its builder as keyword
    arguments beside the option's own keys."""
    own = {k: v for k, v in cfg.items() if k not in USAGE_KEYS and k != "handwriting"}
    return {**(cfg.get("handwriting") or {}), **own}


@functools.cache
def code_fingerprint() -> str:
    """A digest of the code that builds the sets (this package's files) and the versions of the packages
    it draws from. Part of every cache key: a set cached before a change to the synthesizer, its stroke
    tables or a font package is rebuilt, not read back under the same config: a study comparing
    handwriting models would otherwise read some seeds' sets from before the change."""
    from importlib import metadata

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted([*here.rglob("*.py"), *here.rglob("*.ttf")]):  # the builders, the stroke sources, bundled fonts
        digest.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes())
    names = list(SOURCE_PACKAGES) + sorted({d.metadata["Name"] for d in metadata.distributions()
                                            if (d.metadata["Name"] or "").lower().startswith("fontpkg-")})
    for name in names:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}={version}\0".encode())
    return digest.hexdigest()[:16]


def cache_key(cfg: dict) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "code": code_fingerprint(), **builder_config(cfg),
                       **_input_identity(cfg)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _input_identity(cfg: dict) -> dict:
    """A builder that reads files beyond the config (data=script: font files) says which, through a
    ``cache_identity(builder config)`` attribute; their identities join the cache key."""
    target = cfg.get("_target_")
    if not isinstance(target, str) or "." not in target:
        return {}
    import importlib

    module, _, name = target.rpartition(".")
    try:
        identity = getattr(getattr(importlib.import_module(module), name), "cache_identity", None)
    except (ImportError, AttributeError):
        return {}  # instantiating it says what is wrong
    return {"inputs": identity(builder_config(cfg))} if identity else {}


def cache_path(cfg: dict, cache_dir: str | os.PathLike) -> Path:
    """The file a set built from ``cfg`` is cached in (whether or not it exists yet)."""
    return Path(cache_dir) / f"{cfg.get('name', 'data')}-{cache_key(cfg)}.npz"


def load(cfg: dict, cache_dir: str | os.PathLike | None = None) -> GlyphSet:
    """Build the glyph set a data config describes, from the cache when it is there.

    ``cfg`` is the plain-dict data config (``_target_`` plus builder keys plus usage keys).
    The cache is written atomically (temp file + rename), so parallel sweep jobs never
    read a half-written file; a sweep over models builds each set once. ``normalize: box`` is
    applied after the cache (a view of the set, see :func:`normalize_box`).
    """
    if cfg.get("normalize") not in NORMALIZE:
        raise DataError(f"normalize must be null or box, got {cfg.get('normalize')!r} (data.normalize or "
                        f"eval_data.normalize, data set {cfg.get('name', '?')})")
    glyphs = _load(cfg, cache_dir)
    if cfg.get("normalize") == "box":
        glyphs.images = normalize_box(glyphs.images)
    return glyphs


def _load(cfg: dict, cache_dir) -> GlyphSet:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    # A set read from the user's files (`root`) is never cached: the key is the config, not the files.
    use_cache = cache_dir is not None and cfg.get("cache", True) and not cfg.get("root")
    if use_cache:
        path = cache_path(cfg, cache_dir)
        cache.remove_stale_temps(path.parent)  # a killed write's temp file would stay forever
        if path.exists():
            try:
                return _read(path)
            except Exception as e:  # a damaged cache file (any flipped bit: cache.read) is rebuilt, never trusted
                reason = type(e).__name__ + (f": {str(e).splitlines()[0]}" if str(e) else "")
                try:
                    path.unlink()
                except OSError as err:
                    raise DataError(f"cache file {path} cannot be read ({reason}) nor removed ({err.strerror}); "
                                    f"remove it, or set cache_dir=<a writable folder> or data.cache=false") from None
                log.warning("rebuilding the damaged cache file %s (%s)", path, reason)
    try:
        glyphs = instantiate(builder_config(cfg), _convert_="all")
    except InstantiationException as e:  # show the builder's own one-line error, not Hydra's wrapper
        if isinstance(e.__cause__, DataError):
            raise e.__cause__ from None
        raise
    if not isinstance(glyphs, GlyphSet):
        raise TypeError(f"{cfg.get('_target_')} returned {type(glyphs).__name__}, expected GlyphSet")
    if use_cache:
        _write(path, glyphs)
    return glyphs


def _write(path: Path, glyphs: GlyphSet) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cache_dir {path.parent} is not writable ({e.strerror}); set cache_dir=<a writable "
                        f"folder> or data.cache=false") from None
    try:
        cache.write(path, {"images": glyphs.images, "labels": glyphs.labels,
                           "classes": np.array(json.dumps(glyphs.classes)),
                           "split": np.array([]) if glyphs.split is None else glyphs.split,
                           "meta": np.array(json.dumps(glyphs.meta, default=str))})
    except cache.FolderNotWritable as e:
        raise DataError(f"cache_dir {path.parent} is not writable ({e.strerror}); set cache_dir=<a writable "
                        f"folder> or data.cache=false") from None
    except OSError as e:  # a full disk, or something else (a folder) where the file goes
        raise DataError(f"cannot write the cache file {path} ({e.strerror}); set cache_dir=<a writable "
                        f"folder> or data.cache=false") from None


def _read(path: Path) -> GlyphSet:
    """The set cached in ``path``, verified (zip CRC and each array's digest, :func:`cache.read`)."""
    z = cache.read(path)
    split = z["split"]
    return GlyphSet(z["images"], z["labels"], json.loads(str(z["classes"])),
                    split if split.size else None, json.loads(str(z["meta"])))


def split(glyphs: GlyphSet, val_fraction: float, test_fraction: float, seed: int):
    """Seeded, stratified train/val/test split, shared by every model family.

    Returns three index arrays (int64). A set with a fixed ``split`` keeps it.
    """
    present = np.unique(glyphs.labels)
    if len(present) < 2:  # a "classifier" of one class scores 1.0 on anything and learns nothing
        names = " ".join(str(glyphs.classes[c]) for c in present) or "none"
        where = f" in {glyphs.meta['root']}" if glyphs.meta.get("root") else ""
        raise DataError(f"a classification set needs at least 2 classes with usable images; found "
                        f"{len(present)}{where}: {names}")
    if glyphs.split is not None:
        return tuple(np.flatnonzero(glyphs.split == k) for k in range(3))
    check_split(val_fraction, test_fraction)
    from sklearn.model_selection import train_test_split

    strata = glyphs.labels if glyphs.labels.ndim == 1 else None
    if strata is not None:
        counts = glyphs.class_counts()
        if counts.min() < 3:
            bad = [glyphs.classes[c] for c in np.flatnonzero(counts < 3)]
            raise DataError(f"every class needs at least 3 samples for a train/val/test split; "
                            f"too few for {len(bad)} class(es): {' '.join(map(str, bad[:20]))}")
    index = np.arange(len(glyphs))
    try:
        rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=strata)
        train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
                                      stratify=None if strata is None else strata[rest])
    except ValueError as e:
        raise DataError(f"cannot split {len(glyphs)} samples of {glyphs.n_classes} classes "
                        f"into val {val_fraction} / test {test_fraction}: {e}") from None
    return np.sort(train), np.sort(val), np.sort(test)


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """'balanced' weights as in the hiragana article: max count / count of the class."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.max() / np.maximum(counts, 1), 0.0).astype(np.float32)


def normalize_box(images: np.ndarray, margin: float = 0.1, threshold: int = 48, size: int | None = None) -> np.ndarray:
    """Each glyph's ink bounding box scaled (aspect kept) to fill the image less ``margin`` per side
    and centred — the size/position normalisation of NIST's and MNIST's digits. Makes sets drawn at
    different sizes and positions comparable (synthetic vs real handwriting); empty images stay.

    images: uint8 ``[N, S, S]``, ink bright; ``threshold``: the grey level that counts as ink;
    ``size``: the side of the images returned (default S).
    """
    from PIL import Image

    size = images.shape[1] if size is None else size
    out = np.zeros((len(images), size, size), images.dtype)
    box = max(1, round(size * (1 - 2 * margin)))
    for i, image in enumerate(images):
        rows, cols = np.flatnonzero((image > threshold).any(1)), np.flatnonzero((image > threshold).any(0))
        if rows.size == 0:
            if size == images.shape[1]:
                out[i] = image
            continue
        crop = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        scale = box / max(crop.shape)
        h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
        resized = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR))
        top, left = (size - h) // 2, (size - w) // 2
        out[i, top:top + h, left:left + w] = resized
        out[i] = ink_at_full_level(out[i], threshold)
    return out


def ink_at_full_level(image: np.ndarray, threshold: int = 48) -> np.ndarray:
    """uint8 ink bright, one glyph box-normalised -> its ink at full level and no thinner than a pen of ~2 px.

    A thin pen shrunk to the model's size is a faint, hair-thin line: a 1 px tablet trace at 64 px is ~0.5 px at
    32, at half the level. The ink's level (INK_PERCENTILE of the pixels above ``threshold``, as paper levelling
    measures it) is set to 255, and a glyph whose strokes are all at most 2 px wide (90 % of its ink within one
    pixel of the paper) is drawn one pixel wider. The training pens are 1.6-2.9 px at 32 px: for them and for
    bolder ink this changes little or nothing (experiments/synth_to_real, renderings.py).
    """
    from scipy import ndimage

    from glyphlab.data.paper import INK_PERCENTILE

    ink = image[image > threshold]
    if ink.size == 0:
        return image
    level = float(np.percentile(ink, INK_PERCENTILE))
    if level < 254.5:
        image = np.clip(np.round(image.astype(np.float32) * (255.0 / level)), 0, 255).astype(np.uint8)
    solid = image > 127
    if solid.any() and np.percentile(ndimage.distance_transform_edt(solid)[solid], 90) <= 1:
        image = ndimage.grey_dilation(image, size=(2, 2))
    return image
