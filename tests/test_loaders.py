"""Folder, Omniglot and scikit-learn digits loaders, on tiny fixtures made here."""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from helpers import png_header
from glyphlab.data import load
from glyphlab.data import digits, folder, omniglot
from glyphlab.errors import DataError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"


def glyph(height=30, width=30, dark_ink=True) -> np.ndarray:
    """uint8 [height, width]: an off-centre 'L' stroke, dark on light (or light on dark)."""
    a = np.zeros((height, width), np.uint8)
    a[height // 5: height * 4 // 5, width // 4: width // 4 + max(2, width // 6)] = 255
    a[height * 4 // 5 - max(2, height // 6): height * 4 // 5, width // 4: width * 3 // 4] = 255
    return 255 - a if dark_ink else a


def save(path: Path, image: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def similar(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


# ---------------------------------------------------------------------- folder layouts

def test_folder_layout_classes_and_shapes(tmp_path):
    for name, n in (("b", 3), ("a", 4), ("ア", 3)):
        for i in range(n):
            save(tmp_path / name / f"{i}.png", Image.fromarray(glyph()))
    (tmp_path / "a" / "README.txt").write_text("not an image")
    (tmp_path / ".git").mkdir()
    save(tmp_path / ".git" / "x.png", Image.fromarray(glyph()))  # hidden folder: not a class
    glyphs = folder.read_folder(tmp_path, image_size=16)
    assert glyphs.classes == ["a", "b", "ア"]
    assert glyphs.images.shape == (10, 16, 16) and glyphs.images.dtype == np.uint8
    assert glyphs.labels.tolist() == [0] * 4 + [1] * 3 + [2] * 3
    assert glyphs.meta["layout"] == "folder" and glyphs.meta["skipped_files"] == []
    assert glyphs.meta["inverted"] == 10
    # ink bright on a dark ground: the border is dark, some pixel is bright
    assert glyphs.images[:, 0, :].max() < 30 and glyphs.images.max() > 200


def test_flat_layout_and_class_order(tmp_path):
    for name in ("b_1.png", "b_2.jpg", "a_x_y.png", "c_3.bmp"):
        image = Image.fromarray(glyph())
        save(tmp_path / name, image.convert("RGB") if name.endswith((".jpg", ".bmp")) else image)
    glyphs = folder.read_folder(tmp_path, image_size=12)
    assert glyphs.meta["layout"] == "flat"
    assert glyphs.classes == ["a", "b", "c"] and glyphs.class_counts().tolist() == [1, 2, 1]
    ordered = folder.read_folder(tmp_path, image_size=12, class_order=["c", "zz", "a"])
    assert ordered.classes == ["c", "a", "b"]  # listed first (absent ones ignored), the rest sorted
    assert ordered.class_counts().tolist() == [1, 1, 2]
    assert folder.read_folder(tmp_path, image_size=12, class_order="ba").classes == ["b", "a", "c"]
    # data=folder's class_order (the user's) naming a class with no images is an error, not a silent shift
    assert folder.build(root=str(tmp_path), image_size=12, class_order="cb").classes == ["c", "b", "a"]
    with pytest.raises(DataError, match=r"data.class_order names 1 class\(es\) with no images in .*: zz; "
                                        r"expected names of its classes, found c a b"):
        folder.build(root=str(tmp_path), image_size=12, class_order=["c", "zz", "a"])


def test_flat_file_without_label_is_skipped(tmp_path, caplog):
    save(tmp_path / "a_1.png", Image.fromarray(glyph()))
    save(tmp_path / "nolabel.png", Image.fromarray(glyph()))
    with caplog.at_level(logging.WARNING):
        glyphs = folder.read_folder(tmp_path, image_size=8)
    assert glyphs.classes == ["a"] and glyphs.meta["skipped_files"] == ["nolabel.png"]
    assert "nolabel.png" in caplog.text


# ------------------------------------------------------------------- formats and modes

def test_mixed_sizes_modes_and_formats_look_alike(tmp_path):
    base = glyph(60, 60)  # dark ink on white
    alpha = Image.fromarray(255 - base)  # RGBA: black ink, transparent paper
    rgba = Image.merge("RGBA", [Image.new("L", (60, 60), 0)] * 3 + [alpha])
    variants = {
        "L.png": Image.fromarray(base),
        "RGB.png": Image.fromarray(base).convert("RGB"),
        "RGBA.png": rgba,
        "P.gif": Image.fromarray(base).convert("P"),
        "I16.png": Image.fromarray(base.astype(np.uint16) * 257),
        "LA.png": Image.fromarray(base).convert("LA"),
        "white_on_transparent.png": Image.merge("RGBA", [Image.new("L", (60, 60), 255)] * 3 + [alpha]),
        "CMYK.tif": Image.fromarray(base).convert("CMYK"),
        "F.tif": Image.fromarray(base.astype(np.float32) / 255),
        "big.jpg": Image.fromarray(base).convert("RGB").resize((240, 240)),
        "small.bmp": Image.fromarray(base).resize((20, 20)),
    }
    for name, image in variants.items():
        save(tmp_path / "g" / name, image)
    assert Image.open(tmp_path / "g" / "I16.png").mode == "I;16"
    glyphs = folder.read_folder(tmp_path, image_size=16)
    assert glyphs.images.shape == (len(variants), 16, 16) and glyphs.meta["skipped_files"] == []
    reference = folder.load_image(tmp_path / "g" / "L.png", 16)[0]
    for image in glyphs.images:
        assert similar(image, reference) > 0.9
        assert image.max() > 150 and image[0].max() < 40


def test_non_square_is_padded_not_stretched(tmp_path):
    wide = np.full((10, 40), 255, np.uint8)
    wide[4:6, 5:35] = 0  # a thin horizontal dark bar
    save(tmp_path / "x" / "wide.png", Image.fromarray(wide))
    image = folder.read_folder(tmp_path, image_size=20).images[0]
    rows = np.flatnonzero(image.max(axis=1) > 100)
    assert rows.min() >= 7 and rows.max() <= 12  # still a thin bar in the middle, not a tall block


def test_polarity_black_on_white_equals_white_on_black(tmp_path):
    save(tmp_path / "k" / "dark_ink.png", Image.fromarray(glyph(dark_ink=True)))
    save(tmp_path / "k" / "light_ink.png", Image.fromarray(glyph(dark_ink=False)))
    glyphs = folder.read_folder(tmp_path, image_size=16)
    assert glyphs.meta["inverted"] == 1
    assert np.abs(glyphs.images[0].astype(int) - glyphs.images[1].astype(int)).max() <= 1


# ------------------------------------------------------------------------- bad files

def _folder_with_bad_files(root: Path) -> None:
    for i in range(3):
        save(root / "a" / f"{i}.png", Image.fromarray(glyph()))
    buffer = io.BytesIO()
    Image.fromarray(glyph(64, 64)).save(buffer, "PNG")
    (root / "a" / "truncated.png").write_bytes(buffer.getvalue()[:60])
    (root / "a" / "garbage.jpg").write_bytes(b"this is not a jpeg")
    (root / "a" / "notes.txt").write_text("ignored: not an image extension")
    (root / "a" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "a" / "._0.png").write_bytes(b"AppleDouble")  # hidden: ignored, not counted


def test_bad_files_skipped_and_counted(tmp_path, caplog):
    _folder_with_bad_files(tmp_path)
    with caplog.at_level(logging.WARNING):
        glyphs = folder.read_folder(tmp_path, image_size=8)
    assert len(glyphs) == 3
    assert sorted(glyphs.meta["skipped_files"]) == ["a/garbage.jpg", "a/truncated.png"]
    assert "skipped 2 unusable" in caplog.text and "a/truncated.png" in caplog.text


def test_bad_files_error(tmp_path):
    _folder_with_bad_files(tmp_path)
    with pytest.raises(DataError, match="2 unusable image file"):
        folder.read_folder(tmp_path, image_size=8, on_bad_file="error")


def test_class_with_only_bad_files(tmp_path):
    save(tmp_path / "a" / "0.png", Image.fromarray(glyph()))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "0.png").write_bytes(b"broken")
    with pytest.raises(DataError, match="no usable images.*b"):
        folder.read_folder(tmp_path, image_size=8)


@pytest.mark.parametrize("size", [(100_000, 100_000), (8_000, 8_000)])  # Pillow's own guard; ours (50 MP)
def test_decompression_bomb_refused(tmp_path, size):
    save(tmp_path / "a" / "ok.png", Image.fromarray(glyph()))
    (tmp_path / "a" / "bomb.png").write_bytes(png_header(*size))
    glyphs = folder.read_folder(tmp_path, image_size=8)
    assert glyphs.meta["skipped_files"] == ["a/bomb.png"] and len(glyphs) == 1
    with pytest.raises(DataError, match="bomb"):
        folder.read_folder(tmp_path, image_size=8, on_bad_file="error")


# ----------------------------------------------------------------------- bad options

def test_root_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        folder.read_folder(tmp_path / "missing", image_size=8)
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="is a file"):
        folder.read_folder(tmp_path / "file.png", image_size=8)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "README.txt").write_text("hello")
    with pytest.raises(DataError, match="no images found.*subfolder per class.*<label>_"):
        folder.read_folder(empty, image_size=8)
    with pytest.raises(DataError, match="data.root is required"):
        folder.build(root=None)
    with pytest.raises(DataError, match="image_size"):
        folder.read_folder(tmp_path, image_size=2)
    with pytest.raises(DataError, match="on_bad_file"):
        folder.read_folder(tmp_path, image_size=8, on_bad_file="ignore")


def test_folder_yaml_builds_through_load(tmp_path):
    for name in ("a", "b"):
        save(tmp_path / name / "0.png", Image.fromarray(glyph()))
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "folder.yaml"))
    cfg["root"] = str(tmp_path)
    glyphs = load(cfg)
    assert glyphs.classes == ["a", "b"] and glyphs.image_size == cfg["image_size"]


