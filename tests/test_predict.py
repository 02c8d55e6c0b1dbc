"""The logged pyfunc model and `python -m glyphlab.predict`: raw images of any size and polarity in,
class probabilities out, from a real (tiny) run in a temp MLflow store."""
import base64
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import RUNES, compose, fresh_runes, logged_run, new_store

# Enough data and epochs that the sklearn MLP reads fresh runes; still a few seconds.
SKLEARN_RUN = ["model=sklearn_mlp", "data=runes", "data.samples_per_class=40", "data.image_size=16",
               "model.max_epochs=25", "model.patience=25"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(tracking URI, run id) of a real sklearn_mlp run on runes, shared by this module's tests."""
    return logged_run(tmp_path_factory.mktemp("predict"), SKLEARN_RUN)


@pytest.fixture
def store_of(trained, monkeypatch):
    """The trained run, its store made current (env for subprocesses, MLflow's global for this one:
    a run made by another test may have left that pointing elsewhere)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained[0])
    mlflow.set_tracking_uri(trained[0])
    return trained


def write_pngs(tmp_path, images, dark_on_light=True):
    from glyphlab.serving import encode_png

    paths = []
    for rune, image in zip(RUNES, images):
        path = tmp_path / f"{ord(rune):x}.png"
        path.write_bytes(encode_png(255 - image if dark_on_light else image))
        paths.append(path)
    return paths


@pytest.mark.slow
def test_pyfunc_reads_raw_images_of_any_size_and_polarity(store_of):
    import mlflow

    from glyphlab.serving import encode_png

    _, run_id = store_of
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert model.metadata.get_input_schema().input_names() == ["image"]
    images = fresh_runes(48)
    scans = [encode_png(255 - im) for im in images]          # dark ink on light paper, 48 px
    screens = [encode_png(im) for im in fresh_runes(24)]     # bright ink on dark, 24 px
    out = model.predict(pd.DataFrame({"image": scans + screens}))
    assert list(out.columns) == list(RUNES)                  # one column per class, named by the character
    assert out.shape == (48, 24)
    np.testing.assert_allclose(out.to_numpy().sum(axis=1), 1.0, atol=1e-4)
    read = np.array(list(RUNES))[out.to_numpy().argmax(axis=1)]
    truth = np.array(list(RUNES) * 2)
    assert (read == truth).mean() >= 0.8, list(zip(truth, read))


@pytest.mark.slow
def test_pyfunc_answers_the_serving_json(store_of):
    """`mlflow models serve`'s /invocations handler, fed the JSON a client sends: base64 images."""
    import mlflow
    from mlflow.pyfunc.scoring_server import invocations

    from glyphlab.serving import encode_png

    _, run_id = store_of
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    images = fresh_runes(40)[:3]
    payload = json.dumps({"dataframe_split": {"columns": ["image"], "data": [
        [base64.b64encode(encode_png(255 - im)).decode()] for im in images]}})
    answer = invocations(payload, "application/json", model, model.metadata.get_input_schema())
    assert answer.status == 200, answer.response
    rows = json.loads(answer.response)["predictions"]
    assert len(rows) == 3 and list(rows[0]) == list(RUNES)
    assert sum(rows[0].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_model_loads_from_its_own_folder_with_its_own_code(store_of, tmp_path):
    """The model folder alone is enough: copied elsewhere, loaded in a new process from another
    directory, it runs the glyphlab code bundled inside it (no config, no checkout)."""
    import mlflow

    _, run_id = store_of
    local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", dst_path=str(tmp_path / "dl"))
    folder = tmp_path / "copied model"
    shutil.copytree(local, folder)
    assert not list(folder.rglob("*.pkl")), "nothing in the model is unpickled"
    png = write_pngs(tmp_path, fresh_runes(32)[:1])[0]
    script = (
        "import sys, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "import glyphlab\n"
        "print(glyphlab.__file__)\n"
        "print(m.predict(pd.DataFrame({'image': [open(sys.argv[2], 'rb').read()]})).idxmax(axis=1)[0])\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    p = subprocess.run([sys.executable, "-c", script, str(folder), str(png)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    location, answer = p.stdout.strip().splitlines()[-2:]
    assert str(folder) in location, location
    assert answer == "ᚠ"


@pytest.mark.slow
def test_cli_prints_top_k(store_of, tmp_path, capsys):
    from glyphlab.predict import main

    _, run_id = store_of
    paths = write_pngs(tmp_path, fresh_runes(48))
    assert main(["--model", f"runs:/{run_id}/model", str(paths[0]), str(paths[8]), "--top-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(paths[0]) and out[4] == str(paths[8])
    assert len(out) == 8                                    # per image: its path, then 3 classes
    assert out[1].split()[0] == "ᚠ" and "fehu" in out[1]     # the character, its probability, its name
    assert out[5].split()[0] == "ᚺ"


def test_cli_names_a_blank_page_and_still_reads_it(store_of, tmp_path, capsys):
    from PIL import Image

    from glyphlab.predict import main

    _, run_id = store_of
    drawn = write_pngs(tmp_path, fresh_runes(48))[0]
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((40, 40), 235, np.uint8)).save(blank)   # grey paper, nothing written
    assert main(["--model", f"runs:/{run_id}/model", str(drawn), str(blank), "--top-k", "1"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "no ink" in line]
    assert len(warnings) == 1 and "blank.png" in warnings[0] and str(drawn) not in warnings[0]
    assert str(blank) in captured.out.splitlines()                  # read anyway, a guess


@pytest.mark.slow
def test_cli_json_for_machines(store_of, tmp_path):
    """The real `python -m glyphlab.predict` process, with a local model folder as the URI."""
    import mlflow

    _, run_id = store_of
    folder = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", dst_path=str(tmp_path / "m"))
    paths = write_pngs(tmp_path, fresh_runes(48))
    p = subprocess.run([sys.executable, "-m", "glyphlab.predict", "--model", folder, "--json",
                        *map(str, paths)], capture_output=True, text=True, encoding="utf-8", timeout=300,
                       env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(p.stdout)
    assert [r["image"] for r in results] == list(map(str, paths))
    for r in results:
        assert len(r["top"]) == 5
        probabilities = [t["probability"] for t in r["top"]]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    read = [r["top"][0]["class"] for r in results]
    assert np.mean([a == b for a, b in zip(read, RUNES)]) >= 0.8, read


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "not_image", "folder", "bad_run", "bad_path", "bad_top_k"])
def test_cli_bad_input_is_one_line(store_of, tmp_path, capsys, case):
    from glyphlab.predict import main

    _, run_id = store_of
    good = write_pngs(tmp_path, fresh_runes(32)[:1])[0]
    junk = tmp_path / "notes.png"
    junk.write_text("not a picture")
    model, image, expected = f"runs:/{run_id}/model", str(good), ""
    if case == "missing":
        image, expected = str(tmp_path / "nope.png"), "nope.png: no such file"
    elif case == "not_image":
        image, expected = str(junk), "is not an image"
    elif case == "folder":
        image, expected = str(tmp_path), "is a folder"
    elif case == "bad_run":
        model, expected = "runs:/0123456789abcdef/model", "cannot load model runs:/0123456789abcdef/model"
    elif case == "bad_path":
        model, expected = str(tmp_path / "no_model_here"), "cannot load model"
    args = ["--model", model, image] + (["--top-k", "0"] if case == "bad_top_k" else [])
    if case == "bad_top_k":
        with pytest.raises(SystemExit) as e:
            main(args)
        code, expected = e.value.code, "--top-k must be at least 1"
    else:
        code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert expected in err.splitlines()[-1]
    if case != "bad_top_k":  # argparse prints its usage line before the error
        assert len(err.splitlines()) == 1, err


def test_not_a_glyphlab_model_is_refused(tmp_path, capsys):
    """A pyfunc that does not take images (e.g. logged by something else) gets one clear line."""
    import mlflow

    from glyphlab.predict import main

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: pd.DataFrame, params=None):
            return model_input

    from mlflow.models import infer_signature

    x = pd.DataFrame({"pixels": [0.5]})
    mlflow.pyfunc.save_model(tmp_path / "echo", python_model=Echo(), signature=infer_signature(x, x),
                             pip_requirements=["mlflow"])
    png = write_pngs(tmp_path, fresh_runes(32)[:1])[0]
    assert main(["--model", str(tmp_path / "echo"), str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]   # after MLflow's own warning on saving Echo
    assert err.startswith("glyphlab: error: model ") and "is not a glyphlab image model" in err


@pytest.mark.slow
def test_position_wise_model_reads_a_number(tmp_path, monkeypatch, capsys):
    """A digit_sequence model: a wide image is squeezed (as its training strips were), each
    position gets its top-k, and the reading joins the best classes without blanks."""
    from glyphlab.data.sequences import BLANK, CLASSES
    from glyphlab.experiment import run
    from glyphlab.predict import main
    from glyphlab.serving import encode_png

    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(tmp_path / "mlruns" / "mlflow.db"))
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    run(compose(["model=mlp", "data=digit_sequence", "data.n_train=300", "data.n_val=60", "data.n_test=60",
                 "data.image_size=32", "data.max_digits=3", "trainer.max_epochs=1",
                 "trainer.enable_progress_bar=false"]))
    from mlflow.tracking import MlflowClient

    (found,) = MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
    wide = tmp_path / "wide.png"
    wide.write_bytes(encode_png(np.eye(40, 120, dtype=np.uint8) * 255))   # 40 x 120
    capsys.readouterr()                                                    # the run's summary
    assert main(["--model", f"runs:/{found.info.run_id}/model", str(wide), "--top-k", "2", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert len(result["positions"]) == 3 and all(len(top) == 2 for top in result["positions"])
    assert all(guess["class"] in CLASSES for top in result["positions"] for guess in top)
    assert result["reading"] == "".join(top[0]["class"] for top in result["positions"] if top[0]["class"] != BLANK)
    assert result["top"] == [{"class": result["reading"], "probability": result["top"][0]["probability"]}]


def test_a_model_trained_on_normalized_glyphs_normalizes_what_it_is_asked():
    from glyphlab.serving import GlyphModel, encode_png, output_columns

    seen = []
    model = GlyphModel()
    model.meta = {"classes": ["a", "b"], "image_size": 16, "n_positions": 1, "normalize": "box"}
    model.columns = output_columns(model.meta["classes"])
    model.predict_images = lambda images: seen.append(images) or np.full((len(images), 2), 0.5, np.float32)
    small, large = np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)
    small[1:5, 10:12] = 255     # the same bar, small in a corner ...
    large[2:14, 5:11] = 255     # ... and large in the middle
    out = model.predict(None, pd.DataFrame({"image": [encode_png(small), encode_png(large)]}))
    assert list(out.columns) == model.columns and len(out) == 2
    boxed = seen[0]
    assert boxed.shape == (2, 16, 16)
    assert np.array_equal(boxed[0], boxed[1])                                 # both now fill the box, centred
    assert (boxed[:, 0, :] == 0).all() and (boxed[:, :, 0] == 0).all()       # the margin is empty
