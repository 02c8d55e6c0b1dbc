"""Odd folders: links that loop or lead back into the tree, one class, names that are not UTF-8."""
from __future__ import annotations

import os

import pytest

from helpers import all_runs, cli, compose, draw_folder, main_exit

SKLEARN = ["model=sklearn_mlp", "model.max_epochs=2", "data=folder", "data.image_size=16"]


@pytest.mark.slow
def test_links_back_into_the_tree_are_skipped_and_links_out_are_followed(store, tmp_path, caplog):
    from glyphlab.experiment import run

    root = draw_folder(tmp_path / "d", "ab")
    draw_folder(tmp_path / "elsewhere", "c")
    os.symlink("..", root / "loop")                     # the parent of root: every image, and root again
    os.symlink(root, root / "a" / "root_again")         # a class folder linking to the top: a loop
    os.symlink("../b", root / "a" / "b_too")            # images of b counted as a
    os.symlink(root / "b" / "0.png", root / "a" / "dup.png")
    os.symlink(tmp_path / "elsewhere" / "c", root / "c")  # a class kept elsewhere: followed
    run(compose([*SKLEARN, f"data.root={root}"]))
    _, runs = all_runs(store)
    assert runs[0].info.status == "FINISHED"
    metrics = runs[0].data.metrics
    assert metrics["data/n_classes"] == 3
    assert metrics["data/n_train_original"] + metrics["data/n_val"] + metrics["data/n_test"] == 18  # 6 per class
    warning = next(r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage())
    assert warning.startswith(f"skipped 4 symbolic link(s) in {root}")
    for link in ("loop -> ..", "a/root_again", "a/b_too -> ../b", "a/dup.png"):
        assert link in warning


def test_one_class_is_one_line(store, tmp_path, capsys):
    root = draw_folder(tmp_path / "d", "a", per_class=12)
    code, last = main_exit([*SKLEARN, f"data.root={root}"], capsys)
    assert code == 2
    assert last == (f"glyphlab: error: a classification set needs at least 2 classes with usable images; "
                    f"found 1 in {root}: a")
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED"] and "at least 2 classes" in runs[0].data.tags["error"]


