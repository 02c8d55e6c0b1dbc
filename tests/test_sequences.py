"""Digit sequences: label layout, blank padding, disjoint base-digit splits, multi-head loss and metrics."""
import numpy as np
import pytest
import torch

from glyphlab import evaluate
from glyphlab.data import GlyphSet, sequences
from glyphlab.data.sequences import BLANK, CLASSES
from glyphlab.errors import DataError

BLANK_ID = CLASSES.index(BLANK)


def numbered_digits(n=60, size=8):
    """A base digit set whose every image is unique: image i is filled with the value i + 1."""
    images = np.stack([np.full((size, size), i + 1, np.uint8) for i in range(n)])
    return GlyphSet(images, np.arange(n) % 10, [str(d) for d in range(10)])


def test_classes_are_digits_then_blank():
    assert CLASSES == list("0123456789") + ["_"] and BLANK_ID == 10


def test_label_layout_and_blank_padding():
    base = numbered_digits()
    parts = (np.arange(0, 40), np.arange(40, 50), np.arange(50, 60))
    glyphs, used = sequences.make_sequences(base, parts, (300, 20, 20), image_size=16, max_digits=5, seed=0)
    assert glyphs.images.shape == (340, 16, 16) and glyphs.images.dtype == np.uint8
    assert glyphs.labels.shape == (340, 5) and glyphs.labels.dtype == np.int64
    assert glyphs.classes == CLASSES and glyphs.meta["blank"] == BLANK
    assert np.array_equal(glyphs.split, np.repeat([0, 1, 2], [300, 20, 20]))
    lengths = (glyphs.labels != BLANK_ID).sum(1)
    # left-aligned digits, then blanks to the end: "42___", never "4_2__"
    assert np.array_equal(glyphs.labels != BLANK_ID, np.arange(5) < lengths[:, None])
    assert np.array_equal(used >= 0, glyphs.labels != BLANK_ID)
    assert np.array_equal(glyphs.labels[used >= 0], base.labels[used[used >= 0]])
    # lengths 1..5 all drawn, roughly uniformly
    counts = np.bincount(lengths, minlength=6)[1:]
    assert counts.min() > 40


def test_length_weights_and_min_digits():
    base = numbered_digits()
    parts = (np.arange(0, 40), np.arange(40, 50), np.arange(50, 60))
    glyphs, _ = sequences.make_sequences(base, parts, (100, 5, 5), image_size=16, max_digits=4, min_digits=2,
                                         length_weights=[0, 0, 1], seed=0)
    assert ((glyphs.labels != BLANK_ID).sum(1) == 4).all()


def test_stitch_squeezes_the_strip_into_a_square():
    left, right = np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)
    out = sequences.stitch(np.stack([left, right]), 16)
    assert out.shape == (16, 16) and out.dtype == np.uint8
    assert out[:, :7].max() < 40 and out[:, 9:].min() > 215  # left digit left, right digit right
    slots = sequences.stitch(np.stack([right]), 16, cells=4)  # one digit in the first of 4 equal cells
    assert slots[:, :3].min() > 215 and slots[:, 5:].max() == 0


def test_train_and_test_sequences_use_disjoint_base_digits():
    base = numbered_digits()
    parts = sequences.base_split(base, 0.2, 0.2, seed=0)
    glyphs, used = sequences.make_sequences(base, parts, (200, 50, 50), image_size=16, max_digits=5, seed=1)
    digits_in = [set(used[glyphs.split == k].ravel()) - {-1} for k in range(3)]
    for k in range(3):
        assert digits_in[k] <= set(parts[k].tolist())
    assert not digits_in[0] & digits_in[2] and not digits_in[0] & digits_in[1] and not digits_in[1] & digits_in[2]
    # and by content: every pixel value names its base image, none of the test ones appear in training
    train_values = set(np.unique(base.images[list(digits_in[0])]))
    assert not train_values & set(np.unique(base.images[list(digits_in[2])]))