# -------------------------------------------------------------------------- omniglot

def omniglot_png(seed: int) -> bytes:
    """A 105x105 mode-1 PNG, black ink on white, like Omniglot's."""
    a = np.full((105, 105), 255, np.uint8)
    rng = np.random.default_rng(seed)
    r, c = rng.integers(20, 70, size=2)
    a[r:r + 25, c:c + 4] = 0
    buffer = io.BytesIO()
    Image.fromarray(a).convert("1").save(buffer, "PNG")
    return buffer.getvalue()


ALPHABETS = {"Latin": 3, "Greek": 2}  # characters per alphabet; 2 drawers each


def omniglot_entries(set_name: str, alphabets=ALPHABETS):
    for alphabet, n_chars in alphabets.items():
        for c in range(1, n_chars + 1):
            for drawer in (1, 2):
                yield f"{set_name}/{alphabet}/character{c:02d}/{c:04d}_{drawer:02d}.png", omniglot_png(c * 10 + drawer)


def write_zip(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            z.writestr(name, data)
    return path


def test_omniglot_unpacked(tmp_path):
    for name, data in omniglot_entries("images_background"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    glyphs = omniglot.build(root=str(tmp_path), alphabet="Latin", image_size=16, class_names=None)
    assert glyphs.classes == ["character01", "character02", "character03"]
    assert glyphs.images.shape == (6, 16, 16) and glyphs.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert glyphs.meta["drawers"] == [1, 2] * 3
    assert glyphs.images[:, 0, :].max() < 30 and glyphs.images.max() > 150  # inverted: ink bright
    # root may also be the set folder itself
    assert len(omniglot.build(root=str(tmp_path / "images_background"), image_size=16)) == 6


def test_omniglot_zips_class_names_and_several_alphabets(tmp_path):
    write_zip(tmp_path / "images_background_small1.zip", omniglot_entries("images_background_small1"))
    write_zip(tmp_path / "images_evaluation.zip",
              omniglot_entries("images_evaluation", {"Mongolian": 2}))
    latin = omniglot.build(root=str(tmp_path), alphabet="Latin", image_size=16, class_names="abc")
    assert latin.classes == ["a", "b", "c"] and len(latin) == 6
    assert latin.meta["sources"] == ["images_background_small1.zip"]
    both = omniglot.build(root=str(tmp_path), alphabet=["Greek", "Mongolian"], image_size=16)
    assert both.classes == ["Greek/character01", "Greek/character02",
                            "Mongolian/character01", "Mongolian/character02"]
    assert both.class_counts().tolist() == [2, 2, 2, 2]
    named = omniglot.build(root=str(tmp_path), alphabet=["Latin", "Greek"], image_size=16,
                           class_names=["a", "b", "c", "α", "β"])
    assert named.classes == ["a", "b", "c", "α", "β"]
    # root pointing at one zip; background=False keeps to the evaluation set
    assert omniglot.build(root=str(tmp_path / "images_evaluation.zip"), alphabet="Mongolian",
                          image_size=16).n_classes == 2
    with pytest.raises(DataError, match="found: Mongolian"):
        omniglot.build(root=str(tmp_path), alphabet="Latin", background=False, image_size=16)
    with pytest.raises(DataError, match="class_names has 2 names but Latin has 3"):
        omniglot.build(root=str(tmp_path), alphabet="Latin", image_size=16, class_names="ab")


def test_omniglot_unknown_alphabet_lists_found(tmp_path):
    write_zip(tmp_path / "images_background.zip", omniglot_entries("images_background"))
    with pytest.raises(DataError, match="'Klingon'.*found: Greek, Latin"):
        omniglot.build(root=str(tmp_path), alphabet="Klingon", image_size=16)
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="no Omniglot set"):
        omniglot.build(root=str(tmp_path / "other"), image_size=16)
    with pytest.raises(DataError, match="does not exist"):
        omniglot.build(root=str(tmp_path / "missing"), image_size=16)
    with pytest.raises(DataError, match="data.root is required"):
        omniglot.build(root=None)


@pytest.mark.parametrize("bad_name", ["../escape.png", "/abs/Latin/character01/x.png",
                                      "images_background/Latin/../../x/y.png"])
def test_omniglot_zip_slip_refused(tmp_path, bad_name):
    entries = list(omniglot_entries("images_background")) + [(bad_name, omniglot_png(0))]
    write_zip(tmp_path / "images_background.zip", entries)
    with pytest.raises(DataError, match="unsafe entry name"):
        omniglot.build(root=str(tmp_path), image_size=16)


def test_omniglot_zip_bomb_entry_refused(tmp_path, monkeypatch):
    entries = list(omniglot_entries("images_background"))
    entries.append(("images_background/Latin/character01/0001_03.png", png_header(100_000, 100_000)))
    write_zip(tmp_path / "images_background.zip", entries)
    glyphs = omniglot.build(root=str(tmp_path), image_size=16)
    assert glyphs.meta["skipped_files"] == ["images_background.zip/images_background/Latin/character01/0001_03.png"]
    monkeypatch.setattr(omniglot, "MAX_ENTRY_BYTES", 100)  # every entry now "inflates" too much
    with pytest.raises(DataError, match="decompression bomb"):
        omniglot.build(root=str(tmp_path), image_size=16, on_bad_file="error")


def test_omniglot_yaml_builds_through_load(tmp_path):
    write_zip(tmp_path / "images_background.zip",
              omniglot_entries("images_background", {"Latin": 26}))
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "omniglot.yaml"))
    cfg["root"] = str(tmp_path)
    glyphs = load(cfg)
    assert glyphs.classes == list("abcdefghijklmnopqrstuvwxyz") and len(glyphs) == 52


