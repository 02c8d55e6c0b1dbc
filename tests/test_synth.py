"""The stroke engine and the synthetic sets: runes, kana, latin, digits_synth."""
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from glyphlab.data import GlyphSet, load
from glyphlab.data import alphabets, runes
from glyphlab.data.sources import kanjivg
from glyphlab.data.strokes import render_glyph, synthesize
from glyphlab.errors import DataError

CONF = Path(__file__).resolve().parents[1] / "conf"
PLAIN_STYLE = dict(jitter=0, wobble=0, rotation=0, slant=0, scale=[1, 1], shift=0, pen_width=[0.08, 0.08])


def ink_box_area(images: np.ndarray) -> np.ndarray:
    """Area of the bounding box of pixels >= 128, per image: float [N]."""
    areas = []
    for img in images:
        ys, xs = np.nonzero(img >= 128)
        areas.append((np.ptp(ys) + 1) * (np.ptp(xs) + 1) if len(ys) else 0)
    return np.array(areas, dtype=float)


def check_set(glyphs: GlyphSet, n_classes: int, per_class: int, size: int):
    assert glyphs.images.shape == (n_classes * per_class, size, size)
    assert glyphs.images.dtype == np.uint8 and glyphs.labels.dtype == np.int64
    assert glyphs.n_classes == n_classes
    assert np.array_equal(glyphs.class_counts(), np.full(n_classes, per_class))
    assert glyphs.images.reshape(len(glyphs), -1).max(1).min() >= 200   # ink in every image
    assert np.median(glyphs.images) == 0                                 # dark ground
    border = np.concatenate([glyphs.images[:, 0], glyphs.images[:, -1],
                             glyphs.images[:, :, 0], glyphs.images[:, :, -1]], axis=1)
    assert border.max() == 0                                             # the glyph stays inside


def test_rune_order_is_the_elder_futhark_row():
    assert runes.RUNES == "ᚠᚢᚦᚫᚱᚲᚷᚹᚺᚾᛁᛃᛇᛈᛉᛋᛏᛒᛖᛗᛚᛜᛞᛟ"
    assert set(runes.STROKES) == set(runes.RUNES)


def test_runes_shapes_labels_and_every_class_distinct():
    glyphs = runes.build(image_size=32, samples_per_class=6, seed=0)
    check_set(glyphs, 24, 6, 32)
    assert glyphs.classes == list(runes.RUNES)
    assert np.array_equal(glyphs.labels, np.repeat(np.arange(24), 6))
    # Without variation each rune is its own picture.
    plain = dict(jitter=0, wobble=0, rotation=0, slant=0, scale=[1, 1], shift=0, pen_width=[0.08, 0.08])
    clean = runes.build(image_size=32, samples_per_class=1, seed=0, **plain).images.reshape(24, -1)
    assert len({img.tobytes() for img in clean}) == 24


def test_same_seed_same_images_other_seed_other_images():
    a = runes.build(samples_per_class=4, seed=1)
    b = runes.build(samples_per_class=4, seed=1)
    c = runes.build(samples_per_class=4, seed=2)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_render_glyph_is_antialiased_and_seeded():
    stroke = [np.array([[0.2, 0.2], [0.8, 0.7]]), np.array([[0.5, 0.5]])]  # a line and a dot
    img = render_glyph(stroke, 3, 24, np.random.default_rng(0))
    assert img.shape == (3, 24, 24) and img.dtype == np.uint8
    assert ((img > 0) & (img < 255)).any() and (img == 255).any()
    assert np.array_equal(img, render_glyph(stroke, 3, 24, np.random.default_rng(0)))


def test_bad_style_is_a_data_error():
    with pytest.raises(DataError, match="pen_width"):
        runes.build(samples_per_class=2, pen_width=[0.1, 0.05])
    with pytest.raises(DataError, match="colour"):
        runes.build(samples_per_class=2, colour=1)
    with pytest.raises(DataError, match="per class"):
        synthesize([[np.zeros((2, 2))]], ["a", "b"], 2, 16, 0)


def test_runes_root_reads_the_folder_in_rune_order(monkeypatch, tmp_path):
    calls = {}

    def fake_read_folder(root, *, image_size, on_bad_file, class_order):
        calls.update(root=root, image_size=image_size, on_bad_file=on_bad_file, class_order=class_order)
        return GlyphSet(np.zeros((1, image_size, image_size), np.uint8), np.zeros(1), ["ᚠ"])

    monkeypatch.setattr("glyphlab.data.folder.read_folder", fake_read_folder)
    runes.build(image_size=28, root=tmp_path, on_bad_file="error")
    assert calls == dict(root=tmp_path, image_size=28, on_bad_file="error", class_order=list(runes.RUNES))


