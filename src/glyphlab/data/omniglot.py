"""Omniglot (Lake et al.): 1,623 characters of 50 alphabets, each drawn once by 20 people.

Owns finding Omniglot's sets under ``root`` and reading them, unpacked or straight from
the official zips (in memory, never extracted)::

    root/images_background/<Alphabet>/character01/0683_01.png     unpacked (105x105, black on white)
    root/images_background.zip, images_evaluation.zip, images_background_small1.zip ...
    root = one of those zip files

File names are ``<character id>_<drawer>.png``; the drawer numbers go to ``meta["drawers"]``.
Pixels go through :func:`glyphlab.data.folder.load_image` like any folder image.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from glyphlab.data import GlyphSet
from glyphlab.data.folder import as_names, check_options, decode_images
from glyphlab.errors import DataError

SETS = {"images_background": True, "images_evaluation": False}  # set name prefix -> is background
# A zip entry larger than this is not an Omniglot PNG (those are ~1 KB): refused unread, as a bomb.
MAX_ENTRY_BYTES = 16 * 2**20
# class_names="letters": the letters of the alphabets glyphlab has synthetic sets for, in character01.. order
# (checked by eye against the drawings), so a model trained on data=latin or data=greek reads them by name.
# Katakana: the gojūon without ケ, as in Omniglot's small2 set (checked by eye against the drawings).
LETTERS = {"Latin": "abcdefghijklmnopqrstuvwxyz", "Greek": "αβγδεζηθικλμνξοπρστυφχψω",
           "Japanese_(katakana)": "アイウエオカキクコサシスセソタチツテトナニヌネノ"
                                  "ハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン",
           # data=script, checked on contact sheets (four drawers' drawings of each characterNN beside the
           # font's glyph; experiments/script_fonts/contact_sheet.py): Korean = the 21 vowels ㅏ..ㅣ in Unicode
           # order, then the 19 consonants ㄱ..ㅎ without the clusters (Hangul Compatibility Jamo); Early_Aramaic
           # = the 22 letters alef..taw drawn in the old (Phoenician-like) forms, which Unicode encodes as
           # Phoenician U+10900..U+10915 (the Imperial Aramaic block's cursive forms differ in most letters)
           "Korean": "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ",
           "Early_Aramaic": "".join(chr(c) for c in range(0x10900, 0x10916)),
           # Balinese: matched on the same sheets, shortlisted by a chamfer distance between the thinned drawings
           # and Noto Sans/Serif Balinese. Sure by eye: ca ka ja la ma na pa ra ta wa na-rambat ya nya ha sa;
           # 05 and 14 are the vowel signs taling and tedung drawn alone, named by the musical symbols deng U+1B62
           # and dong U+1B61 (Unicode's stand-alone characters of those shapes; the signs themselves are marks);
           # less sure between look-alikes: 01 da murda (or da madu), 02 ba (or ga), 07 ga (or sa saga),
           # 06 ga gora, 16 ta tawa (or sa sapa); 04 da and 20 ba kembang were first the other way round: the
           # first model read each as the other (11 and 13 of 20), and 20's drawings do start with ba kembang's curl
           "Balinese": "ᬟᬩᬘᬤ\u1b62ᬖᬕᬳᬚᬓᬮᬫᬦ\u1b61ᬧᬣᬭᬲᬢᬪᬯᬡᬬᬜ"}


def build(*, root: str | None, alphabet: str | list[str] | None = "Latin", background: bool | None = None,
          image_size: int = 32, class_names: list[str] | str | None = None,
          on_bad_file: str = "skip") -> GlyphSet:
    """Omniglot characters of one or several alphabets as a :class:`GlyphSet`.

    ``alphabet``: a name (``"Latin"``), a list of names, or ``None`` for every alphabet found.
    ``background``: ``True`` reads only the background sets (``images_background*``),
    ``False`` only the evaluation sets, ``None`` both (the alphabets of the two are disjoint).
    Classes are ``character01``... (``Latin/character01``... with several alphabets) unless
    ``class_names`` names them in order (``"abcdefghijklmnopqrstuvwxyz"`` for Latin), or is ``"letters"``:
    the :data:`LETTERS` of Latin, Greek, Japanese_(katakana), Korean, Early_Aramaic and Balinese,
    ``character01``... for other alphabets.
    Returns images uint8 ``[n_samples, image_size, image_size]`` (ink 255 on 0), labels int64
    ``[n_samples]``; ``meta["drawers"]`` is the drawer number (1..20) of each image, in order.
    """
    check_options(image_size, on_bad_file)
    if root is None:
        raise DataError("data.root is required: a folder with Omniglot's images_background(.zip) / "
                        "images_evaluation(.zip), or one of those zips, e.g. data.root=~/omniglot")
    root = Path(root).expanduser()
    found, wanted = _alphabets(root, alphabet, background)
    folders = [(a, c) for a in dict.fromkeys(wanted) for c in sorted(found[a][1])]
    classes = _class_names(class_names, folders, found, wanted)

    items, labels = [], []
    for label, (a, c) in enumerate(folders):
        for item in found[a][1][c]:
            items.append(item)
            labels.append(label)
    images, skipped = decode_images(items, image_size=image_size, on_bad_file=on_bad_file, where=str(root))
    keep = [i for i, img in enumerate(images) if img is not None]
    labels = np.asarray(labels, dtype=np.int64)[keep]
    empty = sorted(set(range(len(classes))) - set(labels.tolist()))
    if empty:
        raise DataError(f"Omniglot class(es) with no usable images: {' '.join(classes[i] for i in empty[:20])}")
    drawers = [_drawer(items[i][1]) for i in keep]
    return GlyphSet(np.stack([images[i][0] for i in keep]), labels, classes, meta={
        "root": str(root), "sources": sorted({found[a][0] for a in wanted}), "alphabets": list(dict.fromkeys(wanted)),
        "characters": [f"{a}/{c}" for a, c in folders], "drawers": drawers,
        "skipped_files": [name for name, _ in skipped]})


def _alphabets(root: Path, alphabet, background) -> tuple[dict[str, tuple[str, dict]], list[str]]:
    """(every alphabet found under ``root``: its source and its characters' image files; the names of the
    ones ``alphabet`` asks for, as found, case aside)."""
    # Per alphabet, the first source that has it: an unpacked folder before a zip, the full set
    # before its _small variants (which are subsets of it), so no image is read twice.
    found: dict[str, tuple[str, dict]] = {}
    for name, characters in _find_sets(root, background):
        for alpha, chars in characters.items():
            found.setdefault(alpha, (name, chars))
    wanted = list(found) if alphabet is None else [alphabet] if isinstance(alphabet, str) else list(alphabet)
    by_lower = {a.lower(): a for a in found}  # "latin" finds "Latin"
    wanted = [a if a in found else by_lower.get(str(a).lower(), a) for a in wanted]
    unknown = [a for a in wanted if a not in found]
    if unknown or not wanted:
        raise DataError(f"unknown Omniglot alphabet(s) {', '.join(map(repr, unknown))} in {root}; "
                        f"found: {', '.join(sorted(found)) or 'none'}")
    return found, wanted


def _class_names(class_names, folders: list[tuple[str, str]], found: dict, wanted: list[str]) -> list[str]:
    """A name per (alphabet, character folder), as :func:`build`'s ``class_names`` says."""
    if class_names == "letters":
        numbered = {a: sorted(found[a][1]) for a in wanted}
        return [LETTERS[a][numbered[a].index(c)] if len(LETTERS.get(a, "")) == len(numbered[a])
                else c if len(wanted) == 1 else f"{a}/{c}" for a, c in folders]
    if class_names is None:
        return [c if len(wanted) == 1 else f"{a}/{c}" for a, c in folders]
    classes = as_names(class_names)
    if len(classes) != len(folders):
        raise DataError(f"class_names has {len(classes)} names but {', '.join(wanted)} has "
                        f"{len(folders)} characters ({folders[0][1]}..{folders[-1][1]}); give one name "
                        f"per character in order, or class_names=null")
    if len(set(classes)) != len(classes):
        raise DataError(f"class_names must be distinct, got repeats: "
                        f"{' '.join(sorted({n for n in classes if classes.count(n) > 1}))}")
    return classes


