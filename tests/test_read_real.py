"""+experiment=read_real: the single-run recipe for reading real handwriting after training on synthesis.

It must compose with, and train on, every synthetic data option (issue #12); real Hydra composition,
real tiny training, a real MLflow store in a temp dir, no ../shared data.
"""
import pytest

from helpers import all_runs, compose

SYNTHETIC = [["data=runes"], ["data=kana"], ["data=kana", "data.charset=hiragana"],
             ["data=kana", "data.charset=katakana"], ["data=latin"], ["data=latin", "data.charset=lower"],
             ["data=greek"], ["data=digits_synth"]]


@pytest.mark.parametrize("data", SYNTHETIC, ids=lambda d: "-".join(o.split("=")[1] for o in d))
def test_recipe_composes_with_every_synthetic_data_option(data):
    plain = compose(data)
    cfg = compose(["+experiment=read_real", *data])
    assert cfg.data.name == plain.data.name and cfg.data.get("charset") == plain.data.get("charset")
    assert cfg.model.name == "cnn" and cfg.augmentation.name == "heavy" and cfg.augmentation.mode == "online"
    assert cfg.model.members == 3 and plain.model.members == 1                # three nets averaged, only here
    assert plain.data.normalize is None and cfg.data.normalize == "box"      # the recipe's value wins over the data's
    assert (cfg.data.samples_per_class, cfg.data.image_size) == (400, 32)     # synthesis.*: as much of every set
    # the mean of the epochs' weights is kept, not the best synthetic val epoch (tests/test_weight_average.py)
    assert cfg.callbacks.weight_average.start == 2 and "weight_average" not in plain.callbacks
    # Real handwriting is read the way the training data was drawn: normalised the same.
    with_eval = compose(["+experiment=read_real", *data, "eval_data=digits"])
    assert with_eval.eval_data.normalize == "box" and with_eval.eval_data.image_size == cfg.data.image_size


def test_command_line_wins_over_the_recipe():
    cfg = compose(["+experiment=read_real", "data=latin", "model=mlp", "augmentation=none", "data.normalize=null",
                   "trainer.max_epochs=3", "model.members=1"])
    assert cfg.model.name == "mlp" and cfg.model.members == 1
    assert cfg.augmentation.name == "none" and cfg.data.normalize is None and cfg.trainer.max_epochs == 3
    assert compose(["+experiment=read_real", "data=kana", "data.samples_per_class=50"]).data.samples_per_class == 50


def test_the_recipe_leaves_the_amount_of_real_data_alone():
    """synthesis.* reaches synthetic options only: a real option has no samples_per_class its loader would refuse,
    and without the recipe every option keeps its own amount and size."""
    real = compose(["+experiment=read_real", "data=folder", "data.root=."]).data
    assert "samples_per_class" not in real and real.image_size == 32
    kana = compose(["data=kana"]).data
    assert (kana.samples_per_class, kana.image_size) == (100, 48)


TINY_READ_REAL = ["data.samples_per_class=10", "data.image_size=16", "trainer.max_epochs=1",
                  "tracking.log_model=false", "trainer.enable_progress_bar=false"]


@pytest.mark.slow
@pytest.mark.parametrize("data", [["data=runes", "eval_data=runes", "eval_data.seed=5", "eval_data.samples_per_class=3"],
                                  ["data=kana", "data.charset=katakana"], ["data=latin", "data.charset=lower"],
                                  ["data=greek"], ["data=digits_synth"]],
                         ids=lambda d: d[0].split("=")[1])
def test_recipe_trains_on_tiny_synthetic_data(store, data):
    from glyphlab.experiment import run

    run(compose(["+experiment=read_real", *data, *TINY_READ_REAL]))
    client, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FINISHED"]
    r = runs[0]
    assert r.data.tags["model"] == "cnn" and r.data.tags["augmentation"] == "heavy"
    assert r.data.params["data.normalize"] == "box"
    assert 0 <= r.data.metrics["test/accuracy"] <= 1
    assert r.data.metrics["data/member_sets"] == 3                     # each of the three nets its own set
    if "eval_data=runes" in data:
        assert r.data.params["eval_data.normalize"] == "box"
        assert "eval_samples.png" in {a.path for a in client.list_artifacts(r.info.run_id)}
    # Each synthetic set logs how many ways of writing each class it drew from (data.sources).
    import json

    artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert "prototypes.json" in artifacts
    counts = json.loads(open(client.download_artifacts(r.info.run_id, "prototypes.json")).read())
    assert counts and all(isinstance(n, int) and n >= 1 for n in counts.values())
    assert r.data.metrics["data/min_prototypes"] == min(counts.values())
    if "data=greek" in data:
        assert set(counts) == set("αβγδεζηθικλμνξοπρστυφχψω") and max(counts.values()) > 1


@pytest.mark.slow
def test_the_recipe_trains_sklearn_mlp_on_its_one_set(store):
    """The preset's model.members and model.member_data are the torch models': sklearn_mlp trains one
    estimator on one synthetic set and its offline copies."""
    from glyphlab.experiment import run

    run(compose(["+experiment=read_real", "model=sklearn_mlp", "data=runes", "augmentation.copies=1",
                 "data.samples_per_class=10", "data.image_size=16", "model.max_epochs=2", "tracking.log_model=false"]))
    _, (r,) = all_runs(store)
    assert r.info.status == "FINISHED" and r.data.metrics["data/member_sets"] == 1
    assert r.data.metrics["data/n_train"] == 2 * r.data.metrics["data/n_train_original"]
