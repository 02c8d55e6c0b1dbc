"""Macro metrics are over the classes the evaluated labels hold, and a run says which are absent:
issue 26, item 3 (eval_data of 2 of the model's 5 classes read 0.98 accurate scored macro F1 0.40)."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from helpers import all_runs, compose

from glyphlab import evaluate

SHAPES = {  # five classes a tiny model tells apart at once: where the ink is
    "a": lambda img: img.__setitem__((slice(7, 9), slice(2, 14)), 0),    # horizontal bar
    "b": lambda img: img.__setitem__((slice(2, 14), slice(7, 9)), 0),    # vertical bar
    "c": lambda img: img.__setitem__((slice(2, 6), slice(2, 6)), 0),     # top-left block
    "d": lambda img: img.__setitem__((slice(10, 14), slice(10, 14)), 0),  # bottom-right block
    "e": lambda img: img.__setitem__((slice(2, 6), slice(10, 14)), 0),   # top-right block
}


def draw(root, classes, per_class):
    rng = np.random.default_rng(len(classes))
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.full((16, 16), 255, np.uint8)  # dark ink on white paper, a little noise
            SHAPES[name](img)
            img = np.clip(img.astype(int) + rng.integers(-20, 1, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


@pytest.mark.slow
def test_macro_f1_of_eval_data_with_two_of_five_classes_is_over_those_two(store, tmp_path, caplog):
    from glyphlab.experiment import run

    train, other = draw(tmp_path / "train", "abcde", 12), draw(tmp_path / "eval", "ab", 10)
    cfg = compose(["model=sklearn_mlp", "model.max_epochs=30", "data=folder", f"data.root={train}",
                   "data.image_size=16", "eval_data=folder", f"eval_data.root={other}", "tracking.log_model=false"])
    with caplog.at_level(logging.INFO):
        run(cfg)
    (r,) = all_runs(store)[1]
    metrics, tags = r.data.metrics, r.data.tags
    assert metrics["eval/accuracy"] == 1.0 and metrics["test/accuracy"] == 1.0  # the shapes are easy
    assert metrics["eval/macro_f1"] == 1.0  # was 0.4: c, d and e averaged in as F1 = 0
    assert metrics["eval/n_classes_present"] == 2 and metrics["test/n_classes_present"] == 5
    assert tags["eval/absent_classes"] == "c d e" and "test/absent_classes" not in tags
    lines = [rec.getMessage() for rec in caplog.records if "absent" in rec.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "2 of the model's 5 classes" in lines[0] and lines[0].endswith("absent: c d e")
    summary = [rec.getMessage() for rec in caplog.records if "MLflow run" in rec.getMessage()][-1]
    assert "eval/macro_f1 1.0000 on folder (2 classes present)" in summary


@pytest.mark.parametrize("prefix", ["test", "eval"])
def test_macro_metrics_leave_out_absent_classes_but_count_wrong_guesses_of_them(prefix):
    classes = ["a", "b", "c", "d", "e"]
    y_true = np.array([0, 0, 0, 1, 1, 1])
    perfect = evaluate.classification_metrics(y_true, y_true, classes, prefix)
    assert perfect[f"{prefix}/macro_f1"] == 1.0 and perfect[f"{prefix}/n_classes_present"] == 2
    # one sample of a read as absent class e: a's recall 2/3 (F1 0.8), b stays 1.0
    guessed = evaluate.classification_metrics(y_true, np.array([0, 0, 4, 1, 1, 1]), classes, prefix)
    assert guessed[f"{prefix}/macro_f1"] == pytest.approx((0.8 + 1.0) / 2)
    assert evaluate.absent_classes(y_true, classes) == ["c", "d", "e"]
    # position-wise labels (sequences): the classes present over all positions
    seq = evaluate.classification_metrics(np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]]), classes, prefix)
    assert seq[f"{prefix}/macro_f1"] == 1.0 and seq[f"{prefix}/n_classes_present"] == 2