def _drawer(name: str) -> int | None:
    match = re.fullmatch(r"\d+_(\d+)", PurePosixPath(name).stem)
    return int(match.group(1)) if match else None


def _set_kind(stem: str) -> bool | None:
    for prefix, is_background in SETS.items():
        if stem.startswith(prefix):
            return is_background
    return None


def _find_sets(root: Path, background: bool | None) -> list[tuple[str, dict]]:
    """The Omniglot sets at ``root`` as ``(source name, {alphabet: {character: [(source, name)]}})``,
    in order of preference. ``root`` may be a zip, a set folder or a folder holding sets."""
    if not root.exists():
        raise DataError(f"data.root {root} does not exist; expected Omniglot's images_background(.zip) folder")
    if root.is_file():  # one zip, named by the user: read it whatever its name
        return [(root.name, _zip_characters(root))]
    if _set_kind(root.name) is not None:  # a set folder, named by the user: read it
        return [(root.name, _dir_characters(root))]
    candidates = []
    for p in root.iterdir():
        stem = p.name[:-4] if p.name.endswith(".zip") and p.is_file() else p.name if p.is_dir() else None
        kind = _set_kind(stem) if stem else None
        if kind is not None and (background is None or kind == background):
            # unpacked before zips, the full set before its variants, then by name
            candidates.append(((p.is_file(), stem not in SETS, stem), p))
    if not candidates:
        which = {None: "images_background or images_evaluation", True: "images_background",
                 False: "images_evaluation"}[background]
        raise DataError(f"no Omniglot set in {root}: expected {which} (a folder or .zip, "
                        f"e.g. images_background_small1.zip)")
    return [(p.name, _zip_characters(p) if p.is_file() else _dir_characters(p)) for _, p in sorted(candidates)]


