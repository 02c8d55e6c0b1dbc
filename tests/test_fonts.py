"""Glyphs drawn from fonts: kana with IPAexGothic, no blank images, clear errors."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from glyphlab.data import GlyphSet
from glyphlab.data import font_images
from glyphlab.errors import DataError

needs_ipaex = pytest.mark.skipif(importlib.util.find_spec("matplotlib_fontja") is None,
                                 reason="matplotlib-fontja (IPAexGothic) is not installed")
NO_FONT_HAS = "\U0010FFFD"  # private use, plane 16: no real font maps it


@needs_ipaex
def test_ipaex_gothic_is_found_without_hardcoded_paths():
    path = font_images.ipaex_gothic()
    assert path and path.endswith("ipaexg.ttf")
    assert font_images.font_for("あいうアイウ") is not None
    assert font_images.font_for(["あ", NO_FONT_HAS]) is None


@needs_ipaex
def test_render_kana():
    kana = ["あ", "い", "う", "ゃ", "ン"]
    glyphs = font_images.render_fonts(kana, image_size=28, samples_per_class=6, seed=0, system_fonts=False)
    assert isinstance(glyphs, GlyphSet)
    assert glyphs.images.shape == (30, 28, 28) and glyphs.images.dtype == np.uint8
    assert glyphs.classes == kana and glyphs.labels.tolist() == np.repeat(np.arange(5), 6).tolist()
    ink = glyphs.images.reshape(30, -1)
    assert (ink.max(axis=1) > 128).all()  # bright ink in every image: none blank
    assert (np.median(ink, axis=1) == 0).all()  # on a dark ground
    assert glyphs.meta["fonts"] == ["ipaexg.ttf"]
    # varied (sizes, shifts, rotations) yet reproducible
    assert len({im.tobytes() for im in glyphs.images}) == 30
    again = font_images.render_fonts(kana, image_size=28, samples_per_class=6, seed=0, system_fonts=False)
    np.testing.assert_array_equal(again.images, glyphs.images)
    other = font_images.render_fonts(kana, image_size=28, samples_per_class=6, seed=1, system_fonts=False)
    assert not np.array_equal(other.images, glyphs.images)


@needs_ipaex
def test_small_kana_stays_smaller():
    glyphs = font_images.render_fonts("やゃ", image_size=32, samples_per_class=1, seed=0, sizes=[0.75], shift=0,
                                rotation=0, system_fonts=False)
    rows = [np.flatnonzero(im.max(axis=1) > 64) for im in glyphs.images]
    assert rows[1].size < rows[0].size  # ゃ is drawn shorter than や


@needs_ipaex
def test_configured_font_file_comes_first(tmp_path):
    path = font_images.ipaex_gothic()
    glyphs = font_images.render_fonts("ア", image_size=16, samples_per_class=2, seed=0, font_files=[path],
                                system_fonts=False)
    assert glyphs.meta["fonts"] == ["ipaexg.ttf"]  # listed once, not twice


@needs_ipaex
def test_a_font_freetype_cannot_draw_at_the_size_is_skipped(tmp_path, monkeypatch):
    """A bitmap-only font (GNU Unifont's sample .ttf, colour emoji) has a character map but FreeType opens it
    only at its own strikes ("invalid pixel size"): it is left out like a font without the character."""
    from PIL import ImageFont

    bitmap = tmp_path / "bitmap-only.ttf"
    bitmap.write_bytes(Path(font_images.ipaex_gothic()).read_bytes())
    scalable = ImageFont.truetype

    def truetype(path, size, *args, **kwargs):
        if Path(path) == bitmap:
            raise OSError("invalid pixel size")
        return scalable(path, size, *args, **kwargs)

    monkeypatch.setattr(ImageFont, "truetype", truetype)
    font_images._truetype.cache_clear()
    glyphs = font_images.render_fonts("ア", image_size=16, samples_per_class=2, seed=0, font_files=[str(bitmap)],
                                      system_fonts=False)
    font_images._truetype.cache_clear()
    assert glyphs.meta["fonts"] == ["ipaexg.ttf"] and glyphs.images.any(axis=(1, 2)).all()


def test_character_no_font_has():
    with pytest.raises(DataError, match=r"no font has 1 character.*U\+10FFFD") as e:
        font_images.render_fonts(["A", NO_FONT_HAS], image_size=16, samples_per_class=1, seed=0)
    assert "\n" not in str(e.value)


def test_whitespace_is_never_drawn_blank():
    with pytest.raises(DataError, match=r"U\+0020"):
        font_images.render_fonts([" "], image_size=16, samples_per_class=1, seed=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"chars": ["a", "a"]}, "distinct"),
    ({"chars": []}, "non-empty"),
    ({"samples_per_class": 0}, "samples_per_class"),
    ({"sizes": [0]}, "sizes"),
    ({"shift": 0.7}, "shift"),
    ({"font_files": ["/nonexistent/font.ttf"]}, "font_files"),
])
def test_bad_arguments(kwargs, message):
    arguments = {"chars": ["a"], "image_size": 16, "samples_per_class": 1, "seed": 0, **kwargs}
    with pytest.raises(DataError, match=message):
        font_images.render_fonts(**arguments)


def test_not_a_font_file(tmp_path):
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(DataError, match="character map"):
        font_images.render_fonts(["a"], image_size=16, samples_per_class=1, seed=0, font_files=[str(bogus)])
