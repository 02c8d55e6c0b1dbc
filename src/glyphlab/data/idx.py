"""The MNIST family from IDX files: MNIST, EMNIST, Kuzushiji-MNIST (KMNIST) and Fashion-MNIST.

Owns the IDX reader, the official file names and checksums, the optional download
(pooch, into ``$GLYPHLAB_CACHE/<dataset>`` or ``~/.cache/glyphlab/<dataset>``) and one
builder per data set. Every builder keeps the official test set (that is what papers
report) and carves a stratified, seeded validation part out of the official training
set, so the returned :class:`GlyphSet` carries a fixed ``split`` (0 train, 1 val, 2 test).
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.errors import DataError, check_image_size

# IDX type byte -> numpy dtype; IDX data is big-endian.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Where download=true fetches from; `mirror=` in the data config replaces the entry.
# MNIST: the original host (yann.lecun.com/exdb/mnist/) often refuses downloads; the ossci
# mirror used by torchvision serves byte-identical files (same MD5s).
BASE_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "kmnist": "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    "emnist": "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/",
}

# Checksums of the downloaded files, in pooch's "<algorithm>:<hex>" form.
# Source: torchvision/datasets/mnist.py (MNIST, FashionMNIST, KMNIST, EMNIST classes).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": "md5:bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "md5:e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "md5:5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "md5:7320c461ea6c1c855c0b718fb2a4b134",
    },
    # NIST ships all six EMNIST splits in one zip (~560 MB) whose members are gzip/emnist-*.gz.
    "emnist": {"gzip.zip": "md5:58c8d27c78d21e728a6bc7b3cc06412e"},
}

_DIGITS = [str(d) for d in range(10)]
_UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
_LOWER = [chr(c) for c in range(ord("a"), ord("z") + 1)]
_EMNIST_MERGED_LOWER = list("abdefghnqrt")  # lowercase letters kept apart from their capitals

# Class names in label order (the order of emnist-<split>-mapping.txt in the NIST zip).
EMNIST_CLASSES = {
    "byclass": _DIGITS + _UPPER + _LOWER,
    "bymerge": _DIGITS + _UPPER + _EMNIST_MERGED_LOWER,
    "balanced": _DIGITS + _UPPER + _EMNIST_MERGED_LOWER,
    "letters": _UPPER,  # labels 1..26, upper and lower case merged; see EMNIST_LABEL_OFFSET
    "digits": _DIGITS,
    "mnist": _DIGITS,
}
EMNIST_LABEL_OFFSET = {"letters": 1}  # 'letters' numbers its classes from 1

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
KMNIST_CLASSES = list("おきすつなはまやれを")  # kmnist_classmap.csv, codepoints U+304A ... U+3092


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not, told apart by content, not by name).

    Returns the array with the shape and dtype the header declares, native byte order,
    e.g. uint8 ``[n, 28, 28]`` for an idx3-ubyte image file, uint8 ``[n]`` for labels.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError) as e:  # BadGzipFile is an OSError; a cut-off gzip is an EOFError
        raise DataError(f"{path}: cannot read IDX file: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: expected IDX magic 00 00 <type> <ndim>, found {data[:4].hex(' ') or 'an empty file'}")
    if data[2] not in IDX_DTYPES:
        known = ", ".join(f"{k:#04x}" for k in IDX_DTYPES)
        raise DataError(f"{path}: expected IDX type code one of {known}, found {data[2]:#04x}")
    ndim, header = data[3], 4 + 4 * data[3]
    if len(data) < header:
        raise DataError(f"{path}: header declares {ndim} dimensions ({header} bytes), file has {len(data)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path}: header dims {shape} need {expected} data bytes, found {len(data) - header}")
    array = np.frombuffer(data, dtype, count=int(np.prod(shape, dtype=np.int64)), offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-order copy


def cache_root(dataset: str) -> Path:
    """Default directory of a data set's raw files: ``$GLYPHLAB_CACHE/<dataset>`` or ``~/.cache/glyphlab/<dataset>``."""
    return Path(os.environ.get("GLYPHLAB_CACHE") or "~/.cache/glyphlab").expanduser() / dataset


