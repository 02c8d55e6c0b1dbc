"""model.tta: a model reads each image and a few turned and scaled views of it by their mean probability, in the
run's test and eval and in the logged model alike (glyphlab.models.tta).

Views checked on drawn bars; a real tiny cnn run through Hydra composition into a temp MLflow store, its logged pyfunc
and `glyphlab predict` on the same files as the run's eval_data.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import RUNES, all_runs, assert_nothing_running, compose, fresh_runes, logged_run, main_exit

from glyphlab.errors import ConfigError
from glyphlab.models.tta import check_tta, views, with_views


def ink_box(image):
    rows, cols = np.nonzero(image > 127)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_views_are_the_image_then_each_rotation_then_each_scale():
    bar = np.zeros((1, 17, 17), np.uint8)
    bar[0, 8, 3:14] = 255                                     # a horizontal bar through the centre
    same, turned, shrunk, grown = views(bar, {"rotations": [90], "scales": [0.5, 1.2]})
    assert np.array_equal(same, bar) and same.dtype == np.uint8
    assert ink_box(turned[0]) == (3, 13, 8, 8)                # stands upright about the centre
    top, bottom, left, right = ink_box(shrunk[0])
    assert (top, bottom) == (8, 8) and right - left + 1 in (5, 6) and (left + right) / 2 == 8   # half as long, centred
    assert ink_box(grown[0])[2:] == (2, 14)                   # 1.2 x as long
    small = views(bar, {"rotations": [7]})[1]
    assert ink_box(small[0])[:2] != (8, 8)                    # a few degrees: the bar tilts


def test_the_reading_is_the_mean_probability_over_the_views():
    calls = []

    def predict(images):          # a 2-class reader: p(class 1) = the share of ink in the top half
        calls.append(images.copy())
        top = (images[:, :8] > 127).sum((1, 2)) / np.maximum((images > 127).sum((1, 2)), 1)
        return np.stack([1 - top, top], -1).astype(np.float32)

    images = np.zeros((3, 16, 16), np.uint8)
    images[:, 2:6, 4:12] = 255
    tta = {"rotations": [-10, 10], "scales": [0.8]}
    read = with_views(predict, tta)(images)
    assert len(calls) == 4 and read.dtype == np.float32 and read.shape == (3, 2)
    expected = np.mean([predict(v) for v in views(images, check_tta(tta))], axis=0)
    assert np.allclose(read, expected) and np.allclose(read.sum(-1), 1)
    assert with_views(predict, None) is predict and with_views(predict, {"rotations": []}) is predict


@pytest.mark.parametrize("tta, expected", [
    ("rot", "must be null or a mapping"),
    ({"angles": [5]}, "unknown key(s) angles; expected rotations, scales"),
    ({"rotations": 7}, "model.tta.rotations must be a list of numbers, got 7"),
    ({"scales": 0}, "model.tta.scales must be a list of numbers, got 0"),
    ({"rotations": [7, "x"]}, "model.tta.rotations must be a list of numbers"),
    ({"rotations": [90]}, "model.tta.rotations must lie in [-45, 45], got 90"),
    ({"scales": [0]}, "model.tta.scales must lie in [0.5, 2], got 0"),
    ({"scales": [float("nan")]}, "model.tta.scales must be a list of numbers"),
])
def test_a_bad_tta_is_one_line(tta, expected):
    with pytest.raises(ConfigError) as e:
        check_tta(tta)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_a_bad_tta_stops_the_run_before_any_work(store, capsys):
    code, line = main_exit(["data=runes", "model.tta={rotations: [60]}", "data.samples_per_class=4"], capsys)
    assert code != 0 and "model.tta.rotations must lie in [-45, 45], got 60" in line
    assert_nothing_running(store)
    assert all_runs(store)[1] == []


def test_the_recipe_composes_tta_for_every_model():
    for model in ("cnn", "mlp", "sklearn_mlp"):
        cfg = compose(["+experiment=read_real", f"model={model}"])
        assert check_tta(cfg.model.tta) == {"rotations": [-7.0, 7.0], "scales": [0.9, 1.1]}, model
        assert compose([f"model={model}"]).model.tta is None


@pytest.mark.slow
def test_the_served_model_and_predict_read_with_the_runs_views(tmp_path, monkeypatch, capsys):
    """A cnn run with model.tta tested on a folder of drawings: the logged model stores the views, its pyfunc's
    probabilities are the mean over those views of the plain net's, and the pyfunc, `glyphlab predict` and the
    run's own eval read every file alike."""
    import mlflow
    import pandas as pd
    from PIL import Image

    from glyphlab.models import family_of_logged
    from glyphlab.predict import main
    from glyphlab.serving import model_view

    folder = tmp_path / "drawn"
    for rune, image in zip(RUNES, fresh_runes(image_size=32, seed=7)):
        (folder / rune).mkdir(parents=True)
        Image.fromarray(255 - image).save(folder / rune / "0.png")     # dark ink on white paper
    tta = "{rotations: [-7, 7], scales: [0.9, 1.1]}"
    uri, run_id = logged_run(tmp_path / "run", [
        "data=runes", "data.samples_per_class=30", "data.image_size=16", "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false", f"model.tta={tta}", "eval_data=folder", f"eval_data.root={folder}",
        "eval_data.image_size=16"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    client = mlflow.tracking.MlflowClient(uri)
    run = client.get_run(run_id)
    files = sorted(folder.glob("*/0.png"))

    model_dir = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", dst_path=str(tmp_path / "model"))
    meta_file = next(Path(model_dir).rglob("glyph_model.json"))
    meta = json.loads(meta_file.read_text())
    assert meta["tta"] == {"rotations": [-7.0, 7.0], "scales": [0.9, 1.1]}
    plain = family_of_logged(meta).load({"weights": str(meta_file.parent / "weights.pt"), "meta": str(meta_file)}, meta)
    images = np.stack([model_view(f.read_bytes(), meta) for f in files])
    by_views = np.mean([plain(v) for v in views(images, meta["tta"])], axis=0)

    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(pd.DataFrame({"image": [f.read_bytes() for f in files]}))
    assert np.allclose(served.to_numpy(), by_views, atol=1e-6)
    assert not np.allclose(served.to_numpy(), plain(images), atol=1e-4)      # the views do change the reading
    read = [served.columns[i] for i in served.to_numpy().argmax(1)]
    capsys.readouterr()
    assert main(["--model", f"runs:/{run_id}/model", "--json", *map(str, files)]) == 0
    assert [r["top"][0]["class"] for r in json.loads(capsys.readouterr().out)] == read
    accuracy = np.mean([r == f.parent.name for r, f in zip(read, files)])
    assert run.data.metrics["eval/accuracy"] == pytest.approx(accuracy)
    assert {k: v for k, v in run.data.params.items() if k.startswith("model.tta")} == {
        "model.tta.rotations": "[-7, 7]", "model.tta.scales": "[0.9, 1.1]"}
