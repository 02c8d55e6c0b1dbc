"""Glyph images from a folder of files: the layouts, the decoding, the bad-file policy.

Two layouts, told apart by what is there::

    root/<class>/*.png               one subfolder per class (class = folder name, files found recursively)
    root/<label>_<anything>.png      flat files (class = the name before the first underscore)

Any format Pillow reads, any mode and any size become one grayscale ``image_size x image_size``
uint8 image, ink bright on dark (:func:`glyphlab.data.reader.load_image`, the one reader).
Files that cannot be used are skipped with a warning that counts and names them, or raise :class:`DataError`
(``on_bad_file``). :func:`load_image` and :func:`decode_images` are shared with the Omniglot loader.
"""
from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from glyphlab.data import GlyphSet
from glyphlab.data.reader import load_image
from glyphlab.errors import DataError, check_image_size

log = logging.getLogger(__name__)

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 1024
PROGRESS_MIN_FILES = 2_000  # a progress bar only when the wait is noticeable
BAD_FILE_POLICIES = ("skip", "error")

Image.init()  # registers every format plugin, so the extension table below is complete
# Extensions of the formats Pillow can open, minus those that are rarely glyph images and that
# Pillow can only identify (video, scientific data) or needs external tools for (vector formats).
IMAGE_EXTENSIONS = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN) - {
    ".mpeg", ".mpg", ".h5", ".hdf", ".bufr", ".grib", ".ps", ".eps", ".emf", ".wmf"}
_COMMON_EXTENSIONS = ".png .jpg .jpeg .bmp .gif .tif .tiff .webp"


def build(*, root: str | None, image_size: int = 32, on_bad_file: str = "skip",
          class_order: list[str] | str | None = None) -> GlyphSet:
    """Builder for ``conf/data/folder.yaml``; see :func:`read_folder`."""
    if root is None:
        raise DataError("data.root is required: a folder with one subfolder per class or files named "
                        "<label>_<anything>.png, e.g. data.root=~/my_glyphs (eval_data.root=... for eval_data)")
    glyphs = read_folder(root, image_size=image_size, on_bad_file=on_bad_file, class_order=class_order)
    # A name the user put in class_order is a class they expect: one with no images (a typo, a missing
    # folder) would shift every later class's index without a word, so it is an error here (read_folder
    # itself, called with a script's whole alphabet for a folder of some of it, keeps ignoring them).
    missing = [n for n in dict.fromkeys(as_names(class_order) or []) if n not in glyphs.classes]
    if missing:
        raise DataError(f"data.class_order names {len(missing)} class(es) with no images in {shown(root)}: "
                        f"{' '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}; expected names of its "
                        f"classes, found {' '.join(glyphs.classes[:20])}{' ...' if len(glyphs.classes) > 20 else ''}")
    return glyphs