def mnist(*, image_size: int = 28, root: str | None = None, download: bool = False, subset: int | None = None,
          val_fraction: float = 0.1, seed: int = 0, mirror: str | None = None) -> GlyphSet:
    """MNIST handwritten digits, classes ``"0"`` .. ``"9"`` (60 000 train + 10 000 test)."""
    return _build("mnist", _mnist_files(), _DIGITS, image_size=image_size, root=root, download=download,
                  subset=subset, val_fraction=val_fraction, seed=seed, mirror=mirror)


def fashion_mnist(*, image_size: int = 28, root: str | None = None, download: bool = False,
                  subset: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                  mirror: str | None = None) -> GlyphSet:
    """Fashion-MNIST clothing pictures, classes ``"T-shirt/top"`` .. ``"Ankle boot"`` (60 000 + 10 000)."""
    return _build("fashion_mnist", _mnist_files(), FASHION_MNIST_CLASSES, image_size=image_size, root=root,
                  download=download, subset=subset, val_fraction=val_fraction, seed=seed, mirror=mirror)


def kmnist(*, image_size: int = 28, root: str | None = None, download: bool = False, subset: int | None = None,
           val_fraction: float = 0.1, seed: int = 0, mirror: str | None = None) -> GlyphSet:
    """Kuzushiji-MNIST: cursive hiragana お き す つ な は ま や れ を (60 000 + 10 000)."""
    return _build("kmnist", _mnist_files(), KMNIST_CLASSES, image_size=image_size, root=root, download=download,
                  subset=subset, val_fraction=val_fraction, seed=seed, mirror=mirror)


def emnist(*, split: str = "balanced", image_size: int = 28, root: str | None = None, download: bool = False,
           subset: int | None = None, val_fraction: float = 0.1, seed: int = 0,
           mirror: str | None = None) -> GlyphSet:
    """EMNIST handwritten characters; ``split`` picks the class set.

    balanced (47 classes, 131 600 images), bymerge (47, 814 255), byclass (62, 814 255),
    letters (26 classes "A".."Z", case merged, 145 600), digits (10, 280 000), mnist (10, 70 000).
    The NIST files store each image transposed; it is turned upright here.
    """
    if split not in EMNIST_CLASSES:
        raise DataError(f"data.split must be one of {', '.join(EMNIST_CLASSES)}, got {split!r}")
    files = {part: (f"emnist-{split}-{part}-images-idx3-ubyte.gz", f"emnist-{split}-{part}-labels-idx1-ubyte.gz")
             for part in ("train", "test")}
    return _build("emnist", files, EMNIST_CLASSES[split], image_size=image_size, root=root, download=download,
                  subset=subset, val_fraction=val_fraction, seed=seed, mirror=mirror,
                  label_offset=EMNIST_LABEL_OFFSET.get(split, 0), transpose=True, meta={"split": split})


