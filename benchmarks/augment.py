"""Section augment: online augmentation images/s per option and its share of a CNN training step;
and the measurement behind glyphlab.augment.RandomElasticPixels (kornia's elastic transform vs it)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks.common import IMAGE_SIZE, ROOT, Row, compose, median, spread, steps_rate
from glyphlab import augment

CONF_DIR = ROOT / "conf" / "augmentation"


def bench_augment(steps: int = 30, repeats: int = 3, min_seconds: float = 0.5) -> list[Row]:
    """Online images/s of each augmentation option (:func:`benchmark_augment`) and its share of a
    CNN training step on the same batch size."""
    cfg = compose(["model=cnn"])
    bs = cfg.model.batch_size
    rates, step_rates = {}, []
    for _ in range(repeats):
        for name, rate in benchmark_augment(image_size=IMAGE_SIZE, batch=bs, min_seconds=min_seconds).items():
            rates.setdefault(name, []).append(rate)
        step_rates.append(steps_rate(cfg, steps))
    step_s = bs / median(step_rates)
    rows = []
    for name, r in rates.items():
        aug_s = bs / median(r)
        rows.append(Row("augment", f"augmentation={name}, online", f"{median(r):,.0f} img/s",
                        detail=f"{aug_s / (aug_s + step_s):.0%} of a CNN training step with it "
                               f"({aug_s * 1e3:.1f} of {(aug_s + step_s) * 1e3:.1f} ms per batch of {bs}); "
                               f"{spread(r)}"))
    return rows


def benchmark_augment(image_size: int = 32, batch: int = 128, min_seconds: float = 0.5,
                      conf_dir: str | Path = CONF_DIR) -> dict[str, float]:
    """Images per second of each option's online transform on this machine's CPU.

    Runs every ``conf_dir/*.yaml`` with at least one stage on random glyph-like batches
    (float ``[batch, 1, image_size, image_size]``) for at least ``min_seconds`` each.
    """
    from omegaconf import OmegaConf

    rates = {}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        x = glyph_batch(batch, image_size)
        for path in sorted(Path(conf_dir).glob("*.yaml")):
            augmenter = augment.build_augmenter(OmegaConf.load(path))
            if augmenter is None:
                continue
            augmenter(x)  # warm-up: first calls build kernels and caches
            calls, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < min_seconds or calls < 3:
                augmenter(x)
                calls += 1
            rates[path.stem] = calls * batch / elapsed
    return rates


def benchmark_elastic(image_size: int = 32, batch: int = 128, repeats: int = 40) -> dict[str, float]:
    """Images per second of kornia's ``elastic_transform2d`` and of :class:`RandomElasticPixels`
    (same noise, same result), best of ``repeats`` interleaved calls: the measurement that
    justifies the hand-written smoothing."""
    from kornia.geometry.transform import elastic_transform2d

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = glyph_batch(batch, image_size)
        stage = augment.RandomElasticPixels(alpha=34, sigma=4, p=1.0)
        params = stage.forward_parameters(x.shape)
    size, alpha = stage.kernel_size, 2 * stage.alpha_px / image_size
    calls = {"kornia": lambda: elastic_transform2d(x, params["noise"], (size, size), (4.0, 4.0), (alpha, alpha)),
             "glyphlab": lambda: stage.apply_transform(x, params, stage.flags)}
    best = dict.fromkeys(calls, float("inf"))
    with torch.no_grad():
        for _ in range(repeats):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: batch / seconds for name, seconds in best.items()}


def glyph_batch(n: int, size: int) -> torch.Tensor:
    """Random glyph-like strokes: float ``[n, 1, size, size]``, bright lines on dark."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    a, b = torch.rand(2, n, 1, 1) * 2 - 1
    ring = ((xx ** 2 + yy ** 2).sqrt() - 0.5 - 0.2 * a).abs() < 0.08
    bar = (xx - b * yy).abs() < 0.08
    return (ring | bar).float().unsqueeze(1)
