"""callbacks.weight_average: the mean of the epochs' weights is what the run keeps (glyphlab.models.lit.WeightAverage).

Real Lightning training of a tiny cnn on bars; a real run through Hydra composition into a temp MLflow store.
"""
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from helpers import TINY, all_runs, assert_nothing_running, compose, main_exit

from glyphlab.models.cnn import CNN
from glyphlab.models.lit import GlyphClassifier, TensorBatches, WeightAverage
from glyphlab.models.training import keep_best


class Snapshots(pl.Callback):
    """The module's weights at the end of every training epoch (registered after WeightAverage, so it sees the same)."""

    def __init__(self):
        self.states = []

    def on_train_epoch_end(self, trainer, module):
        self.states.append({k: v.detach().clone() for k, v in module.state_dict().items()})


def bars(n=90, size=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = np.zeros((n, size, size), np.uint8)
    for i, label in enumerate(labels):
        k = rng.integers(3, size - 3)
        if label == 0:
            images[i, k, 2:-2] = 255
        elif label == 1:
            images[i, 2:-2, k] = 255
        else:
            images[i, np.arange(2, size - 2), np.arange(2, size - 2)] = 255
    return images, labels


def fit(epochs, average, ckpt_path=None, root=None):
    torch.manual_seed(0)
    images, labels = bars()
    module = GlyphClassifier(CNN(16, 3, channels=(8, 16), hidden=16), lambda p: torch.optim.Adam(p, lr=1e-2))
    snapshots = Snapshots()
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[average, snapshots], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=root, num_sanity_val_steps=0)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    batches = TensorBatches(images, labels, batch_size=32, shuffle=True, seed=0)
    trainer.fit(module, batches, TensorBatches(images, labels, batch_size=90, shuffle=False), ckpt_path=ckpt_path,
                weights_only=True)
    return trainer, module, batches, snapshots


def test_the_run_keeps_the_mean_of_the_epochs_weights_from_start_on(tmp_path):
    trainer, module, batches, snapshots = fit(4, WeightAverage(start=1), root=tmp_path)
    metrics, summary = keep_best(trainer, module, batches)
    assert metrics == {"train/stopped_epoch": 3, "train/averaged_epochs": 3}
    assert summary == "stopped after epoch 3 (budget), mean weights of epochs 1-3 kept"
    kept = module.state_dict()
    for name, value in kept.items():
        if "running" in name or "num_batches" in name:
            continue
        mean = torch.stack([s[name].double() for s in snapshots.states[1:]]).mean(0)
        assert torch.allclose(value.double(), mean, atol=1e-6), name
    # BatchNorm statistics are those of the mean weights on the training images, not a mean of the epochs'
    norm = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    name = next(k for k, m in module.named_modules() if m is norm)
    averaged_buffers = torch.stack([s[f"{name}.running_var"] for s in snapshots.states[1:]]).mean(0)
    assert not torch.allclose(norm.running_var, averaged_buffers) and norm.momentum == 0.1 and not module.training


def test_a_resumed_run_averages_every_epoch_from_start(tmp_path):
    """The sums go into the checkpoint: a run resumed after epoch 1 still counts epoch 1's weights."""
    first, _, _, before = fit(2, WeightAverage(start=1), root=tmp_path)
    checkpoint = tmp_path / "two.ckpt"
    first.save_checkpoint(checkpoint)
    average = WeightAverage(start=1)
    _, _, _, after = fit(4, average, ckpt_path=checkpoint, root=tmp_path)
    assert average.n == 3 and len(after.states) == 2   # epoch 1 from the checkpoint, epochs 2 and 3 after the resume
    for name, total in average.sums.items():
        expected = sum(s[name].double() for s in [before.states[1], *after.states])
        assert torch.allclose(total, expected, atol=1e-6), name


def test_a_run_that_stops_before_start_keeps_its_best_epoch(tmp_path):
    trainer, module, batches, _ = fit(2, WeightAverage(start=5), root=tmp_path)
    metrics, summary = keep_best(trainer, module, batches)
    assert "train/averaged_epochs" not in metrics and summary.endswith("last epoch kept")


AVERAGE = ["+callbacks.weight_average._target_=glyphlab.models.lit.WeightAverage"]


@pytest.mark.slow
def test_a_run_with_weight_average_logs_how_many_epochs_it_averaged(store):
    from glyphlab.experiment import run

    run(compose(["model=cnn", *TINY, "trainer.max_epochs=3", "tracking.log_model=false", *AVERAGE,
                 "+callbacks.weight_average.start=1"]))
    _, (r,) = all_runs(store)
    assert r.info.status == "FINISHED" and r.data.metrics["train/averaged_epochs"] == 2
    assert "train/best_epoch" not in r.data.metrics


@pytest.mark.parametrize("start", ["-1", "1.5", "two"])
def test_a_start_that_is_not_an_epoch_is_one_line(start, store, capsys):
    code, last = main_exit(["model=cnn", *TINY, *AVERAGE, f"+callbacks.weight_average.start={start}"], capsys)
    assert code == 2 and last.startswith("glyphlab: error: callbacks.weight_average (WeightAverage") \
        and "start must be an epoch index >= 0" in last, last
    assert [r.info.status for r in assert_nothing_running(store)] in ([], ["FAILED"])
