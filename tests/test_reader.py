"""The one image reader (glyphlab.data.reader): transparency, real paper (grey, shaded, noisy, low
contrast), oversize images; and a logged model that reads grey-paper files exactly as its run did.
Every fixture is drawn here: one anti-aliased glyph, put on each kind of paper."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps
from scipy.ndimage import binary_dilation

from helpers import png_header
from glyphlab.data import normalize_box
from glyphlab.data.reader import load_image
from glyphlab.errors import DataError

SIDE = 96    # the fixtures' side
SIZE = 32    # the side they are read at


def coverage(stroke: int = 6) -> np.ndarray:
    """float [SIDE, SIDE] in 0..1: an anti-aliased glyph (a slanted stroke through a ring), how much of
    each pixel the pen covered (drawn at 4x and averaged down)."""
    big = Image.new("L", (4 * SIDE, 4 * SIDE), 0)
    pen = ImageDraw.Draw(big)
    pen.line([(84, 60), (300, 324)], fill=255, width=4 * stroke)
    pen.ellipse([96, 84, 288, 300], outline=255, width=4 * stroke)
    return np.asarray(big.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float64) / 255


INK = coverage()
X = np.linspace(0, 1, SIDE)[None, :]      # left to right
Y = np.linspace(0, 1, SIDE)[:, None]      # top to bottom


def noise(sigma: float, shape=(SIDE, SIDE)) -> np.ndarray:
    return np.random.default_rng(7).normal(0, sigma, shape)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gray_png(values: np.ndarray) -> bytes:
    return encode(Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8)))


def read(data: bytes) -> np.ndarray:
    return load_image(io.BytesIO(data), SIZE)[0]


CLEAN = gray_png(255 * (1 - INK))   # black ink on white paper: what every other fixture should read as
THIN = coverage(stroke=3)
CLEAN_THIN = gray_png(255 * (1 - THIN))


def ink_box(image: np.ndarray, level: int = 48) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels above ``level`` (normalize_box's default threshold)."""
    rows, cols = np.flatnonzero((image > level).any(1)), np.flatnonzero((image > level).any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def iou(a: np.ndarray, b: np.ndarray, level: int = 100) -> float:
    a, b = a > level, b > level
    return (a & b).sum() / max(1, (a | b).sum())


def assert_reads_as_clean(image: np.ndarray, thin: bool = False) -> None:
    """``image`` is the clean glyph (``thin``: its 3-pixel-pen version): the ink where it was, a black
    background, the same box (to a pixel; for the thick glyph, the same box-normalised glyph too:
    a pixel more of box shifts a thin glyph's 2-pixel strokes off themselves)."""
    clean = read(CLEAN_THIN if thin else CLEAN)
    assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE)
    assert iou(image, clean) > 0.8, iou(image, clean)
    background = image[~binary_dilation(clean > 0, iterations=2)]       # 2 pixels away from any ink
    assert background.max() < 24 and background.mean() < 1, (background.max(), background.mean())
    assert image.max() >= 240                                             # the ink at full contrast
    assert np.abs(np.subtract(ink_box(image), ink_box(clean))).max() <= 1, (ink_box(image), ink_box(clean))
    boxed, clean_boxed = normalize_box(image[None])[0], normalize_box(clean[None])[0]
    assert thin or iou(boxed, clean_boxed) > 0.8, iou(boxed, clean_boxed)


# ---------------------------------------------------------------------- transparency (issue 26 item 1)

def fringed(ink=INK, fringe_colour: float = 235.0) -> tuple[np.ndarray, np.ndarray]:
    """(gray, alpha) 0..255 of dark ink cut out of its paper by a "remove background" tool: the thin
    strokes keep a fully opaque fringe of the old light paper around a dark core."""
    fringe = binary_dilation(ink > 0.05, iterations=3)
    gray = fringe_colour * (1 - ink)
    return gray, np.where(fringe, 255.0, 0.0)


def rgba(gray, alpha) -> Image.Image:
    g = Image.fromarray(np.clip(np.round(gray), 0, 255).astype(np.uint8))
    return Image.merge("RGBA", [g, g, g, Image.fromarray(np.clip(np.round(alpha), 0, 255).astype(np.uint8))])


