"""Each model family fits and predicts on a tiny, easy set."""
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from helpers import compose

from glyphlab.models import sklearn as skl
from glyphlab.models.cnn import CNN
from glyphlab.models.lit import GlyphClassifier, TensorBatches, predict_proba
from glyphlab.models.mlp import MLP


def bars(n_per_class=30, size=16, seed=0):
    """Three classes anyone can tell apart: a horizontal, a vertical and a diagonal bar, jittered."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per_class):
            img = np.zeros((size, size), np.uint8)
            k = rng.integers(4, size - 4)
            if label == 0:
                img[k, 2:-2] = 255
            elif label == 1:
                img[2:-2, k] = 255
            else:
                idx = np.arange(2, size - 2)
                img[idx, idx] = 255
            images.append(img)
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.mark.parametrize("net", [MLP(16, 3, hidden_sizes=(32,)), CNN(16, 3, channels=(8, 16), hidden=32),
                                 CNN(16, 3, channels=(8, 16), hidden=32, convs_per_block=2)])
def test_torch_net_learns_bars(net):
    import pytorch_lightning as pl

    torch.manual_seed(0)
    x, y = bars()
    module = GlyphClassifier(net, lambda p: torch.optim.Adam(p, lr=0.01))
    trainer = pl.Trainer(max_epochs=8, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    batches = TensorBatches(torch.from_numpy(x), torch.from_numpy(y), 16, shuffle=True)
    trainer.fit(module, batches, TensorBatches(torch.from_numpy(x), torch.from_numpy(y), 64, shuffle=False))
    proba = predict_proba(net, x)
    assert proba.shape == (len(x), 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert (proba.argmax(1) == y).mean() > 0.9
    assert {"train/loss", "val/accuracy"} <= set(trainer.callback_metrics)


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_training():
    import pytorch_lightning as pl

    x, y = bars(n_per_class=10)
    rates = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    module = GlyphClassifier(MLP(16, 3, hidden_sizes=(8,)), lambda p: torch.optim.SGD(p, lr=0.1), scheduler="cosine")
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()])
    trainer.fit(module, TensorBatches(torch.from_numpy(x), torch.from_numpy(y), 8, shuffle=True))
    assert len(rates) == 3 * 4 and rates[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(rates, rates[1:]))              # falls at every step, across epochs
    assert rates[-1] < 0.01 and trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="model.scheduler must be one of null, cosine, plateau, got 'step'"):
        GlyphClassifier(MLP(16, 3), lambda p: torch.optim.SGD(p, lr=0.1), scheduler="step")


@pytest.mark.parametrize("cls", [MLP, CNN])
def test_position_heads_shape(cls):
    net = cls(32, 11, n_positions=5)
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 5, 11)


def test_tensor_batches_cover_everything_and_reshuffle():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1)
    batches = TensorBatches(x, torch.arange(10), 4, shuffle=True, seed=1)
    assert len(batches) == 3
    first = torch.cat([b[1] for b in batches])
    second = torch.cat([b[1] for b in batches])
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert first.tolist() != second.tolist()


def test_sklearn_fit_logs_epochs_and_keeps_best():
    from sklearn.neural_network import MLPClassifier

    x, y = bars()
    seen = []
    est = skl.fit(MLPClassifier(hidden_layer_sizes=(32,), random_state=0), x, y, x, y, n_classes=3,
                  max_epochs=30, patience=3, on_epoch=lambda e, m: seen.append(m))
    assert seen and {"train/loss", "val/accuracy"} <= set(seen[0])
    assert (skl.predict_proba(est, x).argmax(1) == y).mean() == max(m["val/accuracy"] for m in seen)
    assert (skl.predict_proba(est, x).argmax(1) == y).mean() > 0.9


def test_sklearn_sample_weight_changes_the_fit():
    from sklearn.neural_network import MLPClassifier

    x, y = bars(10)
    w = np.where(y == 0, 10.0, 0.1)
    a = skl.fit(MLPClassifier(hidden_layer_sizes=(8,), random_state=0), x, y, x, y, n_classes=3,
                max_epochs=2, patience=5)
    b = skl.fit(MLPClassifier(hidden_layer_sizes=(8,), random_state=0), x, y, x, y, n_classes=3,
                max_epochs=2, patience=5, sample_weight=w)
    assert not np.allclose(a.coefs_[0], b.coefs_[0])


def test_cnn_stacks_convs_per_block_before_each_pool():
    net = CNN(16, 3, channels=(8, 16), hidden=32, convs_per_block=2)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 4
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 2
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 3)
    with pytest.raises(ValueError, match="convs_per_block"):
        CNN(16, 3, convs_per_block=0)


def test_the_default_cnn_fits_every_allowed_image_size():
    """Four blocks by default (experiments/synth_to_real: they read real handwriting better than two), and
    they fit every allowed image size (8 px and up): a block that meets a 1 px map keeps it instead of
    failing; where every block can pool, the net is what it always was."""
    assert list(compose(["model=cnn"]).model.net.channels) == [16, 32, 64, 128]
    for size, pools, side in [(32, 4, 2), (28, 4, 1), (16, 4, 1), (8, 3, 1)]:
        net = CNN(size, 5, channels=(4, 8, 16, 32), hidden=16)
        assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == pools
        assert net.head[1].in_features == 32 * side * side
        assert net(torch.zeros(2, 1, size, size)).shape == (2, 5)


def test_the_model_yaml_names_its_family_adapter():
    from helpers import compose

    from glyphlab import models
    from glyphlab.errors import ConfigError
    from glyphlab.models.sklearn_adapter import SklearnFamily
    from glyphlab.models.torch_adapter import TorchFamily

    assert isinstance(models.family(compose(["model=cnn"]).model.adapter), TorchFamily)
    assert isinstance(models.family(compose(["model=sklearn_mlp"]).model.adapter), SklearnFamily)
    # a model logged before adapters existed names only its family
    assert isinstance(models.family_of_logged({"family": "sklearn"}), SklearnFamily)
    with pytest.raises(ConfigError, match="model.adapter must name a model family class.*'glyphlab.nope.X'"):
        models.family("glyphlab.nope.X")
    with pytest.raises(ConfigError, match="subclass of glyphlab.models.Family, got 'glyphlab.models.cnn.CNN'"):
        models.family("glyphlab.models.cnn.CNN")


def bar_glyphs(n_per_class=20):
    from glyphlab.data import GlyphSet

    x, y = bars(n_per_class)
    return GlyphSet(x, y, ["-", "|", "\\"])


@pytest.mark.parametrize("val_images, early, plateau", [
    ("null", 2, 1),     # the rule switched off: the YAML values as they are
    (60, 2, 1),         # a validation split as large as model.patience_val_images: untouched
    (240, 4, 2),        # 60 images count as 240: both patiences × sqrt(240 / 60) = 2
    (540, 6, 3),        # × sqrt(540 / 60) = 3
])
def test_early_stopping_fires_on_a_plateau(store, tmp_path, val_images, early, plateau):
    import mlflow
    from helpers import compose

    from glyphlab.models.torch_adapter import TorchFamily

    # lr 0: val/accuracy never moves, so training stops `patience` epochs after the first one
    cfg = compose(["model=mlp", "model.optimizer.lr=0", "trainer.max_epochs=30", "callbacks.early_stopping.patience=2",
                   "model.scheduler=plateau", "model.plateau.patience=1", f"model.patience_val_images={val_images}",
                   "model.min_epoch_steps=0", "trainer.enable_progress_bar=false"])
    glyphs = bar_glyphs()                                           # 60 images, all of them the validation split
    with mlflow.start_run() as active:
        fitted = TorchFamily().fit(cfg, glyphs, glyphs.images, glyphs.labels, np.arange(len(glyphs)), None, tmp_path)
    assert {k: fitted.metrics[k] for k in ("train/stopped_epoch", "train/best_epoch")} == {
        "train/stopped_epoch": early, "train/best_epoch": 0}
    assert fitted.summary == f"stopped after epoch {early} (early stop), best epoch 0"
    # the run records the patiences it trained with
    params = mlflow.get_run(active.info.run_id).data.params
    assert params["train/early_stopping_patience"] == str(early) and params["train/plateau_patience"] == str(plateau)


def test_patiences_scale_only_for_a_validation_split_under_patience_val_images():
    from helpers import compose

    from glyphlab.errors import ConfigError
    from glyphlab.models.torch_adapter import TorchFamily
    from glyphlab.models.training import val_scaled_patience

    assert val_scaled_patience(2, 78, 500) == round(2 * (500 / 78) ** 0.5) == 5
    assert val_scaled_patience(7, 78, 500) == round(7 * (500 / 78) ** 0.5) == 18
    assert val_scaled_patience(7, 1080, 500) == val_scaled_patience(7, 500, 500) == 7   # a large split: untouched
    assert val_scaled_patience(7, 78, None) == val_scaled_patience(7, 78, 0) == val_scaled_patience(7, 78, 1) == 7
    for model in ("cnn", "mlp"):
        assert compose([f"model={model}"]).model.patience_val_images > 0
    with pytest.raises(ConfigError, match="model.patience_val_images must be an integer of at least 0, got -5"):
        TorchFamily().check_config(compose(["model=cnn", "model.patience_val_images=-5"]))


def test_plateau_schedule_cuts_the_learning_rate_when_val_accuracy_stops_improving(store, tmp_path):
    import mlflow
    from helpers import compose

    from glyphlab.errors import ConfigError
    from glyphlab.models.torch_adapter import TorchFamily

    cfg = compose(["model=mlp", "model.scheduler=plateau", "model.plateau.patience=0", "model.plateau.factor=0.5",
                   "model.optimizer.lr=0.001", "model.batch_size=16", "model.min_epoch_steps=0", "trainer.max_epochs=8",
                   "callbacks.early_stopping.patience=100", "trainer.enable_progress_bar=false"])
    glyphs = bar_glyphs()
    with mlflow.start_run() as active:
        TorchFamily().fit(cfg, glyphs, glyphs.images, glyphs.labels, np.arange(len(glyphs)), None, tmp_path)
    client = mlflow.tracking.MlflowClient()
    val, lr = ([h.value for h in client.get_metric_history(active.info.run_id, key)] for key in ("val/accuracy", "train/lr"))
    # The rule, with patience 0: an epoch whose val/accuracy is not a new best halves the next epoch's rate.
    expected, best = [0.001], -1.0
    for accuracy in val[:-1]:
        expected.append(expected[-1] if accuracy > best else expected[-1] * 0.5)
        best = max(best, accuracy)
    assert len(val) == len(lr) == 8 and lr == pytest.approx(expected)
    assert lr[1] == 0.001 and lr[-1] < 0.001                        # kept while val improves, cut once it stalls
    with pytest.raises(ConfigError, match=r"model.plateau \(bogus=1\) was refused: .*bogus"):
        GlyphClassifier(MLP(16, 3), lambda p: torch.optim.SGD(p, lr=0.1), scheduler="plateau", plateau={"bogus": 1})


def test_the_default_early_stopping_waits_for_the_plateau_schedule_to_cut_the_rate():
    from helpers import compose

    # Early stopping must outlast the schedule's patience, else a stalled run ends at its full rate.
    for model in ("cnn", "mlp"):
        cfg = compose([f"model={model}"])
        assert cfg.callbacks.early_stopping.patience > cfg.model.plateau.patience + 1
    assert compose(["model=cnn"]).model.scheduler == "plateau"


class ZeroTheNetInTheLastEpoch(pl.Callback):
    """Wipes the net's weights in the last epoch (named from YAML in the test below)."""

    def on_train_batch_end(self, trainer, module, *args):
        if trainer.current_epoch == trainer.max_epochs - 1:
            with torch.no_grad():
                for p in module.net.parameters():
                    p.zero_()