def read_folder(root: str | os.PathLike, *, image_size: int, on_bad_file: str = "skip",
                class_order: list[str] | str | None = None) -> GlyphSet:
    """Read every image under ``root`` into a :class:`GlyphSet`.

    Returns images uint8 ``[n_samples, image_size, image_size]`` (ink 255 on 0), labels int64
    ``[n_samples]`` and classes ordered by ``class_order`` (its names first, in its order, the
    others after, sorted) or sorted. ``class_order`` is a list of names or a string of
    characters (whitespace-separated names when it has spaces). ``meta`` holds ``root``,
    ``layout`` ("folder" or "flat"), ``skipped_files`` (paths relative to root) and
    ``inverted`` (how many images had ink darker than their paper and got turned around).
    """
    check_options(image_size, on_bad_file)
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data.root {shown(root)} does not exist; expected a folder of images")
    if not root.is_dir():
        raise DataError(f"data.root {shown(root)} is a file; expected a folder of images")

    files_by_class, unlabelled, layout = _scan(root)
    if not files_by_class and not unlabelled:
        raise DataError(f"no images found in {shown(root)}: looked for one subfolder per class (<class>/*.png) "
                        f"and flat files named <label>_<anything>.png ({_COMMON_EXTENSIONS} ...)")

    items = [(f, shown(f.relative_to(root).as_posix())) for files in files_by_class.values() for f in files]
    reasons = {shown(root_file.relative_to(root).as_posix()): "not in a class folder" if layout == "folder"
               else "no '<label>_' prefix in the file name" for root_file in unlabelled}
    images, skipped = decode_images(items, image_size=image_size, on_bad_file=on_bad_file,
                                    where=shown(root), unusable=reasons)

    if not files_by_class:
        raise DataError(f"no labelled images in {shown(root)}: flat files must be named <label>_<anything>.png")
    classes = order_classes(list(files_by_class), class_order)
    per_class, start = {}, 0  # images[] follows files_by_class order
    for name, files in files_by_class.items():
        per_class[name] = [img for img in images[start:start + len(files)] if img is not None]
        start += len(files)
    empty = [name for name in classes if not per_class[name]]
    if empty:
        raise DataError(f"class(es) with no usable images in {shown(root)}: {' '.join(empty[:20])} "
                        f"(every file failed to decode; see the warning above)")

    arrays = [img for name in classes for img, _ in per_class[name]]
    labels = np.repeat(np.arange(len(classes)), [len(per_class[name]) for name in classes])
    return GlyphSet(np.stack(arrays), labels, classes, meta={
        "root": shown(root), "layout": layout, "skipped_files": [name for name, _ in skipped],
        "inverted": int(sum(inv for name in classes for _, inv in per_class[name]))})


def decode_images(items: list, *, image_size: int, on_bad_file: str, where: str,
                  unusable: dict[str, str] | None = None):
    """Decode ``items`` (``(source, name)`` pairs; a source is a path or a callable returning one).

    Returns ``(images, skipped)``: ``images[i]`` is ``(uint8 [image_size, image_size], inverted)``
    or ``None`` when item i failed; ``skipped`` lists ``(name, reason)`` for the failed items
    plus ``unusable`` (names already known to be unusable, with their reason). With
    ``on_bad_file="error"`` any skip raises :class:`DataError`; with "skip" it is logged as a warning.
    """
    images, skipped, blank = [], list((unusable or {}).items()), []
    shown_items = items
    if len(items) > PROGRESS_MIN_FILES:
        from tqdm.auto import tqdm
        shown_items = tqdm(items, desc=f"reading {where}", unit="img", leave=False)
    for source, name in shown_items:
        try:
            images.append(load_image(source() if callable(source) else source, image_size))
        except Exception as e:  # Pillow raises many kinds on corrupt input; every one means "bad file"
            images.append(None)
            skipped.append((shown(name), shown(str(e).splitlines()[0]) if str(e) else type(e).__name__))
            continue
        if not images[-1][0].any():
            blank.append(shown(name))
    if blank:  # kept (a class may be "nothing written"), but a blank page read as a drawing is usually a mistake
        log.warning("%d image(s) in %s have no ink (blank, or ink too faint to tell from the paper), kept: %s%s",
                    len(blank), shown(where), "; ".join(blank[:5]), f"; and {len(blank) - 5} more" if len(blank) > 5 else "")
    if skipped:
        named = "; ".join(f"{shown(name)} ({reason})" for name, reason in skipped[:5])
        more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        if on_bad_file == "error":
            raise DataError(f"{len(skipped)} unusable image file(s) in {shown(where)}: {named}{more} "
                            f"(on_bad_file=skip skips them)")
        log.warning("skipped %d unusable image file(s) in %s: %s%s", len(skipped), shown(where), named, more)
    return images, skipped


def check_options(image_size, on_bad_file: str) -> None:
    check_image_size(image_size, "image_size", (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE), DataError)
    if on_bad_file not in BAD_FILE_POLICIES:
        raise DataError(f"on_bad_file must be one of {', '.join(BAD_FILE_POLICIES)}, got {on_bad_file!r}")