# ---------------------------------------------------------------------------- digits

def test_digits():
    glyphs = digits.build(image_size=16)
    assert glyphs.images.shape == (1797, 16, 16) and glyphs.images.dtype == np.uint8
    assert glyphs.classes == [str(d) for d in range(10)]
    assert glyphs.images.min() == 0 and glyphs.images.max() == 255
    assert glyphs.class_counts().min() > 170
    # ink bright on dark: the frame is mostly background
    assert glyphs.images[:, 0, :].mean() < glyphs.images[:, 6:10, 6:10].mean()
    from helpers import compose

    cfg = OmegaConf.to_container(compose(["data=digits"]).data, resolve=True)   # as Hydra composes it
    assert load(cfg).images.shape == (1797, cfg["image_size"], cfg["image_size"])


def test_normalize_box_scales_and_centres_the_ink():
    from glyphlab.data import normalize_box

    small = np.zeros((2, 32, 32), np.uint8)
    small[0, 2:8, 20:23] = 255          # a small bar, top right: 6 tall, 3 wide
    big = normalize_box(small)
    rows, cols = np.flatnonzero(big[0].max(1) > 48), np.flatnonzero(big[0].max(0) > 48)
    box = round(32 * 0.8)
    assert rows[-1] - rows[0] + 1 == box                         # the long side fills the box
    assert abs((cols[-1] - cols[0] + 1) - box / 2) <= 2          # aspect kept
    assert abs((rows[0] + rows[-1]) / 2 - 15.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 15.5) <= 1   # centred
    assert not big[1].any()                                      # an empty image stays empty
    shifted = np.roll(small[:1], (10, -12), axis=(1, 2))         # the same glyph elsewhere: the same result
    assert np.array_equal(normalize_box(shifted), big[:1])


