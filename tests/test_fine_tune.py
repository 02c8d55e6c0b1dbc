"""Teaching a model a hand: ``data.extra_root`` (real drawings beside a synthetic set, split on their own and
counted per split) and ``model.init_from`` (a run starting from a logged model's weights), with real tiny
trainings in a real MLflow store."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import RUNES, TINY, TINY_SKLEARN, all_runs, compose, main_exit, new_store


def drawings(root, counts: dict[str, int]):
    """``root/<class>/<n>.png``: dark strokes on white paper, a different stroke per drawing."""
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = Image.new("L", (48, 48), 255)
            ImageDraw.Draw(image).line([(8 + i, 6), (40 - i, 42)], fill=0, width=4)
            image.save(root / cls / f"{i}.png")
    return root


def run_metrics(store, overrides):
    from glyphlab.experiment import run

    run(compose(overrides))
    client, runs = all_runs(store)
    return client, runs[0]


def test_the_real_drawings_are_split_per_class_by_the_seed():
    from glyphlab.data.extra import split_extra

    labels = np.array([0] * 10 + [1] * 2 + [2] * 20)
    train, val, test = split_extra(labels, 0.15, 0.15, seed=3)
    assert [len(np.intersect1d(p, np.flatnonzero(labels == c))) for p in (train, val, test) for c in (0, 1, 2)] \
        == [8, 2, 14, 1, 0, 3, 1, 0, 3]   # floor(n × fraction) to val and test; 2 drawings both train
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    again = split_extra(labels, 0.15, 0.15, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(split_extra(labels, 0.15, 0.15, seed=4)[2], test)


def test_the_built_set_keeps_its_own_split_and_the_drawings_come_after_it(tmp_path):
    from glyphlab.data import GlyphSet, split
    from glyphlab.data.extra import add_drawings, counts

    images = np.random.default_rng(0).integers(0, 255, (60, 16, 16), dtype=np.uint8)
    glyphs = GlyphSet(images, np.repeat(np.arange(3), 20), list("abc"))
    both = add_drawings(glyphs, {"extra_root": str(drawings(tmp_path, {"a": 8, "b": 1})), "extra_repeats": 4,
                                 "extra_rewrites": 0}, 0.15, 0.15, seed=0)
    before, after = split(glyphs, 0.15, 0.15, 0), split(both, 0.15, 0.15, 0)
    assert all(np.array_equal(b, a[a < 60]) for b, a in zip(before, after))
    assert [len(a[a >= 60]) for a in after] == [(6 + 1) * 4, 1, 1]   # a: 6 train, 1 val, 1 test; b: 1 train
    assert counts(both) == {"data/extra_train": 7, "data/extra_val": 1, "data/extra_test": 1}
    assert add_drawings(glyphs, {"extra_root": None}, 0.15, 0.15, seed=0) is glyphs


def crossing(root, n: int):
    """``root/a/*.png`` drawn as \\ and ``root/b/*.png`` as /, dark on white, each drawing a little different."""
    for cls, ends in (("a", ((8, 8), (40, 40))), ("b", ((40, 8), (8, 40)))):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = Image.new("L", (48, 48), 255)
            ImageDraw.Draw(image).line([(x + i % 3, y) for x, y in ends], fill=0, width=3)
            image.save(root / cls / f"{i}.png")
    return root


def test_extra_rewrites_writes_each_training_drawing_anew_from_its_strokes(tmp_path):
    from glyphlab.data import GlyphSet, split
    from glyphlab.data.extra import add_drawings, counts

    glyphs = GlyphSet(np.zeros((40, 16, 16), np.uint8), np.repeat(np.arange(2), 20), list("ab"))
    data = {"extra_root": str(crossing(tmp_path, 8)), "extra_repeats": 1, "extra_rewrites": 5, "seed": 0,
            "handwriting": {"rotation": 5, "jitter": 0.01}}
    both = add_drawings(glyphs, data, 0.15, 0.15, seed=0)
    assert counts(both)["data/extra_rewritten"] == 12 * 5       # 6 training drawings a class, 5 images each
    train, val, test = split(both, 0.15, 0.15, 0)
    written = np.arange(40 + 16, len(both))                      # after the set and its 12 + 2 + 2 drawings
    assert np.isin(written, train).all() and len(written) == 60
    for label, (on, off) in enumerate(((np.eye(16, dtype=bool), np.eye(16, dtype=bool)[::-1]),
                                       (np.eye(16, dtype=bool)[::-1], np.eye(16, dtype=bool)))):
        images = both.images[written][both.labels[written] == label].astype(float)
        assert len(images) == 30 and images[:, on].mean() > 3 * images[:, off].mean()   # each class its own stroke
    again = add_drawings(glyphs, data, 0.15, 0.15, seed=0)
    other = add_drawings(glyphs, {**data, "seed": 1000}, 0.15, 0.15, seed=0)   # another member's data.seed
    assert np.array_equal(again.images, both.images)
    assert not np.array_equal(other.images[written], both.images[written])
    assert np.array_equal(other.images[:written[0]], both.images[:written[0]])   # the drawings themselves do not change


def test_extra_rewrites_auto_writes_each_class_as_often_as_the_set_has_images_of_it(tmp_path):
    from glyphlab.data import GlyphSet
    from glyphlab.data.extra import add_drawings, counts, rewrite_counts

    assert rewrite_counts(3, np.array([0, 0, 1]), np.repeat(np.arange(2), 20)).tolist() == [3, 3, 3]
    # class 0: 20 built images among 6 drawings (3.3 → 3 each); class 1: 20 among 2 (10 each); class 2: none drawn
    assert rewrite_counts("auto", np.array([0] * 6 + [1] * 2), np.repeat(np.arange(3), 20)).tolist() == [3] * 6 + [10] * 2
    glyphs = GlyphSet(np.zeros((40, 16, 16), np.uint8), np.repeat(np.arange(2), 20), list("ab"))
    root = crossing(tmp_path, 8)
    for path in sorted((root / "b").glob("*.png"))[2:]:
        path.unlink()                                           # a: 8 drawings (6 train, 1 val, 1 test); b: 2 (both train)
    data = {"extra_root": str(root), "extra_repeats": 1, "seed": 0, "handwriting": {"rotation": 5}}   # auto by default
    both = add_drawings(glyphs, data, 0.15, 0.15, seed=0)
    written = both.labels[40 + 10:]                             # after the set and its 8 + 2 drawings
    assert counts(both)["data/extra_rewritten"] == len(written) == 6 * 3 + 2 * 10
    assert np.bincount(written).tolist() == [18, 20]            # each class about as many as it has synthetic images
    assert np.array_equal(add_drawings(glyphs, data, 0.15, 0.15, seed=0).images, both.images)


def test_extra_rewrites_that_is_no_count_is_one_line(store, tmp_path, capsys):
    root = drawings(tmp_path / "mine", {RUNES[0]: 2})
    code, last = main_exit(["model=sklearn_mlp", *TINY_SKLEARN, f"data.extra_root={root}", "data.extra_rewrites=-1"],
                           capsys)
    assert code == 2 and last == "glyphlab: error: data.extra_rewrites must be auto or an integer of at least 0, got -1"


def test_extra_root_leaves_the_cache_key_of_the_synthetic_set_alone(tmp_path):
    from omegaconf import OmegaConf

    from glyphlab.data import cache_key

    plain = OmegaConf.to_container(compose(["data=latin"]).data, resolve=True)
    extra = OmegaConf.to_container(compose(["data=latin", f"data.extra_root={tmp_path}", "data.extra_repeats=3"]).data,
                                   resolve=True)
    assert cache_key(plain) == cache_key(extra)


def test_a_run_trains_on_synthesis_plus_the_real_drawings_and_logs_how_many_each_split_has(store, tmp_path, caplog):
    root = drawings(tmp_path / "mine", {RUNES[0]: 8, RUNES[1]: 2, "zz": 1, "q": 1})
    client, logged = run_metrics(store, ["model=sklearn_mlp", *TINY_SKLEARN, "tracking.log_model=false",
                                         f"data.extra_root={root}", "data.extra_repeats=3", "data.extra_rewrites=2"])
    metrics = logged.data.metrics
    assert (metrics["data/extra_train"], metrics["data/extra_val"], metrics["data/extra_test"]) == (8, 1, 1)
    assert metrics["data/extra_rewritten"] == 8 * 2
    synthetic_train = 24 * 24 - metrics["data/n_val"] + 1 - metrics["data/n_test"] + 1
    # each real training drawing 3 times as it is and twice written anew from its strokes
    assert metrics["data/n_train_original"] == synthetic_train + 8 * 3 + 8 * 2
    named = [r.getMessage() for r in caplog.records if "extra_root" in r.getMessage()]
    assert len(named) == 1 and "2 class(es) the data option does not have, not used: q zz" in named[0]


@pytest.mark.parametrize("kind, line", [("missing", "does not exist; expected a folder of real drawings"),
                                        ("empty", "is empty; expected real drawings as <class>/*.png"),
                                        ("foreign", "has none of the data option's classes: it has a b")])
def test_a_missing_empty_or_foreign_extra_root_is_one_line(store, tmp_path, capsys, kind, line):
    root = tmp_path / "mine"
    if kind == "empty":
        root.mkdir()
    elif kind == "foreign":
        drawings(root, {"a": 2, "b": 2})
    code, last = main_exit(["model=sklearn_mlp", *TINY_SKLEARN, f"data.extra_root={root}"], capsys)
    assert code == 2 and last.startswith("glyphlab: error: data.extra_root") and line in last


def watch_training(monkeypatch) -> list:
    """The net's state_dict as training starts, for every torch fit from now on (until monkeypatch undoes it)."""
    from glyphlab.models import training

    seen, train = [], training.train

    def watched(cfg, module, *args, **kwargs):
        seen.append({k: v.clone() for k, v in module.net.state_dict().items()})
        return train(cfg, module, *args, **kwargs)

    monkeypatch.setattr(training, "train", watched)
    return seen


@pytest.fixture(scope="module")
def logged_cnn(tmp_path_factory):
    """A tiny cnn on runes trained and logged once per module, in a store of its own: (the folder of the logged
    model as MLflow downloads it, which model.init_from takes; its weights as logged; its weights as its training
    started). model.init_from=runs:/… itself: the sklearn test below."""
    import torch

    from glyphlab.models import pretrained

    tmp = tmp_path_factory.mktemp("logged_cnn")
    uri = new_store(tmp / "mlruns" / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("GLYPHLAB_CACHE", str(tmp / "cache"))
        started = watch_training(mp)
        client, base = run_metrics(uri, ["model=cnn", *TINY])
        _, files = pretrained.fetch(f"runs:/{base.info.run_id}/model", tmp / "download")
    return str(Path(files["weights"]).parent), torch.load(files["weights"], weights_only=True), started[0]


@pytest.fixture
def first_weights(monkeypatch):
    """The net's state_dict as training starts, for every torch fit of the test."""
    return watch_training(monkeypatch)


def test_a_run_starts_from_the_weights_of_a_logged_model(store, first_weights, logged_cnn):
    import torch

    folder, logged, untrained = logged_cnn
    client, tuned = run_metrics(store, ["model=cnn", *TINY, "seed=1", f"model.init_from={folder}"])
    start = first_weights[-1]
    assert start.keys() == logged.keys() and all(torch.equal(start[k], logged[k]) for k in logged)
    assert tuned.data.params["model.init_from"] == folder
    assert len(first_weights) == 1   # the logged run itself started elsewhere: its weights were trained
    assert not all(torch.equal(untrained[k], logged[k]) for k in logged if k.endswith("weight"))


def test_a_logged_single_net_starts_every_member_of_an_ensemble(store, logged_cnn, first_weights):
    import torch

    folder, logged, _ = logged_cnn
    run_metrics(store, ["model=cnn", *TINY, "model.members=2", "tracking.log_model=false",
                        f"model.init_from={folder}"])
    start = first_weights[-1]
    assert all(torch.equal(start[f"nets.{i}.{k}"], logged[k]) for i in (0, 1) for k in logged)


@pytest.mark.parametrize("overrides, line", [
    (["data=latin", "data.charset=abc", "data.samples_per_class=8"],
     "was trained on other classes: expected the data's 3 (a b c), found 24; not in the model: a b c; only in "),
    (["data.image_size=20"], "does not fit this run's data: image_size 16 (this run's data: 20)"),
    (["model.net.hidden=64"], "is another net than this run's model.net: hidden 128 (this run: 64); set those"),
    (["model=sklearn_mlp"], "is a torch model (cnn); this run trains a sklearn model"),
])
def test_a_logged_model_that_does_not_fit_is_one_line(store, logged_cnn, capsys, overrides, line):
    uri = logged_cnn[0]
    code, last = main_exit(["model=cnn", *TINY, *overrides, f"++model.init_from={uri}"], capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: model.init_from {uri} ") and line in last


def test_a_uri_that_is_no_glyphlab_model_is_one_line(store, tmp_path, capsys):
    code, last = main_exit(["model=cnn", *TINY, f"model.init_from={tmp_path}"], capsys)
    assert code == 2 and "is not a glyphlab model: no glyph_model.json in it" in last
    code, last = main_exit(["model=cnn", *TINY, "model.init_from=runs:/0123456789abcdef/model"], capsys)
    assert code == 2 and "model.init_from runs:/0123456789abcdef/model cannot be loaded" in last


def test_a_path_or_uri_that_leads_nowhere_says_so_in_its_one_line(store, tmp_path, capsys):
    code, last = main_exit(["model=cnn", *TINY, f"model.init_from={tmp_path / 'nothing'}"], capsys)
    assert code == 2 and last == (f"glyphlab: error: model.init_from {tmp_path / 'nothing'}: no such file or folder; "
                                  f"expected runs:/<run id>/model, models:/m-… or a folder of a logged model")
    code, last = main_exit(["model=cnn", *TINY, f"model.init_from=file://{tmp_path / 'nothing'}"], capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: model.init_from file://{tmp_path / 'nothing'} cannot be "
                                         f"loaded: ") and not last.endswith(":")  # the reason, not MLflow's heading
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED", "FAILED"]


def test_sklearn_mlp_warm_starts_from_a_logged_estimator_of_the_same_classes(store, tmp_path, monkeypatch):
    import skops.io

    from glyphlab.models import pretrained
    from glyphlab.models import sklearn as skl
    from glyphlab.models.sklearn_adapter import SKOPS_TRUSTED

    _, base = run_metrics(store, ["model=sklearn_mlp", *TINY_SKLEARN])
    uri = f"runs:/{base.info.run_id}/model"
    _, files = pretrained.fetch(uri, tmp_path)
    logged = skops.io.load(files["estimator"], trusted=SKOPS_TRUSTED)
    started, fit = [], skl.fit
    monkeypatch.setattr(skl, "fit", lambda estimator, *a, **k: started.append(
        [w.copy() for w in getattr(estimator, "coefs_", [])]) or fit(estimator, *a, **k))
    run_metrics(store, ["model=sklearn_mlp", *TINY_SKLEARN, "seed=1", f"model.init_from={uri}"])
    assert len(started[0]) == len(logged.coefs_) and all(np.array_equal(a, b) for a, b in zip(started[0], logged.coefs_))
