"""Section train: img/s of glyphlab's Lightning path vs a hand-written PyTorch loop (cnn, mlp)."""
from __future__ import annotations

import tempfile
import time

from benchmarks.common import Row, build_net, compose, glyph_tensors, judge, median, quiet_lightning, spread


def lightning_epoch_rates(cfg, images, labels, epochs: int, augmenter=None, cpu_rates: list | None = None) -> list[float]:
    """img/s of each epoch after the first, trained the way ``TorchFamily.fit`` trains:
    GlyphClassifier over TensorBatches under the ``cfg.trainer`` Trainer (its precision made
    concrete as in a run), with its checkpoint callback and ``augmenter`` (online augmentation, if
    any). No validation set (the raw loop has none) and no progress bar or MLflow callback.

    An epoch is timed from its start to the next one's start, so whatever Lightning does between
    epochs (checkpointing, hooks) is counted. ``cpu_rates`` (when given) receives the same epochs'
    images per CPU-second of this process: on a machine shared with other jobs, the work a step
    costs is steadier than its wall time.
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from glyphlab.models.lit import GlyphClassifier, TensorBatches
    from glyphlab.models.training import resolve_precision

    quiet_lightning()
    starts: list[float] = []
    cpu: list[float] = []

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            starts.append(time.perf_counter())
            cpu.append(time.process_time())

        def on_train_end(self, trainer, module):
            starts.append(time.perf_counter())
            cpu.append(time.process_time())

    net, optimizer = build_net(cfg)
    module = GlyphClassifier(net, optimizer, augmenter=augmenter)
    batches = TensorBatches(images, labels, cfg.model.batch_size, shuffle=True, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = instantiate(cfg.trainer, max_epochs=epochs, logger=False, default_root_dir=tmp,
                              precision=resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator),
                              enable_progress_bar=False, enable_model_summary=False,
                              callbacks=[Clock(), pl.callbacks.ModelCheckpoint(dirpath=tmp, save_last=True,
                                                                              save_top_k=0)])
        trainer.fit(module, batches)
    if cpu_rates is not None:
        cpu_rates.extend(len(images) / (b - a) for a, b in zip(cpu[1:-1], cpu[2:]))
    return [len(images) / (b - a) for a, b in zip(starts[1:-1], starts[2:])]


def raw_epoch_rates(cfg, images, labels, epochs: int, loader: str = "tensor") -> list[float]:
    """img/s of each epoch after the first of a minimal hand-written loop: same net, optimizer,
    batch size and input conversion as the Lightning path, nothing else.

    loader: ``tensor`` (glyphlab's TensorBatches) or ``dataloader`` (torch DataLoader over a
    TensorDataset: per-sample indexing + collate).
    """
    import torch
    from torch.nn import functional as F

    from glyphlab.models.lit import TensorBatches, to_input

    net, optimizer = build_net(cfg)
    opt = optimizer(net.parameters())
    if loader == "tensor":
        batches = TensorBatches(images, labels, cfg.model.batch_size, shuffle=True, seed=0)
    elif loader == "dataloader":
        batches = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                              batch_size=cfg.model.batch_size, shuffle=True,
                                              generator=torch.Generator().manual_seed(0))
    else:
        raise ValueError(f"loader must be 'tensor' or 'dataloader', got {loader!r}")
    net.train()
    rates = []
    for epoch in range(epochs):
        started = time.perf_counter()
        for x, y in batches:
            loss = F.cross_entropy(net(to_input(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch > 0:  # the first epoch pays one-off costs (allocator, oneDNN kernel selection)
            rates.append(len(images) / (time.perf_counter() - started))
    return rates


def bench_train(models=("cnn", "mlp"), n_images: int = 4096, epochs: int = 3, repeats: int = 3,
                lightning_rates: dict | None = None) -> list[Row]:
    """Section 1: Lightning path / raw loop img/s per model, A and B interleaved in every repeat.
    ``lightning_rates`` (when given) receives each model's median Lightning img/s."""
    import torch

    images, labels = glyph_tensors(n_images)
    rows = []
    for name in models:
        cfg = compose([f"model={name}"])
        lit, raw = [], []
        for _ in range(repeats):
            lit.append(median(lightning_epoch_rates(cfg, images, labels, epochs)))
            raw.append(median(raw_epoch_rates(cfg, images, labels, epochs)))
        ratios = [a / b for a, b in zip(lit, raw)]
        ratio = median(ratios)
        if lightning_rates is not None:
            lightning_rates[name] = median(lit)
        per_step_ms = (1 / median(lit) - 1 / median(raw)) * cfg.model.batch_size * 1e3
        target, verdict = judge("lightning_cnn", ratio) if name == "cnn" else ("–", "–")
        rows.append(Row("train", f"{name}: Lightning path / raw loop, img/s", f"{ratio:.2f}×", target, verdict,
                        f"Lightning {median(lit):.0f} img/s, raw {median(raw):.0f} img/s "
                        f"(Lightning costs {per_step_ms:+.2f} ms/step); batch {cfg.model.batch_size}, "
                        f"{torch.get_num_threads()} threads, {n_images} images × {epochs - 1} timed epochs; "
                        f"ratio {spread(ratios)}"))
    return rows
