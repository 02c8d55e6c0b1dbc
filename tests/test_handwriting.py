"""The handwriting model: one config group (conf/handwriting/) for every synthetic data option, and
the stroke rewrites it drives (joins, splits, sparse pen traces, low-res copies, small kana's size)."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import ROOT, compose
from glyphlab import data
from glyphlab.data.handwriting import SPARSE_POINTS, blend, blend_pairs, sparse_trace
from glyphlab.data.strokes import STYLE_KEYS, render_glyph, synthesize
from glyphlab.errors import DataError

SYNTHETIC = ("runes", "kana", "latin", "greek", "digits_synth", "script")
CORNER = [np.array([[0.2, 0.2], [0.8, 0.2]]), np.array([[0.8, 0.2], [0.8, 0.8]])]


def builder(overrides) -> dict:
    cfg = compose(overrides)
    return data.builder_config(OmegaConf.to_container(cfg.data, resolve=True))


@pytest.mark.parametrize("name", SYNTHETIC)
def test_a_data_option_says_what_is_written_not_how(name):
    text = (ROOT / "conf" / "data" / f"{name}.yaml").read_text(encoding="utf-8")
    keys = {line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "#"))}
    assert not keys & set(STYLE_KEYS), f"conf/data/{name}.yaml sets handwriting keys: {keys & set(STYLE_KEYS)}"
    assert "handwriting" in keys


@pytest.mark.parametrize("option", ["neat", "natural"])
def test_every_handwriting_option_reaches_every_synthetic_builder(option):
    own = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "handwriting" / f"{option}.yaml"))
    assert set(own) == set(STYLE_KEYS)                       # every key of the stroke engine, nothing else
    for name in SYNTHETIC:
        spec = builder([f"data={name}", f"handwriting={option}"])
        assert {k: spec[k] for k in own} == own, name


def test_read_real_writes_naturally_and_a_key_changes_the_cache():
    natural, neat = builder(["data=greek", "+experiment=read_real"]), builder(["data=greek"])
    assert natural["join"] > 0 and natural["low_res_p"] > 0 and natural["supersample"] == 3
    assert neat["join"] == 0 and neat["low_res_p"] == 0
    a = compose(["data=latin"]).data
    b = compose(["data=latin", "handwriting.jitter=0.05"]).data
    key = lambda c: data.cache_key(OmegaConf.to_container(c, resolve=True))  # noqa: E731
    assert key(a) != key(b)


def test_sparse_trace_is_one_polyline_through_few_points():
    rng = np.random.default_rng(0)
    for _ in range(20):
        (trace,) = sparse_trace(CORNER, rng)
        assert SPARSE_POINTS[0] <= len(trace) <= SPARSE_POINTS[1]
        assert np.allclose(trace[0], [0.2, 0.2]) and np.allclose(trace[-1], [0.8, 0.8])
    assert len(sparse_trace([np.array([[0.5, 0.5]])], rng)[0]) == 1   # a dot stays a dot


def test_sparse_share_changes_only_its_images_and_is_checked():
    plain = synthesize([CORNER], ["L"], 40, 24, seed=1)
    sparse = synthesize([CORNER], ["L"], 40, 24, seed=1, sparse_p=1.0)
    assert not np.array_equal(plain.images, sparse.images)
    assert (sparse.images.reshape(40, -1).max(1) > 0).all()
    with pytest.raises(DataError, match="sparse_p"):
        synthesize([CORNER], ["L"], 4, 24, seed=1, sparse_p=1.5)


def test_prototypes_blend_stroke_to_stroke_whatever_their_order_and_direction():
    # The same corner written as its second stroke first, each stroke drawn the other way, and a little wider.
    other = [np.array([[0.85, 0.8], [0.85, 0.2]]), np.array([[0.85, 0.2], [0.2, 0.2]])]
    far = [np.array([[0.1, 0.9], [0.1, 0.5]]), np.array([[0.5, 0.9], [0.9, 0.9]])]  # two strokes, nowhere near
    three = [*CORNER, np.array([[0.5, 0.5]])]
    pairs = blend_pairs([CORNER, other, far, three, lambda rng: CORNER])
    assert pairs == [(0, 1, [(1, True), (0, True)])]   # not `far` (strokes do not correspond), `three`, a family
    a, b, match = pairs[0]
    half = blend(CORNER, other, match, 0.5)
    assert np.allclose(blend(CORNER, other, match, 0.0)[0][[0, -1]], CORNER[0])
    assert np.allclose(half[0][[0, -1]], [[0.2, 0.2], [0.825, 0.2]])          # top bar: halfway to 0.85
    assert np.allclose(half[1][[0, -1]], [[0.825, 0.2], [0.825, 0.8]])        # the side moved with it
    assert len(blend([np.array([[0.5, 0.5]])], [np.array([[0.6, 0.5]])], [(0, False)], 0.5)[0]) == 1  # dots


def test_blend_share_draws_between_prototypes_and_leaves_the_rest_alone():
    other = [np.array([[0.85, 0.8], [0.85, 0.2]]), np.array([[0.85, 0.2], [0.2, 0.2]])]
    plain = synthesize([[CORNER, other]], ["L"], 40, 24, seed=1)
    assert np.array_equal(plain.images, synthesize([[CORNER, other]], ["L"], 40, 24, seed=1, blend=0.0).images)
    mixed = synthesize([[CORNER, other]], ["L"], 40, 24, seed=1, blend=1.0)
    assert not np.array_equal(plain.images, mixed.images) and (mixed.images.reshape(40, -1).max(1) > 0).all()
    one = synthesize([CORNER], ["L"], 40, 24, seed=1)   # no pair to blend: as before
    assert np.array_equal(one.images, synthesize([CORNER], ["L"], 40, 24, seed=1, blend=1.0).images)
    with pytest.raises(DataError, match="blend"):
        synthesize([CORNER], ["L"], 4, 24, seed=1, blend=-0.1)


def test_low_res_modes_can_be_mixed():
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    style = dict(low_res=[8, 8], low_res_p=1.0, supersample=2)
    both = render_glyph(CORNER, 30, 32, rng(), low_res_mode=["average", "bitmap"], **style)
    avg = render_glyph(CORNER, 30, 32, rng(), low_res_mode="average", **style)
    assert both.shape == avg.shape and not np.array_equal(both, avg)
    with pytest.raises(DataError, match="low_res_mode"):
        render_glyph(CORNER, 1, 32, rng(), low_res_mode=["average", "scan"])


def test_small_kana_stay_small_when_glyphs_are_fitted_to_the_box():
    from glyphlab.data.alphabets import build_kana

    glyphs = build_kana(charset="ぁあ", samples_per_class=12, image_size=32, fit=0.75, rotation=0, slant=0,
                        scale=[1, 1], aspect=0)
    heights = [np.mean([np.ptp(np.nonzero(im > 64)[0]) for im in glyphs.images[glyphs.labels == k]]) for k in (0, 1)]
    assert heights[0] < 0.85 * heights[1]                      # ぁ is written smaller than あ


def strokes_zip(path, alphabet: str, n: int = 8, seed: int = 0):
    """A tiny Omniglot strokes zip: one two-stroke character drawn by ``n`` drawers, slightly turned."""
    import zipfile

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as z:
        for d in range(1, n + 1):
            turn = np.deg2rad(rng.uniform(-6, 6))
            rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
            lines = ["START"]
            for a, b in (((20, 30), (85, 30)), ((52, 30), (52, 90))):
                pts = (np.linspace(a, b, 10) - 52) @ rot.T + 52
                lines += [f"{x:.3f},{-y:.3f},{t}" for t, (x, y) in enumerate(pts)] + ["BREAK"]
            z.writestr(f"strokes_background_x/{alphabet}/character01/0001_{d:02d}.txt", "\n".join(lines) + "\n")
    return path


def test_calibration_pools_several_zips(tmp_path):
    from glyphlab.data import calibrate

    one = strokes_zip(tmp_path / "strokes_one.zip", "Korean")
    two = strokes_zip(tmp_path / "strokes_two.zip", "Japanese_(katakana)", seed=1)
    single = calibrate.calibrate(one, alphabets=[])
    pooled = calibrate.calibrate([one, two], alphabets=[])
    assert pooled["characters"] == 2 and pooled["drawings"] == 2 * single["drawings"] == 16
    assert pooled["rotation_std"] > 0
    assert calibrate.main([str(one), str(two), "--alphabets", "all"]) == 0
    assert calibrate.main([str(one), str(two), "--images", str(one)]) == 2   # one images zip for two