def transparent_gif() -> bytes:
    """The fringed glyph as a palette GIF whose background colour is the transparency index."""
    gray, alpha = fringed(THIN)
    values = np.where(alpha > 0, np.round(gray / 16) * 16, 1).astype(np.uint8)   # 1: the transparent colour
    image = Image.fromarray(values).convert("P")
    index = image.getpixel((0, 0))
    return encode(image, "GIF", transparency=index)


TRANSPARENT = {
    "RGBA dark ink with a light fringe": lambda: encode(rgba(*fringed())),
    "RGBA thin dark ink with a light fringe": lambda: encode(rgba(*fringed(THIN))),
    "LA dark anti-aliased ink (alpha matte)": lambda: encode(
        Image.merge("LA", [Image.new("L", (SIDE, SIDE), 0), Image.fromarray(np.uint8(np.round(255 * INK)))])),
    "RGBA pencil-grey ink on transparency": lambda: encode(rgba(np.full((SIDE, SIDE), 140.0), 255 * INK)),
    "RGBA light ink on transparency (a dark theme's drawing)": lambda: encode(rgba(np.full((SIDE, SIDE), 255.0), 255 * INK)),
    "P GIF with a transparency index": transparent_gif,
    "RGBA fully opaque": lambda: encode(rgba(255 * (1 - INK), np.full((SIDE, SIDE), 255.0))),
    "RGBA evenly half transparent": lambda: encode(rgba(255 * (1 - INK), np.full((SIDE, SIDE), 128.0))),
    "RGBA fully transparent, colours kept": lambda: encode(rgba(255 * (1 - INK), np.zeros((SIDE, SIDE)))),
}


@pytest.mark.parametrize("name", TRANSPARENT)
def test_transparency_is_composited_on_the_paper_the_ink_contrasts_with(name):
    """Dark ink on transparency goes on white paper (then turned to bright ink on black), light ink on
    black; a fringe of old paper around thin strokes does not make them light ink (hollow outlines);
    an alpha channel that holds no drawing (constant) is ignored."""
    assert_reads_as_clean(read(TRANSPARENT[name]()), thin="thin" in name or "GIF" in name)


def test_the_dark_fringed_glyph_is_not_read_as_a_hollow_outline():
    image = read(encode(rgba(*fringed(THIN))))
    core = read(CLEAN_THIN) > 200
    assert image[core].min() > 100          # the strokes' middle is ink, not a hole between two edges


# ---------------------------------------------------------------------- real paper (issue 25 item 5)

def shadow(x):
    return 1 / (1 + np.exp(-(x - 0.6) * 12))


PAPERS = {
    "grey paper 190, ink 90": lambda: 190 - 100 * INK,
    "left-to-right gradient 230 to 110": lambda: (230 - 120 * X) * (1 - 0.6 * INK),
    "a shadow over the right part": lambda: (220 - 110 * shadow(X)) * (1 - 0.55 * INK),
    "low contrast, paper 150, ink 110": lambda: 150 - 40 * INK + noise(2),
    "noisy phone photo": lambda: 180 - 90 * INK + noise(12),
    "dim, shaded and noisy": lambda: (170 - 60 * X - 20 * Y) - 45 * INK + noise(6),
    "dark grey paper 110, ink 40": lambda: 110 - 70 * INK,
    "vignetted": lambda: (200 - 90 * ((X - .5) ** 2 + (Y - .5) ** 2)) * (1 - 0.6 * INK),
    "chalk on a shaded board": lambda: 40 + 50 * X + 150 * INK,
}


@pytest.mark.parametrize("paper", PAPERS.values(), ids=PAPERS.keys())
def test_paper_is_levelled_to_black_and_the_ink_kept(paper):
    assert_reads_as_clean(read(gray_png(paper())))


@pytest.mark.parametrize("photo", [lambda: 190 - 100 * INK, lambda: 150 - 40 * INK], ids=["grey", "low contrast"])
def test_grey_paper_as_a_jpeg_is_levelled_too(photo):
    assert_reads_as_clean(read(encode(Image.fromarray(np.uint8(np.round(photo()))), "JPEG", quality=90)))


