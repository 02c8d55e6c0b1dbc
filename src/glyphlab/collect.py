"""Collect mode of the draw page: a person's own drawings saved as ``DIR/<class>/<n>.png``, the layout
``data=folder`` reads (``python run.py data=folder data.root=DIR``).

What it owns: which classes are drawn (a model's, a data option's or the characters given), the
folder rules and the writes. The rules, so that nothing is ever written outside DIR:

- a class name is a folder name, never a path: one that is empty, ``.``/``..``, starts with a dot
  (``data=folder`` skips hidden folders), holds ``/``, ``\\``, a control character (NUL ...), has
  spaces at its ends or is over :data:`MAX_NAME_BYTES` bytes is refused before the server starts;
  names are NFC, as ``data=folder`` reads them back;
- a class folder that is a symbolic link or a file is refused (it would lead outside DIR);
- the server picks the file name (the next free number) from the class index the page sends;
- a drawing is checked (a PNG Pillow decodes, at most :data:`MAX_DRAWING_SIDE` px a side), re-encoded as a
  plain gray PNG, written to a hidden temp file in the class folder and linked into place under a
  name nobody holds (``os.link`` fails on an existing file), so a folder never holds half a drawing
  and two collectors on one DIR never write over each other's drawings;
- undo removes only files this process wrote, newest first.
"""
from __future__ import annotations

import io
import os
import re
import secrets
import shlex
import threading
import unicodedata
from pathlib import Path

from glyphlab.errors import ConfigError, DataError, GlyphlabError, ImageTooLargeError

MAX_DRAWING_SIDE = 2048  # a canvas is 320 px times the screen's pixel ratio; anything larger is no drawing
MAX_NAME_BYTES = 200     # file systems allow 255 bytes a name
NUMBERED = re.compile(r"^(\d+)\.png$")
TEMP_PREFIX = ".collect-"  # hidden: data=folder never reads a temp file left by a killed write
OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class NothingToUndo(GlyphlabError):
    """Undo with no drawing of this session left to remove."""
    http_status = 409


class NotAPngUpload(DataError):
    """A drawing sent with another Content-Type than image/png."""
    http_status = 415


def check_class_name(name: str) -> str:
    """``name`` (NFC) when it can be a folder directly under DIR, else a :class:`ConfigError` saying why."""
    name = unicodedata.normalize("NFC", str(name))
    why = None
    if name in ("", ".", ".."):
        why = "it is a relative path" if name else "it is empty"
    elif "/" in name or "\\" in name:
        why = "it contains a path separator"
    elif any(unicodedata.category(c) == "Cc" for c in name):
        why = "it contains a control character"
    elif name.startswith("."):
        why = "it starts with a dot (data=folder skips hidden folders)"
    elif name != name.strip():
        why = "it has spaces at an end"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        why = f"it is over {MAX_NAME_BYTES} bytes long"
    if why:
        raise ConfigError(f"class name {name!r} cannot be a folder under the collect folder: {why} "
                          f"(class names are not paths)")
    return name


def classes_from(spec: str, overrides: list[str] | tuple = ()) -> list[str]:
    """The classes ``--classes`` names: a synthetic data option's (``runes``; ``kana`` with
    ``overrides`` such as ``data.charset=katakana``), or the characters themselves (``ᚠᚢᚦ``, or
    whitespace-separated names ``"ka ki ku"``, as ``data.class_order`` reads them)."""
    from glyphlab.data.folder import as_names

    if _is_data_option(spec):
        names = _classes_of_option(spec, list(overrides))
    elif overrides:
        raise ConfigError(f"overrides ({' '.join(overrides)}) go with a data option (--classes kana "
                          f"data.charset=katakana); {spec!r} is no data option")
    else:
        names = as_names(spec) or []
    names = list(dict.fromkeys(check_class_name(n) for n in names))
    if not names:
        raise ConfigError(f"--classes {spec!r} names no class; expected a data option (runes, kana, ...) or characters")
    return names