def test_a_source_with_its_own_split_keeps_it():
    base = numbered_digits(30)
    base.split = np.repeat(np.array([0, 1, 2], np.int8), [20, 5, 5])  # like MNIST's official test part
    parts = sequences.base_split(base, 0.5, 0.3, seed=0)
    assert [p.tolist() for p in parts] == [list(range(20)), list(range(20, 25)), list(range(25, 30))]


def test_missing_mnist_names_the_sequence_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path))
    with pytest.raises(DataError, match="data.source_options.download=true"):
        sequences.build(source="mnist", image_size=16, n_train=5, n_val=2, n_test=2)


def test_build_from_sklearn_digits_is_fixed_split_and_keeps_base_parts_apart():
    glyphs = sequences.build(image_size=24, max_digits=3, n_train=30, n_val=10, n_test=10, source="digits",
                             source_image_size=8, seed=0)
    assert glyphs.images.shape == (50, 24, 24) and glyphs.labels.shape == (50, 3)
    assert np.bincount(glyphs.split).tolist() == [30, 10, 10]
    parts = glyphs.meta["base_digits"]
    assert parts["train"] + parts["val"] + parts["test"] == 1797 and min(parts.values()) > 200
    assert glyphs.images.max() > 200 and np.median(glyphs.images) < 50  # bright ink on dark


@pytest.mark.parametrize("kwargs,message", [
    ({"min_digits": 0}, "min_digits"),
    ({"max_digits": 2, "length_weights": [1, 1, 1]}, "length_weights"),
    ({"n_test": 0}, "n_test"),
    ({"source": "kanji"}, "data.source must be one of"),
    ({"layout": "grid"}, "data.layout must be one of"),
    ({"source_options": {"colour": 1}}, "source_options"),
])
def test_bad_options_say_which_key(kwargs, message):
    with pytest.raises(DataError, match=message):
        sequences.build(**{"image_size": 16, "n_train": 5, "n_val": 2, "n_test": 2, "source_image_size": 8,
                           **kwargs})


def test_sequence_metrics():
    y_true = np.array([[1, 2, 10], [3, 10, 10], [4, 5, 6], [7, 10, 10]])
    y_pred = np.array([[1, 2, 10], [3, 4, 10], [4, 5, 0], [7, 10, 10]])
    m = evaluate.classification_metrics(y_true, y_pred, CLASSES, "test")
    assert m["test/accuracy"] == 0.5                       # whole sequences: rows 0 and 3
    assert m["test/digit_accuracy"] == pytest.approx(10 / 12)
    assert m["test/length_accuracy"] == 0.75              # row 1 reads "34" for "3"; row 2 "450" has 3 digits
    assert [m[f"test/position_accuracy/{k}"] for k in (1, 2, 3)] == [1.0, 0.75, 0.75]
    assert m["test/class_accuracy/010__"] == pytest.approx(4 / 5)   # blanks pooled over positions
    assert m["test/class_accuracy/006_6"] == 0.0
    assert 0 < m["test/macro_f1"] < 1
    cm = evaluate.confusion(y_true, y_pred, len(CLASSES))
    assert cm.shape == (11, 11) and cm.sum() == 12 and cm[10, 4] == 1 and cm[6, 0] == 1


def test_prediction_grid_for_sequences(tmp_path):
    images = np.zeros((4, 16, 16), np.uint8)
    labels = np.array([[1, 2, 10], [3, 10, 10], [4, 5, 6], [7, 10, 10]])
    evaluate.save_image_grid(images, labels, CLASSES, tmp_path / "p.png", predicted=labels[::-1])
    assert (tmp_path / "p.png").stat().st_size > 1000


