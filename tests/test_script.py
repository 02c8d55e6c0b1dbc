"""data=script (#28): characters handwritten from the fonts that have them, on a tiny font made here with
fontTools (no network, no ../shared, no system font needed)."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import cli, compose
from glyphlab import data
from glyphlab.data import script
from glyphlab.errors import DataError

# The fixture font's characters: ㄱ (a hook), ㄴ (an L), ㅁ (a square ring), ᚠ (a stem with two arms)
CHARS = "ㄱㄴㅁᚠ"
BAR = 90  # stroke width in font units (em 1000)


def _rect(pen, x0, y0, x1, y1):
    pen.moveTo((x0, y0))
    pen.lineTo((x0, y1))
    pen.lineTo((x1, y1))
    pen.lineTo((x1, y0))
    pen.closePath()


def _glyphs():
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    def draw(*rects):
        pen = TTGlyphPen(None)
        for r in rects:
            _rect(pen, *r)
        return pen.glyph()

    return {".notdef": draw(), "space": draw(),
            "kiyeok": draw((100, 600 - BAR, 600, 600), (600 - BAR, 0, 600, 600)),
            "nieun": draw((100, 0, 100 + BAR, 600), (100, 0, 600, BAR)),
            "mieum": draw((100, 0, 100 + BAR, 600), (600 - BAR, 0, 600, 600), (100, 600 - BAR, 600, 600),
                          (100, 0, 600, BAR)),
            "fehu": draw((150, 0, 150 + BAR, 700), (150, 500, 550, 500 + BAR), (150, 300, 450, 300 + BAR))}


def make_font(path, chars: str = CHARS) -> str:
    from fontTools.fontBuilder import FontBuilder

    names = dict(zip(CHARS, ["kiyeok", "nieun", "mieum", "fehu"]))
    glyphs = _glyphs()
    order = [".notdef", "space", *(names[c] for c in chars)]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap({0x20: "space", **{ord(c): names[c] for c in chars}})
    fb.setupGlyf({g: glyphs[g] for g in order})
    fb.setupHorizontalMetrics({g: (700, 0) for g in order})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "GlyphlabTest", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def font(tmp_path_factory):
    return make_font(tmp_path_factory.mktemp("fonts") / "GlyphlabTest-Regular.ttf")


def test_data_script_builds_classes_named_by_the_characters(font):
    cfg = compose(["data=script", f"data.charset='{CHARS}'", f"data.fonts=['{font}']", "data.samples_per_class=4",
                   "data.image_size=16", "handwriting=natural"])
    spec = OmegaConf.to_container(cfg.data, resolve=True)
    glyphs = data.load(spec, cache_dir=None)
    assert glyphs.classes == list(CHARS)
    assert glyphs.images.shape == (16, 16, 16) and glyphs.images.dtype == np.uint8
    assert (glyphs.images.reshape(16, -1).max(1) > 128).all()       # ink in every image
    assert glyphs.meta["fonts"] == ["GlyphlabTest-Regular.ttf"] and glyphs.meta["prototypes"] == dict.fromkeys(CHARS, 1)
    again = data.load(spec, cache_dir=None)
    np.testing.assert_array_equal(again.images, glyphs.images)       # seeded


def test_two_fonts_are_two_prototypes_and_ranges_resolve(font, tmp_path):
    second = make_font(tmp_path / "Second.ttf", "ㄱㄴ")
    glyphs = script.build(charset="U+3131, U+3134", fonts=[font, second], samples_per_class=3, image_size=16)
    assert glyphs.classes == ["ㄱ", "ㄴ"] and glyphs.meta["prototypes"] == {"ㄱ": 2, "ㄴ": 2}
    assert script.parse_charset("U+3131-U+3134") == "ㄱㄲㄳㄴ"
    assert script.parse_charset("ㄱ ㄴ") == "ㄱㄴ"
    assert script.parse_charset("hangul_jamo")[:2] == "ㄱㄲ" and len(script.parse_charset("hangul_jamo")) == 51
    assert script.parse_charset("U+0900-U+0905") == "\u0904\u0905"   # a range drops its marks (U+0900..U+0903)
    assert script.parse_charset("omniglot:Korean")[:2] == "ㅏㅐ"


def test_a_font_that_thins_into_specks_is_left_out(font, tmp_path):
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont

    # a distressed face: every glyph 5 x 5 separate dots, which thin into 25 specks instead of a way to write
    speckled = TTFont(make_font(tmp_path / "Speckled.ttf"))
    for name in ("kiyeok", "nieun", "mieum", "fehu"):
        pen = TTGlyphPen(None)
        for i in range(5):
            for j in range(5):
                _rect(pen, 100 + 110 * i, 100 + 110 * j, 160 + 110 * i, 160 + 110 * j)
        speckled["glyf"][name] = pen.glyph()
    speckled.save(tmp_path / "Speckled.ttf")
    second = make_font(tmp_path / "Second.ttf")
    fonts = [font, second, str(tmp_path / "Speckled.ttf")]
    glyphs = script.build(charset="ㄱㄴ", fonts=fonts, samples_per_class=3, image_size=16)
    assert glyphs.meta["prototypes"] == {"ㄱ": 2, "ㄴ": 2}
    assert "Speckled.ttf" not in glyphs.meta["fonts"]
    # with fewer than three fonts there is no telling; a character only a speckled font has keeps it
    assert script.build(charset="ㄱ", fonts=fonts[1:], samples_per_class=3, image_size=16).meta["prototypes"] == {"ㄱ": 2}


def test_the_cache_key_follows_the_font_files(font, tmp_path):
    import shutil

    copy = tmp_path / "copy.ttf"
    shutil.copy(font, copy)
    spec = {"name": "script", "_target_": "glyphlab.data.script.build", "charset": "ㄱㄴ", "fonts": [str(copy)]}
    before = data.cache_key(spec)
    make_font(copy, "ㄱㄴㅁ")           # the same path, another font
    script._cmap.cache_clear()
    assert data.cache_key(spec) != before


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_a_character_no_font_has_names_the_characters_and_the_fonts_tried(font):
    with pytest.raises(DataError) as e:
        script.build(charset="ㄱㅎ", fonts=[font], samples_per_class=2, image_size=16)
    message = _one_line(e)
    assert "ㅎ" in message and "U+314E" in message and "GlyphlabTest-Regular.ttf" in message and "ㄱ " not in message


@pytest.mark.parametrize("charset,words", [("ㄱ\u0301", "combining mark"), ("\u20dd", "combining mark"),
                                           ("ㄱ\u200b", "cannot be drawn alone"), ("ㄱㄱ", "repeated")])
def test_marks_and_invisible_characters_are_refused(font, charset, words):
    with pytest.raises(DataError) as e:
        script.build(charset=charset, fonts=[font], samples_per_class=2, image_size=16)
    assert words in _one_line(e)


def test_a_file_that_is_not_a_font_is_one_line(tmp_path):
    fake = tmp_path / "notes.ttf"
    fake.write_text("not a font")
    with pytest.raises(DataError) as e:
        script.build(charset="ㄱ", fonts=[str(fake)], samples_per_class=2, image_size=16)
    assert "notes.ttf is not a TrueType/OpenType font" in _one_line(e)
    with pytest.raises(DataError) as e:
        script.build(charset="ㄱ", fonts=[str(tmp_path / "missing.ttf")], samples_per_class=2, image_size=16)
    assert "found nothing at" in _one_line(e)


@pytest.mark.slow
def test_a_run_stops_with_the_builders_line(font, store, tmp_path):
    p = cli("data=script", "data.charset='ㄱㅎ'", f"data.fonts=['{font}']", "model=sklearn_mlp", cwd=tmp_path)
    assert p.returncode != 0
    assert "no font has 1 character(s) of data.charset: ㅎ" in p.stderr and "Traceback" not in p.stderr


def test_glyphlab_fonts_lists_which_fonts_cover_which_characters(font, capsys):
    assert script.main(["ㄱㅁㅎ", "--fonts", font]) == 1          # ㅎ has no font: status 1
    out, err = capsys.readouterr()
    assert "ㄱ  U+3131 HANGUL LETTER KIYEOK: 1  GlyphlabTest-Regular.ttf" in out
    assert "ㅎ  U+314E HANGUL LETTER HIEUH: 0  NO FONT" in out and "no font has: ㅎ" in err
    assert script.main(["ㄱㅁ", "--fonts", font]) == 0


@pytest.mark.parametrize("text", ["U+ZZZZ-U+0041", "u+0041-u+005A", "U+0041-", "U+41", "U+0041,Q"])
def test_a_charset_meant_as_a_range_that_is_not_one_is_named(text):
    with pytest.raises(DataError, match="expected ranges like U\\+1B05-U\\+1B33"):
        script.parse_charset(text)