def _dir_characters(set_dir: Path) -> dict:
    characters: dict = {}
    for png in sorted(set_dir.glob("*/*/*.png")):
        alpha, char = png.parent.parent.name, png.parent.name
        if not any(part.startswith(".") for part in (alpha, char, png.name)):
            characters.setdefault(alpha, {}).setdefault(char, []).append(
                (png, png.relative_to(set_dir.parent).as_posix()))
    return characters


def _zip_characters(path: Path) -> dict:
    """Index a zip without extracting it; entries are read lazily from memory when decoded."""
    try:
        with open(path, "rb") as f:
            archive = zipfile.ZipFile(io.BytesIO(f.read()))
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is not a readable zip file: {e}") from None
    characters: dict = {}
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        # Nothing is extracted, but a zip with such names is hostile or broken: refuse it whole.
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
            raise DataError(f"{path} has an unsafe entry name {name!r} (absolute or with '..'); refused")
        if info.is_dir() or len(parts) < 3 or not name.lower().endswith(".png") \
                or any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        characters.setdefault(parts[-3], {}).setdefault(parts[-2], []).append(
            (lambda info=info: _read_entry(archive, info), f"{path.name}/{name}"))
    for chars in characters.values():
        for files in chars.values():
            files.sort(key=lambda item: item[1])
    return characters


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> io.BytesIO:
    # zipfile stops at the declared size, so checking it bounds what a bomb can inflate to
    if info.file_size > MAX_ENTRY_BYTES:
        raise DataError(f"inflates to {info.file_size:,} bytes, more than {MAX_ENTRY_BYTES:,} "
                        f"(a decompression bomb?); refused unread")
    return io.BytesIO(archive.read(info))