def test_clean_images_come_through_unchanged():
    """White paper and black ink, or MNIST's white ink on black: exactly the plain inversion (or not),
    padding and Lanczos resize the reader always did."""
    dark_on_white = np.uint8(np.round(255 * (1 - INK[:, 10:80])))      # not square: padded
    plain = np.asarray(ImageOps.pad(Image.fromarray(255 - dark_on_white), (SIZE, SIZE),
                                    method=Image.Resampling.LANCZOS, color=0))
    assert np.array_equal(read(encode(Image.fromarray(dark_on_white))), plain)
    assert np.array_equal(read(encode(Image.fromarray(255 - dark_on_white))), plain)
    bold = np.full((40, 40), 255, np.uint8)                               # a bold glyph cropped tight:
    bold[3:37, 3:37], bold[12:28, 12:28] = 0, 255                         # ink on 56% of it, paper on its border
    plain = np.asarray(ImageOps.pad(Image.fromarray(255 - bold), (SIZE, SIZE), method=Image.Resampling.LANCZOS))
    assert np.array_equal(read(encode(Image.fromarray(bold))), plain)
    assert np.array_equal(read(encode(Image.fromarray(255 - bold))), plain)
    grey = read(gray_png(180 - 0.4 * (255 - bold.astype(float)) + noise(3, bold.shape)))   # and on grey paper
    assert iou(grey, plain) > 0.9 and grey[:2].max() == 0 and grey[11:21, 11:21].max() < 48   # hole: paper
    digit = np.zeros((8, 8), np.uint8)                                    # sklearn's digits: 8x8, upscaled
    digit[1:7, 3:5] = 255
    digit[1:3, 2] = 128
    assert np.array_equal(read(encode(Image.fromarray(digit))),
                          np.asarray(Image.fromarray(digit).resize((SIZE, SIZE), Image.Resampling.LANCZOS)))


@pytest.mark.parametrize("blank", [lambda: np.full((40, 50), 255.0), lambda: 180 + noise(10, (40, 50)),
                                   lambda: 90 + 40 * X[:, :50] + np.zeros((40, 1))], ids=["white", "noisy", "shaded"])
def test_blank_paper_stays_blank(blank):
    assert read(gray_png(blank())).max() == 0


def test_a_folder_of_grey_photos_reads_like_a_folder_of_clean_scans(tmp_path):
    from glyphlab.data.folder import read_folder

    (tmp_path / "o").mkdir()
    for i, paper in enumerate(PAPERS.values()):
        (tmp_path / "o" / f"{i}.png").write_bytes(gray_png(paper()))
    glyphs = read_folder(tmp_path, image_size=SIZE)
    assert len(glyphs) == len(PAPERS) and glyphs.meta["inverted"] == len(PAPERS) - 1   # all but the chalk
    for image in glyphs.images:
        assert_reads_as_clean(image)


# ---------------------------------------------------------------------- oversize images (issue 26 item 6)

@pytest.mark.parametrize("size", [(7000, 7000), (4097, 4096), (100_000, 100_000)])
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(size):
    from PIL import Image as PILImage

    from glyphlab.data import reader
    from glyphlab.errors import ImageTooLargeError

    assert reader.MAX_PIXELS == 4096 * 4096 and PILImage.MAX_IMAGE_PIXELS == reader.MAX_PIXELS
    with pytest.raises(ImageTooLargeError) as refused:
        read(png_header(*size))
    message = str(refused.value)
    assert "\n" not in message and "refused before decoding" in message and "4096x4096" in message
    assert f"{size[0]}x{size[1]}" in message or f"{size[0] * size[1]:,} pixels" in message
    assert isinstance(refused.value, DataError) and isinstance(refused.value, ValueError)   # a 400 where not mapped


def test_a_folder_skips_an_oversize_file_and_names_it(tmp_path, caplog):
    from glyphlab.data.folder import read_folder

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ok.png").write_bytes(CLEAN)
    (tmp_path / "a" / "huge.png").write_bytes(png_header(7000, 7000))
    glyphs = read_folder(tmp_path, image_size=SIZE)
    assert glyphs.meta["skipped_files"] == ["a/huge.png"] and len(glyphs) == 1
    assert "a/huge.png (claims 49,000,000 pixels, more than the limit of 16,777,216 pixels" in caplog.text
    with pytest.raises(DataError) as stopped:
        read_folder(tmp_path, image_size=SIZE, on_bad_file="error")
    assert "a/huge.png (claims 49,000,000 pixels" in str(stopped.value) and "\n" not in str(stopped.value)