def non_utf8_folder(tmp_path):
    root = draw_folder(tmp_path / "d", "ab")
    os.rename(root / "b", os.fsencode(root) + b"/caf\xe9")          # a Latin-1 folder name
    (root / "a" / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    return root


@pytest.mark.slow
def test_non_utf8_names_are_shown_escaped_and_break_nothing(store, tmp_path):
    root = non_utf8_folder(tmp_path)
    p = cli(*SKLEARN, f"data.root={root}", "tracking.log_model=false", f"hydra.run.dir={tmp_path / 'out'}")
    assert p.returncode == 0, p.stderr[-3000:]
    output = p.stdout + p.stderr  # Hydra's log goes to stdout
    assert "Logging error" not in output
    assert "skipped 1 unusable image file(s)" in output and "a/bad\\xff.png" in output
    client, runs = all_runs(store)
    assert runs[0].info.status == "FINISHED"
    csv = client.download_artifacts(runs[0].info.run_id, "confusion_matrix.csv", str(tmp_path))
    assert "caf\\xe9" in open(csv, encoding="utf-8").read()


def test_non_utf8_name_of_a_bad_file_is_one_line_with_the_error_tagged(store, tmp_path, capsys):
    root = non_utf8_folder(tmp_path)
    code, last = main_exit([*SKLEARN, f"data.root={root}", "data.on_bad_file=error"], capsys)
    assert code == 2 and last.startswith("glyphlab: error: 1 unusable image file(s)") and "a/bad\\xff.png" in last
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED"] and "a/bad\\xff.png" in runs[0].data.tags["error"]


def test_eval_data_classes_are_checked_before_training(store, tmp_path, capsys):
    draw_folder(tmp_path / "train", "ab")
    draw_folder(tmp_path / "eval", "az")
    code, last = main_exit([*SKLEARN, f"data.root={tmp_path / 'train'}", "eval_data=folder",
                            f"eval_data.root={tmp_path / 'eval'}"], capsys)
    assert code == 2 and last.startswith("glyphlab: error: eval_data has 1 class(es) the model does not know: z")
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert not any(key.startswith(("val/", "train/", "time/")) for key in runs[0].data.metrics)  # nothing trained


def test_an_eval_data_error_says_it_is_about_eval_data(store, tmp_path, capsys):
    draw_folder(tmp_path / "train", "ab")
    code, last = main_exit([*SKLEARN, f"data.root={tmp_path / 'train'}", "eval_data=folder",
                            f"eval_data.root={tmp_path / 'missing'}"], capsys)
    assert code == 2 and last == (f"glyphlab: error: eval_data=folder: data.root {tmp_path / 'missing'} does not exist; "
                                  f"expected a folder of images")


def test_eval_data_with_no_known_class_left_is_one_line_before_training(store, tmp_path, capsys):
    draw_folder(tmp_path / "train", "ab")
    draw_folder(tmp_path / "eval", "yz")  # ignore_unknown drops every sample: nothing to score
    code, last = main_exit([*SKLEARN, f"data.root={tmp_path / 'train'}", "eval_data=folder",
                            f"eval_data.root={tmp_path / 'eval'}", "eval_data.ignore_unknown=true"], capsys)
    assert code == 2 and last == ("glyphlab: error: eval_data has no sample of a class the model knows: "
                                  "its classes y z, the model's a b")
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert not any(key.startswith(("val/", "train/", "time/")) for key in runs[0].data.metrics)  # nothing trained


@pytest.mark.parametrize("data, eval_data", [
    (["data=digit_sequence", "data.image_size=16", "data.n_train=20", "data.n_val=10", "data.n_test=10"],
     ["eval_data=digits"]),
    (["data=digit_sequence", "data.image_size=16", "data.n_train=20", "data.n_val=10", "data.n_test=10",
      "data.max_digits=3"],
     ["eval_data=digit_sequence", "eval_data.n_train=20", "eval_data.n_val=10", "eval_data.n_test=10"]),
], ids=["sequences-vs-single", "3-vs-5-positions"])
def test_eval_data_with_other_label_positions_is_one_line_before_training(store, capsys, data, eval_data):
    code, last = main_exit(["model=mlp", *data, *eval_data], capsys)
    assert code == 2 and last.startswith("glyphlab: error: eval_data=") and "expected eval data of the same kind" in last
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert not any(key.startswith(("val/", "train/", "time/")) for key in runs[0].data.metrics)


@pytest.mark.slow
def test_a_cache_file_that_cannot_be_read_nor_replaced_is_one_line(store, tmp_path, capsys):
    from glyphlab.experiment import run

    tiny = ["model=sklearn_mlp", "model.max_epochs=2", "data.samples_per_class=12", "data.image_size=16",
            "tracking.log_model=false"]
    run(compose(tiny))
    cached = next((tmp_path / "cache").glob("*.npz"))
    cached.write_bytes(b"damaged")  # a damaged file where it can be replaced: rebuilt, with a warning
    run(compose(tiny))
    assert cached.stat().st_size > 100
    cached.unlink()
    (cached / "something").mkdir(parents=True)  # a folder where the file should be: neither read nor removed
    code, last = main_exit(tiny, capsys)
    assert code == 2
    assert last.startswith(f"glyphlab: error: cache file {cached} cannot be read (IsADirectoryError") and \
        "data.cache=false" in last
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED", "FINISHED", "FINISHED"]


@pytest.mark.parametrize("override, expected", [
    ("model.optimizer.lr=-1", "model.optimizer (AdamW lr=-1"),
    ("model.optimizer.weight_decay=-0.5", "model.optimizer (AdamW"),
    ("+model.optimizer.nonsense=3", "unexpected keyword argument 'nonsense'"),
    ("trainer.devices=0", "trainer ("),
    ("seed=-1", "seed must be an integer from 0 to 2**32 - 1, got -1"),
    ("model=sklearn_mlp model.estimator.alpha=-1", "model.estimator (MLPClassifier"),
    ("model=sklearn_mlp model.estimator.hidden_layer_sizes=[-3]", "hidden_layer_sizes must be > 0"),  # checked in fit
    ("model=sklearn_mlp seed=5000000000", "seed must be an integer from 0 to 2**32 - 1, got 5000000000"),
    ("model.net.channels=[0,8]", "model.net (CNN channels=[0, 8]"),        # builds, but cannot run
    ("trainer.max_epochs=abc", "trainer.max_epochs must be an integer of at least 1, got 'abc'"),
    ("split.val=abc", "split.val must be a fraction between 0 and 1, got abc"),
], ids=lambda v: v if " " not in v and "(" not in v else None)
def test_a_value_the_library_refuses_is_one_line_naming_the_key(store, override, expected, capsys):
    code, last = main_exit(["model=cnn", "data.samples_per_class=12", "data.image_size=16", "trainer.max_epochs=1",
                            "trainer.enable_progress_bar=false", *override.split()], capsys)
    assert code == 2 and last.startswith("glyphlab: error: ") and expected in last, last
    _, runs = all_runs(store)
    assert all(r.info.status == "FAILED" and r.data.tags.get("error") for r in runs)
    assert not any("train/loss" in r.data.metrics for r in runs)