def _is_data_option(spec: str) -> bool:
    from importlib import resources

    from glyphlab.cli import PACKAGED_CONF, config_path

    if not OPTION_NAME.match(spec):
        return False
    conf = config_path()
    folder = resources.files("glyphlab.conf") if conf == PACKAGED_CONF else Path(conf)
    return folder.joinpath("data", f"{spec}.yaml").is_file()


def _classes_of_option(option: str, overrides: list[str]) -> list[str]:
    """The classes of a synthetic data option, from a set of one drawing per class (nothing downloaded)."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from glyphlab.cli import PACKAGED_CONF, config_path
    from glyphlab.data import load

    conf = config_path()
    start = initialize_config_module("glyphlab.conf", version_base="1.3") if conf == PACKAGED_CONF \
        else initialize_config_dir(config_dir=conf, version_base="1.3")
    try:
        with start:
            cfg = compose(config_name="config", overrides=[f"data={option}", *overrides])
        data = OmegaConf.to_container(cfg.data, resolve=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"--classes {option} {' '.join(overrides)}: {str(e).splitlines()[0]}") from None
    if "samples_per_class" not in data:
        raise ConfigError(f"--classes {option}: only a synthetic data option (runes, kana, latin, greek, "
                          f"digits_synth, script) names its classes without reading a data set; give the "
                          f"characters instead, e.g. --classes 0123456789")
    return load({**data, "samples_per_class": 1, "cache": False}, None).classes


class Collection:
    """The drawings under ``root``: one folder per class, ``per_class`` wanted of each.

    Counts are read from the folders at every call, so a collection resumes where the last one stopped.
    """

    def __init__(self, root: str | os.PathLike, classes: list[str], per_class: int):
        if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
            raise ConfigError(f"--per-class must be an integer of at least 1, got {per_class!r}")
        self.classes = list(dict.fromkeys(check_class_name(c) for c in classes))
        if not self.classes:
            raise ConfigError("no classes to collect")
        self.root, self.per_class = open_root(root), per_class
        _check_case_collisions(self.root, self.classes)
        for name in self.classes:
            self._folder(name, create=False)
        self.saved: list[Path] = []  # this session's files, newest last: what undo may remove
        self.lock = threading.Lock()

    def state(self) -> dict:
        """What the page shows: every class with its count, and the drawing undo would remove."""
        from glyphlab.evaluate import readable_name

        counts = [self.count(c) for c in self.classes]
        return {"dir": str(self.root), "per_class": self.per_class, "total": sum(counts),
                "classes": [{"class": c, "name": readable_name(c), "count": n} for c, n in zip(self.classes, counts)],
                "undo": self._shown(self.saved[-1]) if self.saved else None,
                "train": f"glyphlab data=folder data.root={shlex.quote(str(self.root))}"}

    def count(self, name: str) -> int:
        """Image files in the class's folder (what data=folder reads of it, hidden files excluded)."""
        from glyphlab.data.folder import IMAGE_EXTENSIONS

        folder = self.root / name
        if not folder.is_dir() or folder.is_symlink():
            return 0
        return sum(1 for p in folder.iterdir()
                   if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())

    def save(self, index, data: bytes) -> dict:
        """Write one drawing of class number ``index`` as the class folder's next ``<n>.png``; the new state."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.classes):
            raise DataError(f"expected a class number from 0 to {len(self.classes) - 1}, got {index!r}")
        name, png = self.classes[index], drawing_png(data)
        with self.lock:
            folder = self._folder(name, create=True)
            numbers = [int(m.group(1)) for p in folder.iterdir() if (m := NUMBERED.match(p.name))]
            path = write_new(folder, max(numbers, default=0) + 1, png)
            self.saved.append(path)
        return {**self.state(), "saved": self._shown(path)}

    def undo(self) -> dict:
        """Remove the newest drawing this session saved (one already gone is passed over); the new state."""
        with self.lock:
            while self.saved:
                path = self.saved.pop()
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                return {**self.state(), "undone": self._shown(path)}
        raise NothingToUndo("nothing to undo: no drawing of this session is left")

    def _folder(self, name: str, create: bool) -> Path:
        folder = self.root / name
        if folder.parent != self.root:  # check_class_name makes this impossible; never write elsewhere
            raise ConfigError(f"class name {name!r} is not a single folder name")
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            kind = "a symbolic link" if folder.is_symlink() else "a file"
            raise DataError(f"{folder} is {kind}; expected the folder of class {name!r} (or nothing) there")
        if create:
            folder.mkdir(exist_ok=True)
        return folder

    def _shown(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def open_root(path: str | os.PathLike) -> Path:
    """The collect folder, created when missing; a :class:`DataError` when it is a file or not writable."""
    root = Path(path).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise DataError(f"--collect {root} is a file; expected a folder (it is created when missing)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f"{TEMP_PREFIX}probe-{secrets.token_hex(4)}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as e:
        raise DataError(f"--collect {root} is not a writable folder ({e.strerror or e}); "
                        f"expected a folder glyphlab can create files in") from None
    return root


def drawing_png(data: bytes) -> bytes:
    """A posted drawing as a plain 8-bit gray PNG (transparency on white paper); a :class:`DataError`
    (an :class:`ImageTooLargeError` for a too large one) unless it is a PNG Pillow decodes."""
    from PIL import Image

    from glyphlab.data.reader import open_image

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise DataError("the drawing is not a PNG; expected the canvas as image/png")
    try:
        with open_image(io.BytesIO(data)) as im:
            if max(im.size) > MAX_DRAWING_SIDE:
                raise ImageTooLargeError(f"the drawing is {im.width}x{im.height} px; expected at most "
                                         f"{MAX_DRAWING_SIDE} px a side")
            im.load()
            if "A" in im.getbands() or "transparency" in im.info:
                paper = Image.new("RGBA", im.size, "white")
                gray = Image.alpha_composite(paper, im.convert("RGBA")).convert("L")
            else:
                gray = im.convert("L")
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds on damaged data
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"the drawing is not a PNG Pillow can decode ({reason})") from None
    out = io.BytesIO()
    gray.save(out, format="PNG")
    return out.getvalue()


def write_new(folder: Path, number: int, data: bytes) -> Path:
    """``data`` as ``folder/<n>.png`` for the first ``n >= number`` that no file holds; the path written.

    The bytes go to a hidden temp file first, which is then hard-linked to the new name: the link fails
    if the name exists, so a drawing another process saved meanwhile under that number is never replaced
    (``os.replace`` would), and the next number is tried.
    """
    temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(4)}.tmp"
    try:
        with open(temp, "xb") as f:  # "x": never follows or replaces something already there
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        while True:
            path = folder / f"{number}.png"
            try:
                os.link(temp, path)
                return path
            except FileExistsError:
                number += 1
    finally:
        temp.unlink(missing_ok=True)


def _check_case_collisions(root: Path, classes: list[str]) -> None:
    """On a case-insensitive file system (macOS, Windows) ``A`` and ``a`` would share one folder."""
    by_fold: dict[str, str] = {}
    clash = next(((by_fold[c.casefold()], c) for c in classes if by_fold.setdefault(c.casefold(), c) != c), None)
    if clash is None:
        return
    probe = root / f"{TEMP_PREFIX}case-{secrets.token_hex(4)}"
    probe.touch()
    try:
        insensitive = (root / probe.name.upper()).exists()
    finally:
        probe.unlink()
    if insensitive:
        raise DataError(f"{root} is on a case-insensitive file system: classes {clash[0]!r} and {clash[1]!r} "
                        f"would share one folder; collect them on a case-sensitive one")