def test_kana_charsets():
    assert len(alphabets.HIRAGANA) == 83 and len(alphabets.KATAKANA) == 86
    named = {"all": alphabets.HIRAGANA + alphabets.KATAKANA, "hiragana": alphabets.HIRAGANA,
             "katakana": alphabets.KATAKANA}
    assert alphabets.resolve_charset("hiragana", named) == alphabets.HIRAGANA
    assert set(alphabets.HIRAGANA + alphabets.KATAKANA) <= set(kanjivg.available_characters())
    glyphs = alphabets.build_kana(image_size=32, samples_per_class=3, seed=0, charset="katakana")
    check_set(glyphs, 86, 3, 32)
    assert glyphs.classes == list(alphabets.KATAKANA)
    hira = alphabets.build_kana(image_size=32, samples_per_class=3, seed=0, charset="hiragana")
    assert hira.classes == list(alphabets.HIRAGANA)


def test_explicit_charset_keeps_order_and_is_independent_of_other_classes():
    some = alphabets.build_kana(image_size=32, samples_per_class=4, seed=3, charset="ンア イ")
    assert some.classes == ["ン", "ア", "イ"]
    check_set(some, 3, 4, 32)
    alone = alphabets.build_kana(image_size=32, samples_per_class=4, seed=3, charset="イ")
    assert np.array_equal(alone.images, some.images[some.labels == 2])


def test_unknown_or_repeated_characters_are_named():
    with pytest.raises(DataError, match="☃"):
        alphabets.build_kana(samples_per_class=2, charset="ア☃")
    with pytest.raises(DataError, match="ア"):
        alphabets.build_kana(samples_per_class=2, charset="アイア")
    with pytest.raises(DataError, match="renderer"):
        alphabets.build_kana(samples_per_class=2, renderer="crayon")


def test_small_kana_stay_smaller_than_their_full_size_twins():
    pairs = "ぁあっつャヤゃやョヨ"
    glyphs = alphabets.build_kana(image_size=48, samples_per_class=20, seed=0, charset=pairs)
    area = np.array([ink_box_area(glyphs.images[glyphs.labels == k]).mean() for k in range(len(pairs))])
    small, full = area[0::2], area[1::2]
    assert (small < 0.75 * full).all(), dict(zip(pairs, area.round()))


def test_kana_fonts_renderer_is_delegated(monkeypatch):
    calls = {}

    def render_fonts(chars, *, image_size, samples_per_class, seed, font_files):
        calls.update(chars=chars, image_size=image_size, samples_per_class=samples_per_class,
                     seed=seed, font_files=font_files)
        return "from fonts"

    monkeypatch.setitem(sys.modules, "glyphlab.data.font_images", types.SimpleNamespace(render_fonts=render_fonts))
    out = alphabets.build_kana(image_size=40, samples_per_class=5, seed=7, charset="アイ",
                             renderer="fonts", font_files=["x.ttf"])
    assert out == "from fonts"
    assert calls == dict(chars="アイ", image_size=40, samples_per_class=5, seed=7, font_files=["x.ttf"])


def test_latin_and_digits():
    upper = alphabets.build_latin(image_size=32, samples_per_class=3, seed=0, charset="upper")
    check_set(upper, 26, 3, 32)
    assert "".join(upper.classes) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert "".join(alphabets.build_latin(samples_per_class=1, charset="lower").classes) == alphabets.LOWER
    both = alphabets.build_latin(image_size=32, samples_per_class=10, seed=0, charset="oO")
    assert both.classes == ["o", "O"]
    assert ink_box_area(both.images[:10]).mean() < 0.7 * ink_box_area(both.images[10:]).mean()
    digits = alphabets.build_digits(image_size=28, samples_per_class=3, seed=0)
    check_set(digits, 10, 3, 28)
    assert "".join(digits.classes) == "0123456789"


@pytest.mark.slow
@pytest.mark.parametrize("name,n_classes", [("runes", 24), ("kana", 169), ("latin", 52), ("digits_synth", 10),
                                            ("greek", 24)])
def test_data_yaml_keys_match_the_builder(name, n_classes):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose("config", overrides=[f"data={name}", "data.samples_per_class=3", "data.image_size=24"])
    glyphs = load(OmegaConf.to_container(cfg.data, resolve=True))
    assert glyphs.n_classes == n_classes and len(glyphs) == 3 * n_classes