def test_normalize_box_brings_a_thin_faint_pen_to_full_level_and_width():
    """A tablet's 1 px trace at 64 px shrinks to a faint hair line at 32: box normalisation draws it at full level
    and one pixel wider; a pen as bold as the training pens, at full level, comes through as it was."""
    from glyphlab.data import ink_at_full_level, normalize_box

    thin = np.zeros((1, 64, 64), np.uint8)
    thin[0, 8:56, 20] = 255                                        # a 1 px stroke, 48 tall
    thin[0, 8, 20:44] = 255                                        # and a 1 px bar: a Γ
    shrunk = np.asarray([np.asarray(Image.fromarray(thin[0]).resize((32, 32), Image.Resampling.BILINEAR))])
    assert shrunk.max() < 200                                      # the trace at 32 px: faint
    boxed = normalize_box(shrunk)[0]
    assert np.percentile(boxed[boxed > 48], 95) == 255             # full level
    assert (boxed[16] > 127).sum() >= 2                            # the stem at least 2 px wide
    bold = np.zeros((32, 32), np.uint8)
    bold[4:28, 10:14] = 255                                        # a 4 px pen at full level
    bold[4:8, 10:24] = 255
    assert np.array_equal(ink_at_full_level(bold), bold)
    assert not ink_at_full_level(np.zeros((32, 32), np.uint8)).any()