def as_names(value: list[str] | str | None) -> list[str] | None:
    """Class names from config: a list, or a string of characters ("abc"), or of
    whitespace-separated names ("ka ki ku"). Names are NFC-normalised."""
    if value is None:
        return None
    if not isinstance(value, (str, list, tuple)):  # Hydra reads class_names=789 as an int
        value = str(value)
    names = (value.split() if any(c.isspace() for c in value) else list(value)) if isinstance(value, str) \
        else [str(v) for v in value]
    return [unicodedata.normalize("NFC", n) for n in names]


def order_classes(found: list[str], class_order: list[str] | str | None) -> list[str]:
    """Names in ``class_order`` first (in its order, when found), the others after, sorted."""
    first = [n for n in dict.fromkeys(as_names(class_order) or []) if n in found]
    return first + sorted(set(found) - set(first))


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def shown(name: str | os.PathLike) -> str:
    """A file name as text that can always be printed, logged, tagged and written to CSV.

    A name that is not valid UTF-8 reaches Python with its bad bytes as lone surrogates, which
    no UTF-8 stream, SQLite text or plot accepts; they are shown as ``\\xe9`` escapes instead.
    """
    text = os.fspath(name)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def class_name(name: str) -> str:
    # macOS stores file names decomposed (NFD); class names are compared as NFC
    return unicodedata.normalize("NFC", shown(name))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _entries(folder: Path, root: Path, links: list[str]) -> list[Path]:
    """The visible entries of ``folder``, minus symbolic links that lead back into ``root`` or to a
    folder above it (``ln -s .. root/loop``): their images would be counted twice, or the walk
    would never end. Those are named in ``links``; links that lead elsewhere are followed."""
    real_root = root.resolve()
    kept = []
    try:
        children = sorted(folder.iterdir())
    except OSError as e:
        log.warning("skipped folder %s: %s", shown(folder), e.strerror)
        return []
    for p in children:
        if p.name.startswith("."):
            continue
        if p.is_symlink():
            try:
                target = p.resolve()
            except (OSError, RuntimeError):  # a ring of links: Python 3.11 raises RuntimeError
                target = real_root
            if _inside(target, real_root) or _inside(real_root, target):
                links.append(f"{shown(p.relative_to(root).as_posix())} -> {shown(os.readlink(p))}")
                continue
        kept.append(p)
    return kept


def _files_below(folder: Path, root: Path, links: list[str]) -> list[Path]:
    """Every file in ``folder`` and the folders below it, each real folder visited once."""
    files, todo, seen = [], [folder], set()
    while todo:
        current = todo.pop()
        real = current.resolve()
        if real in seen:  # two links from outside the tree to one folder, or a loop out there
            continue
        seen.add(real)
        for p in _entries(current, root, links):
            if p.is_dir():
                todo.append(p)
            elif p.is_file():
                files.append(p)
    return files


def _scan(root: Path) -> tuple[dict[str, list[Path]], list[Path], str]:
    """Find the layout. Returns ``(files by class name, root-level files without a usable label,
    layout)``. Hidden files/folders and files without an image extension are ignored."""
    links: list[str] = []
    top = _entries(root, root, links)
    by_class: dict[str, list[Path]] = {}
    for folder in (p for p in top if p.is_dir()):
        files = sorted(f for f in _files_below(folder, root, links) if _is_image(f))
        if files:  # a folder without image files (e.g. __MACOSX holding ._ files) is not a class
            by_class.setdefault(class_name(folder.name), []).extend(files)
    if links:
        log.warning("skipped %d symbolic link(s) in %s that lead back into it or to a folder above it "
                    "(their images would be counted twice, or the walk would loop): %s",
                    len(links), shown(root), "; ".join(links[:5]) + (" ..." if len(links) > 5 else ""))
    loose = [p for p in top if p.is_file() and _is_image(p)]
    if by_class:
        return by_class, loose, "folder"
    unlabelled = []
    for f in loose:
        label, sep, _ = f.stem.partition("_")
        if sep and label:
            by_class.setdefault(class_name(label), []).append(f)
        else:
            unlabelled.append(f)
    return by_class, unlabelled, "flat"