def test_fit_pen_relative_and_supersample():
    small = [np.array([[0.45, 0.45], [0.55, 0.55]]), np.array([[0.45, 0.55], [0.55, 0.45]])]  # a small x
    big = [s * 4 - 1.5 for s in small]                                                          # the same x, 4x
    still = dict(PLAIN_STYLE, pen_width=[0.08, 0.08])

    def ink(strokes, **style):
        return render_glyph(strokes, 1, 48, np.random.default_rng(0), **{**still, **style})[0].astype(float)

    # fit: any glyph is drawn at the same size, so the small and the big x give the same picture
    assert np.abs(ink(small, fit=0.6) - ink(big, fit=0.6)).max() <= 1
    rows = np.flatnonzero((ink(small, fit=0.6) > 128).any(1))
    assert abs((rows[-1] - rows[0] + 1) - 0.6 * 48) <= 4
    # pen_relative: the pen is a fraction of the glyph, so the 4x smaller x has 1/16 of the ink, not 1/4
    ratio = ink(small, pen_relative=True).sum() / ink(big, pen_relative=True).sum()
    assert 0.04 < ratio < 0.12, ratio
    assert 0.2 < ink(small).sum() / ink(big).sum() < 0.35
    # supersample: the same ink (area average), smoother edges: more grey levels
    thin = dict(pen_width=[0.03, 0.03])
    one, three = ink(big, **thin), ink(big, supersample=3, **thin)
    assert abs(one.sum() - three.sum()) < 0.1 * one.sum()
    assert len(np.unique(three)) > len(np.unique(one))
    with pytest.raises(DataError, match="supersample"):
        ink(big, supersample=0)


def test_whole_strokes_move_turn_and_scale_seeded():
    glyph = runes.rune_strokes("ᚠ")
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    moved = dict(PLAIN_STYLE, stroke_shift=0.03, stroke_rotation=8, stroke_scale=0.1, aspect=0.3)
    a, b = render_glyph(glyph, 4, 32, rng(), **moved), render_glyph(glyph, 4, 32, rng(), **moved)
    plain = render_glyph(glyph, 4, 32, rng(), **PLAIN_STYLE)
    assert np.array_equal(a, b) and not np.array_equal(a, plain)
    assert len({img.tobytes() for img in a}) == 4 and len({img.tobytes() for img in plain}) == 1
    with pytest.raises(DataError, match="stroke_rotation"):
        render_glyph(glyph, 1, 32, rng(), stroke_rotation=-1)


def test_low_res_blurs_a_share_of_variants_at_full_contrast():
    glyph = runes.rune_strokes("ᚠ")
    thin = dict(PLAIN_STYLE, pen_width=[0.03, 0.03])
    sharp = render_glyph(glyph, 6, 32, np.random.default_rng(1), **thin)
    blurred = render_glyph(glyph, 6, 32, np.random.default_rng(1), low_res=[8, 8], low_res_p=1.0, **thin)
    assert (blurred.reshape(6, -1).max(1) == 255).all()                 # stretched back to full ink
    assert (blurred > 0).sum() > 2 * (sharp > 0).sum()                   # 8x8 cells spread the ink
    some = render_glyph(glyph, 40, 32, np.random.default_rng(1), low_res=[8, 12], low_res_p=0.5, **thin)
    assert 5 < sum(not np.array_equal(img, sharp[0]) for img in some) < 35
    with pytest.raises(DataError, match="low_res_p"):
        render_glyph(glyph, 1, 32, np.random.default_rng(1), low_res_p=2)


def test_low_res_pick_each_uses_only_the_listed_sides():
    from glyphlab.data.raster import low_res

    glyph = runes.rune_strokes("ᚠ")
    sharp = render_glyph(glyph, 30, 32, np.random.default_rng(1), **dict(PLAIN_STYLE, pen_width=[0.03, 0.03]))
    at = {side: low_res(sharp, np.random.default_rng(0), [side, side], 1.0) for side in range(4, 17)}
    each = low_res(sharp, np.random.default_rng(0), [4, 16], 1.0, pick="each")
    made = [[side for side in at if np.array_equal(at[side][i], each[i])] for i in range(30)]
    assert all(m in ([4], [16]) for m in made) and {m[0] for m in made} == {4, 16}
    spread = low_res(sharp, np.random.default_rng(0), [4, 16], 1.0)    # range: the sides between appear too
    assert any(not any(np.array_equal(at[s][i], spread[i]) for s in (4, 16)) for i in range(30))
    with pytest.raises(DataError, match="low_res_pick"):
        render_glyph(glyph, 1, 32, np.random.default_rng(1), low_res_pick="some")
    with pytest.raises(DataError, match="pixel sides"):
        render_glyph(glyph, 1, 32, np.random.default_rng(1), low_res=[8, 0.5], low_res_pick="each")