@pytest.mark.slow
def test_the_logged_and_served_model_is_the_best_val_epoch_not_the_last(store):
    import mlflow
    import pandas as pd
    from helpers import TINY, all_runs, compose

    from glyphlab.experiment import run
    from glyphlab.serving import encode_png

    run(compose(["model=mlp", *TINY, "trainer.max_epochs=3", "callbacks.early_stopping.patience=5",
                 "+callbacks.wipe._target_=test_models.ZeroTheNetInTheLastEpoch",
                 "+callbacks.lr._target_=pytorch_lightning.callbacks.LearningRateMonitor"]))
    client, (logged,) = all_runs(store)
    m, run_id = logged.data.metrics, logged.info.run_id
    val = [h.value for h in client.get_metric_history(run_id, "val/accuracy")]
    assert len(val) == 3 and val[-1] < 0.1 < max(val)              # the last epoch is wiped: chance level
    assert m["train/stopped_epoch"] == 2 and m["train/best_epoch"] == int(np.argmax(val)) < 2
    assert m["test/accuracy"] > 0.2
    assert len(client.get_metric_history(run_id, "train/lr")) == 3
    assert "lr-AdamW" in m                                          # LearningRateMonitor, added from YAML
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    x, _ = bars(2, size=16)
    proba = served.predict(pd.DataFrame({"image": [encode_png(image) for image in x]})).to_numpy()
    assert not np.allclose(proba, proba[0])                         # a wiped net answers the same for every image