@pytest.fixture
def one_thread():
    """Tiny nets train faster on one thread, and far faster on a busy machine (no thread barriers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("net_name", ["mlp", "cnn"])
def test_one_head_per_position_learns_and_reports_whole_sequence_accuracy(net_name, one_thread):
    """The multi-head loss: positions flattened into one cross-entropy; val/accuracy = whole sequences."""
    import pytorch_lightning as pl

    from glyphlab.models.cnn import CNN
    from glyphlab.models.mlp import MLP
    from glyphlab.models.lit import GlyphClassifier, TensorBatches, predict_proba

    torch.manual_seed(0)
    patterns = np.random.default_rng(0).integers(0, 2, (10, 8, 8)).astype(np.uint8) * 255  # one per digit
    base = GlyphSet(patterns, np.arange(10), [str(d) for d in range(10)])
    parts = (np.arange(10),) * 3   # learning, not generalisation, is under test here
    glyphs, _ = sequences.make_sequences(base, parts, (300, 50, 1), image_size=16, max_digits=2, seed=0)
    x, y = torch.from_numpy(glyphs.images[:300]), torch.from_numpy(glyphs.labels[:300])
    net = (MLP(16, 11, hidden_sizes=(64,), n_positions=2) if net_name == "mlp"
           else CNN(16, 11, channels=(8, 16), hidden=64, n_positions=2))
    module = GlyphClassifier(net, lambda p: torch.optim.Adam(p, lr=0.01))
    logits = net(torch.zeros(3, 1, 16, 16))
    assert logits.shape == (3, 2, 11)
    loss = module._loss(logits, torch.tensor([[1, 10], [2, 3], [10, 10]]))
    flat = torch.nn.functional.cross_entropy(logits.reshape(6, 11), torch.tensor([1, 10, 2, 3, 10, 10]))
    assert torch.isclose(loss, flat)

    trainer = pl.Trainer(max_epochs=10, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, TensorBatches(x, y, 32, shuffle=True), TensorBatches(x, y, 300, shuffle=False))
    pred = predict_proba(net, glyphs.images[:300]).argmax(-1)
    assert pred.shape == (300, 2)
    whole = float((pred == glyphs.labels[:300]).all(1).mean())
    assert whole > 0.8
    # logged val/accuracy is whole-sequence (the same number), val/digit_accuracy per position
    assert float(trainer.callback_metrics["val/accuracy"]) == pytest.approx(whole, abs=1e-6)
    assert float(trainer.callback_metrics["val/digit_accuracy"]) >= whole


TINY_SEQUENCE = ["data=digit_sequence", "data.image_size=16", "data.source_image_size=8", "data.max_digits=3",
                 "data.n_train=60", "data.n_val=20", "data.n_test=20", "trainer.max_epochs=2",
                 "trainer.enable_progress_bar=false", "tracking.log_model=false", "threads=1"]


def test_run_logs_sequence_metrics_and_prediction_grid(store):
    from helpers import all_runs, compose

    from glyphlab.experiment import run

    val_accuracy = run(compose(["model=mlp", *TINY_SEQUENCE]))
    client, runs = all_runs(store)
    (r,) = runs
    m = r.data.metrics
    for key in ("test/accuracy", "test/macro_f1", "test/digit_accuracy", "test/length_accuracy",
                "test/position_accuracy/3", "test/class_accuracy/010__", "val/accuracy", "train/loss"):
        assert key in m, key
    assert m["test/accuracy"] <= m["test/digit_accuracy"] and m["data/n_test"] == 20 and m["data/n_classes"] == 11
    assert val_accuracy == pytest.approx(m["val/final_accuracy"])
    arts = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"confusion_matrix.png", "confusion_matrix.csv", "test_predictions.png"} <= arts
    rows = open(client.download_artifacts(r.info.run_id, "confusion_matrix.csv"), encoding="utf-8").read().splitlines()
    assert rows[0].split(",")[1:] == CLASSES
    assert sum(int(v) for row in rows[1:] for v in row.split(",")[1:]) == 20 * 3  # positions pooled


def test_sklearn_mlp_says_why_not(store):
    from helpers import compose

    from glyphlab.errors import ConfigError
    from glyphlab.experiment import run

    with pytest.raises(ConfigError, match="one label per image.*use model=mlp"):
        run(compose(["model=sklearn_mlp", *TINY_SEQUENCE[:-4]]))
