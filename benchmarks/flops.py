"""Section flops: achieved training FLOP/s of the CNN vs this machine's float32 matmul peak."""
from __future__ import annotations

import statistics
import time

from benchmarks.common import Row, build_net, compose, glyph_tensors, judge, median, spread, steps_rate


def training_flops_per_image(cfg, batch_size: int = 128) -> float:
    """Forward + backward FLOPs of one training image (torch's FlopCounterMode: matmuls and
    convolutions; BatchNorm, ReLU, pooling and the optimizer are memory-bound and not counted)."""
    import torch
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from glyphlab.models.lit import to_input

    net, _ = build_net(cfg)
    images, labels = glyph_tensors(batch_size)
    net.train()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(to_input(images)), labels).backward()
    return counter.get_total_flops() / batch_size


def matmul_peak(sizes=(256, 512, 1024, 2048), min_seconds: float = 0.3) -> tuple[float, int]:
    """(best float32 FLOP/s of ``torch.mm`` over square ``sizes``, that size) at torch's thread count."""
    import torch

    best, best_n = 0.0, 0
    for n in sizes:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        torch.mm(a, b, out=c)  # warm-up
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < min_seconds or calls < 2:
            torch.mm(a, b, out=c)
            calls += 1
        rate = 2 * n ** 3 * calls / elapsed
        if rate > best:
            best, best_n = rate, n
    return best, best_n


def bench_flops(steps: int = 30, repeats: int = 3, lightning_rate: float | None = None,
                widths=((), ("model.net.channels=[32,64]",))) -> list[Row]:
    """Section 2: CNN training FLOP/s / float32 matmul peak, both at torch's thread count,
    measured back to back in every repeat; for the default CNN and each of ``widths``
    (overrides giving other channel widths, for comparison)."""
    import torch

    cfgs = [compose(["model=cnn", *w]) for w in widths]
    per_image = [training_flops_per_image(cfg) for cfg in cfgs]
    peaks, peak_sizes, ratios = [], [], [[] for _ in cfgs]
    for _ in range(repeats):
        peak, n = matmul_peak()
        peaks.append(peak)
        peak_sizes.append(n)
        for i, cfg in enumerate(cfgs):
            ratios[i].append(steps_rate(cfg, steps) * per_image[i] / peak)
    peak = median(peaks)
    rows = []
    for cfg, w, flops, r in zip(cfgs, widths, per_image, ratios):
        ratio = median(r)
        target, verdict = judge("flops_cnn", ratio) if not w else ("–", "–")
        channels = list(cfg.model.net.channels)
        rows.append(Row("flops", f"cnn {channels} training FLOP/s / float32 matmul peak (raw loop)"
                                 + ("" if w else ", the default"), f"{ratio:.0%}", target, verdict,
                        f"{ratio * peak / 1e9:.1f} GFLOP/s achieved ({flops / 1e6:.1f} MFLOP per image fwd+bwd, batch "
                        f"{cfg.model.batch_size}) vs {peak / 1e9:.1f} GFLOP/s torch.mm peak "
                        f"(n={statistics.mode(peak_sizes)}), {torch.get_num_threads()} threads; {spread(r)}"))
    if lightning_rate:
        ratio = lightning_rate * per_image[0] / peak
        target, verdict = judge("flops_cnn", ratio)
        rows.append(Row("flops", "cnn training FLOP/s / matmul peak (Lightning path, default cnn)", f"{ratio:.0%}",
                        target, verdict, "the train section's Lightning img/s × FLOP per image / this section's peak"))
    return rows