def _mnist_files() -> dict[str, tuple[str, str]]:
    """Official (images, labels) file names per part; MNIST, Fashion-MNIST and KMNIST share them."""
    return {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def _build(dataset: str, files: dict[str, tuple[str, str]], classes: list[str], *, image_size: int,
           root: str | None, download: bool, subset: int | None, val_fraction: float, seed: int,
           mirror: str | None, label_offset: int = 0, transpose: bool = False, meta: dict | None = None) -> GlyphSet:
    """Read the official train and test parts, trim, carve val from train, resize.

    ``subset=n`` keeps at most ``n`` training images per class (seeded pick) and shrinks the
    test part in the same proportion (test/train size of the full set), for quick runs.
    """
    if subset is not None and subset < 2:
        raise DataError(f"data.subset must be null or at least 2 (images per class), got {subset}")
    if not 0 < val_fraction < 1:
        raise DataError(f"data.val_fraction must be a fraction between 0 and 1, got {val_fraction}")
    root = Path(root).expanduser() if root else cache_root(dataset)
    names = [name for pair in files.values() for name in pair]
    paths = _find(root, names)
    if None in paths.values() and download:
        _download(dataset, root, names, mirror)
        paths = _find(root, names)
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        source = BASE_URLS[dataset] + ("gzip.zip" if dataset == "emnist" else "")
        raise DataError(f"{dataset}: missing {', '.join(missing)} in {root}; put the official IDX files "
                        f"(from {source}) there, point data.root at them, or run with data.download=true")

    rng = np.random.default_rng(seed)
    parts = {}
    for part, (image_file, label_file) in files.items():
        images, labels = _read_pair(paths[image_file], paths[label_file], len(classes), label_offset)
        parts[part] = images, labels
    n_train, n_test = len(parts["train"][1]), len(parts["test"][1])
    if subset is not None:
        caps = {"train": subset, "test": max(1, round(subset * n_test / n_train))}
        for part, (images, labels) in parts.items():
            keep = _per_class_pick(labels, caps[part], rng)
            parts[part] = images[keep], labels[keep]

    images = np.concatenate([parts["train"][0], parts["test"][0]])  # uint8 [n_train + n_test, 28, 28]
    labels = np.concatenate([parts["train"][1], parts["test"][1]])
    split = np.concatenate([np.zeros(len(parts["train"][1]), np.int8), np.full(len(parts["test"][1]), 2, np.int8)])
    split[_carve_val(parts["train"][1], val_fraction, seed, classes)] = 1
    if transpose:
        images = images.transpose(0, 2, 1)
    images = _resize(np.ascontiguousarray(images), image_size)
    meta = {"source": dataset, "root": str(root), **(meta or {})}
    return GlyphSet(images, labels, list(classes), split, meta)


def _find(root: Path, names: list[str]) -> dict[str, Path | None]:
    """Locate each official file in ``root`` (or its ``gzip/`` folder, the NIST zip's layout), gzipped or not."""
    found = {}
    for name in names:
        candidates = [folder / variant for folder in (root, root / "gzip")
                      for variant in (name, name.removesuffix(".gz"))]
        found[name] = next((p for p in candidates if p.is_file()), None)
    return found


def _download(dataset: str, root: Path, names: list[str], mirror: str | None) -> None:
    """Fetch the official files into ``root`` with pooch, checking each against :data:`CHECKSUMS`."""
    import pooch

    base = (mirror or BASE_URLS[dataset]).rstrip("/") + "/"
    if dataset == "emnist":
        # One zip holds every split; pooch unpacks just this split's members into root/gzip/.
        jobs = [("gzip.zip", pooch.Unzip(members=[f"gzip/{n}" for n in names], extract_dir="."))]
    else:
        jobs = [(name, None) for name in names]
    for fname, processor in jobs:
        url = base + fname
        try:
            pooch.retrieve(url, CHECKSUMS[dataset][fname], fname=fname, path=root,
                           processor=processor, progressbar=True)
        except (OSError, ValueError) as e:  # requests' errors are OSErrors; a checksum mismatch is a ValueError
            raise DataError(f"{dataset}: download of {url} failed: {' '.join(str(e).split())}") from None


def _read_pair(image_path: Path, label_path: Path, n_classes: int, label_offset: int):
    """One official part: uint8 ``[n, 28, 28]`` images and int64 ``[n]`` labels starting at 0."""
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{image_path}: expected uint8 images [N, H, W], found {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{label_path}: expected {len(images)} labels (one per image in {image_path.name}), "
                        f"found shape {labels.shape}")
    labels = labels.astype(np.int64) - label_offset
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{label_path}: expected labels {label_offset}..{n_classes - 1 + label_offset}, "
                        f"found {labels.min() + label_offset}..{labels.max() + label_offset}")
    return images, labels


def _per_class_pick(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``cap`` randomly chosen samples per class."""
    picks = [rng.permutation(np.flatnonzero(labels == c))[:cap] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def _carve_val(train_labels: np.ndarray, val_fraction: float, seed: int, classes: list[str]) -> np.ndarray:
    """Indices (into the train part) of a stratified, seeded validation part."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(train_labels, minlength=len(classes))
    if counts.min() < 2:
        bad = [classes[c] for c in np.flatnonzero(counts < 2)]
        raise DataError(f"every class needs at least 2 training images to carve a validation part; "
                        f"too few for: {' '.join(bad[:20])}")
    try:
        _, val = train_test_split(np.arange(len(train_labels)), test_size=val_fraction, random_state=seed,
                                  stratify=train_labels)
    except ValueError as e:
        raise DataError(f"cannot carve val_fraction={val_fraction} out of {len(train_labels)} training images "
                        f"of {len(classes)} classes: {e}") from None
    return val


def _resize(images: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 ``[n, h, w]`` -> uint8 ``[n, image_size, image_size]`` (Pillow bilinear, antialiased when shrinking)."""
    if images.shape[1:] == (image_size, image_size):
        return images
    check_image_size(image_size, error=DataError)
    from PIL import Image

    out = np.empty((len(images), image_size, image_size), np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR))
    return out
