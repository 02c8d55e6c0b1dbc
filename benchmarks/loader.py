"""Section loader: TensorBatches (whole-tensor index batches) vs DataLoader(TensorDataset)."""
from __future__ import annotations

import time

from benchmarks.common import Row, compose, glyph_tensors, median, spread
from benchmarks.train import raw_epoch_rates


def bench_loader(models=("mlp", "cnn"), n_images: int = 4096, epochs: int = 3, repeats: int = 3) -> list[Row]:
    """TensorBatches vs DataLoader(TensorDataset): batch iteration alone, and a raw training epoch."""
    import torch

    from glyphlab.models.lit import TensorBatches

    images, labels = glyph_tensors(n_images)
    rows = []
    loaders = {"TensorBatches": TensorBatches(images, labels, 128, shuffle=True),
               "DataLoader": torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                                         batch_size=128, shuffle=True)}
    it = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, batches in loaders.items():
            passes, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < 0.2 or passes < 2:
                for _x, _y in batches:
                    pass
                passes += 1
            it[name].append(passes * n_images / elapsed)
    it_ratio = [a / b for a, b in zip(it["TensorBatches"], it["DataLoader"])]
    rows.append(Row("loader", "TensorBatches / DataLoader, batch iteration alone", f"{median(it_ratio):.3g}×",
                    detail=f"{median(it['TensorBatches']):,.0f} vs {median(it['DataLoader']):,.0f} img/s, "
                           f"batch 128, shuffled; {spread(it_ratio)}"))
    for name in models:
        cfg = compose([f"model={name}"])
        ratios, tb, dl = [], [], []
        for _ in range(repeats):
            tb.append(median(raw_epoch_rates(cfg, images, labels, epochs, loader="tensor")))
            dl.append(median(raw_epoch_rates(cfg, images, labels, epochs, loader="dataloader")))
            ratios.append(tb[-1] / dl[-1])
        rows.append(Row("loader", f"{name}: raw training loop, TensorBatches / DataLoader img/s",
                        f"{median(ratios):.2f}×",
                        detail=f"{median(tb):.0f} vs {median(dl):.0f} img/s; ratio {spread(ratios)}"))
    return rows
