"""Calibration from pen trajectories: a tiny Omniglot-style strokes zip (and images zip) made here."""
import io
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from glyphlab.data import calibrate
from glyphlab.errors import DataError

# A two-stroke "character": a bar and a stem, in the 105 px box (x right, y down).
BAR = np.array([[30.0, 30.0], [75.0, 30.0]])
STEM = np.array([[52.0, 30.0], [52.0, 80.0]])


def drawing(rng, rotation_deg=0.0, end_noise=0.0, backwards=False):
    angle = np.deg2rad(rotation_deg)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    strokes = []
    for s in (STEM, BAR) if backwards else (BAR, STEM):  # stroke order differs between drawers
        pts = np.linspace(s[0], s[1], 12)
        pts = (pts - 52) @ rot.T + 52
        pts[[0, -1]] += rng.normal(0, end_noise, (2, 2))
        strokes.append(pts[::-1] if backwards else pts)
    return strokes


def stroke_text(strokes) -> str:
    lines = ["START"]
    for s in strokes:
        lines += [f"{x:.3f},{-y:.3f},{t}" for t, (x, y) in enumerate(s)] + ["BREAK"]  # y up in the files
    return "\n".join(lines) + "\n"


def png(strokes, width=3) -> bytes:
    img = Image.new("L", (105, 105), 255)
    draw = ImageDraw.Draw(img)
    for s in strokes:
        draw.line([tuple(p) for p in s], fill=0, width=width)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_fixture(tmp_path, rotation_deg=0.0, end_noise=0.0, width=3, n=12):
    rng = np.random.default_rng(0)
    strokes_zip, images_zip = tmp_path / "strokes_background_x.zip", tmp_path / "images_background_x.zip"
    with zipfile.ZipFile(strokes_zip, "w") as zs, zipfile.ZipFile(images_zip, "w") as zi:
        for alphabet in ("Korean", "Latin"):
            for d in range(1, n + 1):
                rot = rng.uniform(-rotation_deg, rotation_deg) if rotation_deg else 0.0
                strokes = drawing(rng, rot, end_noise, backwards=d % 3 == 0)
                if d == n:  # one drawer joins the two strokes
                    strokes = [np.concatenate(strokes)]
                name = f"{alphabet}/character01/0001_{d:02d}"
                zs.writestr(f"strokes_background_x/{name}.txt", stroke_text(strokes))
                zi.writestr(f"images_background_x/{name}.png", png(strokes, width))
    return strokes_zip, images_zip


def test_identical_drawings_measure_no_deviation(tmp_path):
    strokes_zip, images_zip = write_fixture(tmp_path)
    r = calibrate.calibrate(strokes_zip, images_zip, alphabets=["Korean"])
    assert r["characters"] == 1 and r["drawings"] == 12 and r["compared"] == 11
    for key in ("rotation_std", "slant_std", "aspect_std", "end_displacement_std", "stroke_angle_std", "bend_std"):
        assert r[key] < 1e-6, key  # drawn backwards or in another order, they still match the mean
    assert r["joined_fraction"] == pytest.approx(1 / 12)
    assert r["split_fraction"] == 0
    assert 2.5 < r["pen_px_median"] < 4.5  # a 3 px line
    assert r["pen_rel_median"] == pytest.approx(r["pen_px_median"] / 53, rel=0.1)


def test_rotation_and_end_noise_are_measured(tmp_path):
    strokes_zip, images_zip = write_fixture(tmp_path, rotation_deg=10.0, end_noise=1.5, n=20)
    r = calibrate.calibrate(strokes_zip, None, alphabets=["Korean"])
    assert 4 < r["rotation_std"] < 11  # uniform ±10° has robust std 7.4° (std 5.8°)
    assert r["end_displacement_std"] > 0.005
    assert "pen_px_median" not in r
    style = calibrate.implied_style(r)
    assert style["rotation"] == pytest.approx(r["rotation_std"] / calibrate.UNIFORM_ROBUST_STD, abs=0.01)
    assert style["scale"][0] < 1 < style["scale"][1]


def test_implied_amplitudes_give_back_the_uniform_draws():
    # The engine draws rotation, slant, scale and aspect uniformly in ±v; what calibrate measures of such
    # draws (robust stds) must imply v again, not √3 × the robust std (28 % wider).
    rng = np.random.default_rng(0)
    robust = lambda v: calibrate._robust_std(rng.uniform(-v, v, 200_000))  # noqa: E731
    r = {"rotation_std": robust(10.0), "slant_std": robust(0.2), "size_std": robust(0.1), "aspect_std": robust(0.3),
         "end_displacement_std": 0.01, "bend_std": 0.04, "stroke_move_std": 0.01, "stroke_angle_std": 5.0,
         "stroke_length_std": 0.09, "split_fraction": 0.2, "joined_fraction": 0.1, "strokes_mean": 2.5}
    style = calibrate.implied_style(r)
    assert style["rotation"] == pytest.approx(10.0, rel=0.02)
    assert style["slant"] == pytest.approx(0.2, rel=0.02)
    assert style["aspect"] == pytest.approx(0.3, rel=0.02)
    assert np.log(style["scale"]) == pytest.approx([-0.1, 0.1], rel=0.03)
    assert style["stroke_rotation"] == 5.0  # normal stds are taken as measured


def test_cli_prints_numbers_and_style(tmp_path, capsys):
    strokes_zip, _ = write_fixture(tmp_path, rotation_deg=5.0, end_noise=1.0)
    assert calibrate.main([str(strokes_zip), "--alphabets", "Korean"]) == 0  # images zip found beside it
    out = capsys.readouterr().out
    assert "calibration on Korean: 1 characters, 12 drawings" in out
    assert "implied style" in out and "pen_width" in out and "rotation_std" in out


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "not.zip"
    bad.write_text("hello")
    assert calibrate.main([str(bad)]) == 2
    assert "expected Omniglot's strokes zip" in capsys.readouterr().err
    strokes_zip, _ = write_fixture(tmp_path)
    with pytest.raises(DataError, match="found none"):
        calibrate.calibrate(strokes_zip, alphabets=["Balinese"])
    garbled = tmp_path / "strokes_garbled.zip"
    with zipfile.ZipFile(garbled, "w") as z:
        z.writestr("s/Korean/character01/0001_01.txt", "START\nnot numbers\nBREAK\n")
    with pytest.raises(DataError, match="expected 'x,y,ms' lines"):
        calibrate.calibrate(garbled)