def test_normalize_is_applied_after_the_cache_and_checked(tmp_path):
    spec = {"name": "digits", "_target_": "glyphlab.data.digits.build", "image_size": 16}
    plain = load(spec, cache_dir=tmp_path)
    boxed = load({**spec, "normalize": "box"}, cache_dir=tmp_path)
    assert not np.array_equal(plain.images, boxed.images) and np.array_equal(plain.labels, boxed.labels)
    assert len(list(tmp_path.glob("*.npz"))) == 1   # one cache entry: normalize is not part of its key
    with pytest.raises(DataError, match="normalize must be null or box, got 'center'"):
        load({**spec, "normalize": "center"}, cache_dir=tmp_path)


def test_eval_data_is_normalized_like_the_training_data():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["data=digits_synth", "eval_data=digits", "data.normalize=box"])
    assert cfg.eval_data.normalize == "box"


def test_a_change_to_the_builders_code_or_packages_is_a_new_cache_entry(tmp_path, monkeypatch):
    import glyphlab.data as data

    spec = {"name": "digits", "_target_": "glyphlab.data.digits.build", "image_size": 16}
    key = data.cache_key(spec)
    assert data.cache_key(dict(spec)) == key       # same code, same config: the same entry
    load(spec, cache_dir=tmp_path)
    # the same config after the synthesizer changed (here: a stand-in fingerprint): not read back, rebuilt
    monkeypatch.setattr(data, "code_fingerprint", lambda: "other code")
    assert data.cache_key(spec) != key
    load(spec, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("digits-*.npz"))) == 2


def test_a_blank_page_is_kept_and_named_in_a_warning(tmp_path, caplog):
    for name in ("a_1.png", "a_2.png", "b_1.png"):
        save(tmp_path / name, Image.fromarray(glyph()))
    save(tmp_path / "b_2.png", Image.fromarray(np.full((12, 12), 255, np.uint8)))   # white paper, nothing written
    with caplog.at_level(logging.WARNING):
        glyphs = folder.read_folder(tmp_path, image_size=8)
    assert len(glyphs) == 4 and sum(not image.any() for image in glyphs.images) == 1   # kept, as read
    blank = [r.getMessage() for r in caplog.records if "no ink" in r.getMessage()]
    assert len(blank) == 1 and "1 image(s)" in blank[0] and "b_2.png" in blank[0] and "b_1.png" not in blank[0]