def test_bitmap_low_res_makes_digits_as_optdigits_did():
    from glyphlab.data.digits import upscale
    from glyphlab.data.raster import bitmap_counts

    bar = np.zeros((96, 96), np.uint8)
    bar[8:88, 40:52] = 255                      # a 1 as a bar: 80 tall, 12 wide, off-centre
    # size-normalised into a 32x32 bitmap (aspect kept): 32 tall, 5 wide, centred at columns 13..17;
    # the 4x4 blocks of columns 12..15 and 16..19 hold 3 and 2 on-columns of 4 rows each
    counts = np.zeros((1, 8, 8), np.float32)
    counts[0, :, 3], counts[0, :, 4] = 12, 8
    assert np.array_equal(bitmap_counts(bar, 8, 32), upscale(counts, 32)[0])

    glyph = runes.rune_strokes("ᚠ")
    style = dict(PLAIN_STYLE, fit=0.6, pen_relative=True, supersample=3, low_res=[8, 8], low_res_p=1.0)
    average = render_glyph(glyph, 4, 32, np.random.default_rng(1), **style)
    bitmap = render_glyph(glyph, 4, 32, np.random.default_rng(1), low_res_mode="bitmap", **style)
    rows = lambda images: [np.ptp(np.flatnonzero(img.max(1) >= 64)) + 1 for img in images]  # noqa: E731
    assert min(rows(bitmap)) >= 26 > max(rows(average))  # size-normalised to the frame, as NIST's bitmaps are
    inked = render_glyph(glyph, 4, 32, np.random.default_rng(1), low_res_mode="bitmap", **style)
    assert np.array_equal(inked, bitmap)                                 # same random stream, same images
    with pytest.raises(DataError, match="low_res_mode"):
        render_glyph(glyph, 1, 32, np.random.default_rng(1), low_res_mode="scan")


def test_even_ink_grows_thin_strokes_and_thins_thick_ones_to_the_share():
    from glyphlab.data.digits import even_ink

    line = np.zeros((32, 32), bool)
    line[4:28, 15] = True                                                # 24 of 1,024 pixels on
    from scipy.ndimage import binary_dilation

    steps = [line, binary_dilation(line), binary_dilation(line, iterations=2), binary_dilation(line, iterations=3)]
    assert [int(b.sum()) for b in steps] == [24, 74, 128, 186]           # a pixel more on every side per step
    assert np.array_equal(even_ink(line, 0.1), steps[2])                  # 102 on-pixels wanted: 128 is closest
    assert np.array_equal(even_ink(line, 0.2), steps[3])
    block = np.zeros((32, 32), bool)
    block[4:28, 8:24] = True
    thinned = even_ink(block, 0.1)
    assert thinned.sum() < block.sum() and thinned.any() and not (thinned & ~block).any()
    assert even_ink(line, 0.0).any()                                     # never emptied


def test_join_and_split_rewrite_the_strokes():
    from glyphlab.data.handwriting import rewrite as _rewrite

    corner = [np.array([[0.2, 0.2], [0.2, 0.8]]), np.array([[0.21, 0.8], [0.8, 0.8]]),  # drawn on: joinable
              np.array([[0.8, 0.2], [0.9, 0.2]])]                                      # far away: never joined
    rng = np.random.default_rng(0)
    joined = _rewrite(corner, rng, join=1.0, split=0.0)
    assert [len(s) for s in joined] == [4, 2]
    split = _rewrite(corner, rng, join=0.0, split=1.0)
    assert len(split) == 6
    for a, b in zip(split[0::2], split[1::2]):
        assert np.array_equal(a[-1], b[0])                                     # the pieces meet at the cut
    assert np.array_equal(_rewrite(corner, rng, 0.0, 0.0)[1], corner[1])
    moved = dict(PLAIN_STYLE, jitter=0.03)
    glyphs = synthesize([corner], ["L"], 12, 32, 0, join=0.5, split=0.5, **moved)
    assert glyphs.meta["prototypes"] == {"L": 1} and glyphs.images.reshape(12, -1).max(1).min() > 200