def test_callbacks_come_from_the_callbacks_group(tmp_path):
    from helpers import compose

    from glyphlab.errors import ConfigError
    from glyphlab.models.training import build_callbacks

    cfg = compose(["callbacks.early_stopping.patience=7", "~callbacks.mlflow_metrics",
                   "+callbacks.timer._target_=pytorch_lightning.callbacks.Timer", "+callbacks.timer.duration=00:01:00:00"])
    kinds = {type(c).__name__: c for c in build_callbacks(cfg.callbacks, tmp_path)}
    assert set(kinds) == {"EarlyStopping", "ModelCheckpoint", "Timer", "CheckpointOnInterrupt"}
    assert kinds["EarlyStopping"].patience == 7 and kinds["ModelCheckpoint"].dirpath == str(tmp_path)
    with pytest.raises(ConfigError, match="callbacks.bad must name a Lightning callback with _target_"):
        build_callbacks(compose(["+callbacks.bad.patience=3"]).callbacks, tmp_path)


@pytest.mark.parametrize("members", [1, 2])
def test_a_net_logged_under_its_old_module_still_loads(tmp_path, members):
    """glyph_model.json names the net's class; models logged when the mlp lived in models/dense.py load."""
    from glyphlab.models.ensemble import Ensemble
    from glyphlab.models.torch_adapter import TorchFamily

    kwargs = {"image_size": 16, "n_classes": 3, "hidden_sizes": [8]}
    if members == 1:
        net, meta = MLP(**kwargs), {"target": "glyphlab.models.dense.MLP", "kwargs": kwargs}
    else:
        net = Ensemble("glyphlab.models.mlp.MLP", 2, **kwargs)
        meta = {"target": "glyphlab.models.ensemble.Ensemble",
                "kwargs": {"member": "glyphlab.models.dense.MLP", "members": 2, **kwargs}}
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    proba = TorchFamily().load({"weights": str(tmp_path / "weights.pt")}, {"net": meta})
    x = bars(2)[0]
    with torch.inference_mode():
        expected = torch.softmax(net.eval()(torch.from_numpy(x).unsqueeze(1).float() / 255.0), -1).numpy()
    np.testing.assert_allclose(proba(x), expected, rtol=1e-5, atol=1e-6)