def test_predict_and_the_served_model_refuse_it_with_a_kind_a_server_maps_to_413(tmp_path):
    from glyphlab.errors import ImageTooLargeError
    from glyphlab.predict import check_image, read_image_file
    from glyphlab.serving import model_view

    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(5000, 4000))   # over glyphlab's limit, under Pillow's (twice it)
    with pytest.raises(ImageTooLargeError, match=f"^{huge} claims 5000x4000 pixels"):
        read_image_file(huge)
    with pytest.raises(ImageTooLargeError, match="^the drawing claims 5000x4000"):
        check_image(huge.read_bytes(), "the drawing")                     # what the draw server calls
    with pytest.raises(ImageTooLargeError, match="^image 3: claims 5000x4000"):
        model_view(huge.read_bytes(), {"image_size": 16}, where="image 3")
    with pytest.raises(ImageTooLargeError, match="^image 0: claims 7000x3000"):   # position-wise: squeezed first
        model_view(png_header(7000, 3000), {"image_size": 16, "n_positions": 3}, where="image 0")
    with pytest.raises(DataError) as not_image:
        check_image(b"not an image", "x.png")
    assert not isinstance(not_image.value, ImageTooLargeError)           # a 400, not a 413


# ---------------------------------------------------------------------- the served model reads as its run (issue 25 item 6)

RUNES = "ᚠᚢᚦᚫᚱᚲᚷᚹᚺᚾᛁᛃᛇᛈᛉᛋᛏᛒᛖᛗᛚᛜᛞᛟ"


def grey_paper_runes(root, per_class: int = 2):
    """Fresh handwritten runes photographed on grey, shaded, noisy paper: root/<rune>/<i>.png."""
    from glyphlab.data import runes
    from glyphlab.data.strokes import render_glyph

    rng = np.random.default_rng(11)
    paths = []
    for rune in RUNES:
        ink = render_glyph(runes.rune_strokes(rune), per_class, 48, rng, rotation=3.0, slant=0.05,
                           jitter=0.01, wobble=0.02).astype(np.float64) / 255   # [per_class, 48, 48]
        for i, glyph in enumerate(ink):
            x = np.linspace(0, 1, 48)[None, :]
            photo = (200 - 50 * x) * (1 - 0.5 * glyph) + rng.normal(0, 4, glyph.shape)
            path = root / rune / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gray_png(photo))
            paths.append((rune, path))
    return paths


@pytest.mark.slow
def test_the_served_model_predict_and_the_runs_eval_read_grey_paper_alike(tmp_path, monkeypatch, capsys):
    """A run trained with data.normalize=box and tested on a folder of grey-paper photos (eval_data):
    its logged pyfunc and `glyphlab predict` on the same files give the run's own eval predictions,
    and those are good (grey paper no longer reads as a page full of ink)."""
    import mlflow
    import pandas as pd

    from helpers import logged_run
    from glyphlab.predict import main

    photos = grey_paper_runes(tmp_path / "grey")
    uri, run_id = logged_run(tmp_path / "run", [
        "model=sklearn_mlp", "data=runes", "data.samples_per_class=40", "data.image_size=16",
        "data.normalize=box", "model.max_epochs=25", "model.patience=25", "eval_data=folder",
        f"eval_data.root={tmp_path / 'grey'}", "eval_data.image_size=16", "eval_data.normalize=box"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    client = mlflow.tracking.MlflowClient(uri)
    run = client.get_run(run_id)

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    proba = model.predict(pd.DataFrame({"image": [path.read_bytes() for _, path in photos]}))
    served = [proba.columns[i] for i in proba.to_numpy().argmax(axis=1)]
    capsys.readouterr()
    assert main(["--model", f"runs:/{run_id}/model", "--json", *(str(p) for _, p in photos)]) == 0
    predicted = [r["top"][0]["class"] for r in json.loads(capsys.readouterr().out)]
    assert predicted == served

    truth = [rune for rune, _ in photos]
    # The run's own eval path: its confusion matrix on the same files, row = true class, column = read class.
    table = pd.read_csv(client.download_artifacts(run_id, "eval_confusion_matrix.csv", str(tmp_path)), index_col=0)
    seen = pd.crosstab(pd.Series(truth, name="true"), pd.Series(served, name="read")).reindex(
        index=table.index, columns=table.columns, fill_value=0)
    assert (seen.to_numpy() == table.to_numpy()).all()
    accuracy = np.mean([a == b for a, b in zip(served, truth)])
    assert run.data.metrics["eval/accuracy"] == pytest.approx(accuracy)
    assert accuracy >= 0.7, accuracy
