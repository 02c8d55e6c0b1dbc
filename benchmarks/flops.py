"""Section flops: achieved training FLOP/s of the CNN vs this machine's float32 matmul peak."""
from __future__ import annotations

import statistics
import time

from benchmarks.common import Row, build_net, compose, glyph_tensors, judge, median, spread, steps_rate


def training_flops_per_image(cfg, batch_size: int = 128) -> float:
    """Forward + backward FLOPs of one training image (torch's FlopCounterMode: matmuls and
    convolutions; BatchNorm, ReLU, pooling and the optimizer are memory-bound and not counted)."""
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from glyphlab.models.lit import to_input

    net, _ = build_net(cfg)
    images, labels = glyph_tensors(batch_size)
    net.train()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(to_input(images)), labels).backward()
    return counter.get_total_flops() / batch_size


def matmul_peak(sizes=(256, 512, 1024, 2048), min_seconds: float = 0.3, dtype=None,
                cpu_peaks: list | None = None) -> tuple[float, int]:
    """(best FLOP/s of ``torch.mm`` over square ``sizes``, that size) at torch's thread count, in
    ``dtype`` (float32 by default; ``torch.bfloat16``: oneDNN's bf16 GEMM, the peak of bf16-mixed).
    ``cpu_peaks`` (when given) receives the best FLOP per CPU-second of this process."""
    import torch

    dtype = dtype or torch.float32
    best, best_n, best_cpu = 0.0, 0, 0.0
    for n in sizes:
        a, b, c = (torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype), torch.empty(n, n, dtype=dtype))
        torch.mm(a, b, out=c)  # warm-up
        calls, started, cpu = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - started) < min_seconds or calls < 2:
            torch.mm(a, b, out=c)
            calls += 1
        rate = 2 * n ** 3 * calls / elapsed
        best_cpu = max(best_cpu, 2 * n ** 3 * calls / max(time.process_time() - cpu, 1e-9))
        if rate > best:
            best, best_n = rate, n
    if cpu_peaks is not None:
        cpu_peaks.append(best_cpu)
    return best, best_n


def bench_flops(steps: int = 30, repeats: int = 3, lightning_rate: float | None = None,
                widths=((), ("model.net.channels=[32,64]",)), lightning_rates: dict | None = None) -> list[Row]:
    """Section flops: CNN training FLOP/s / matmul peak of the same precision (float32, and bf16 under
    autocast against the bf16 ``torch.mm`` peak), all at torch's thread count, peaks and steps measured
    back to back in every repeat; for the default CNN and each of ``widths`` (overrides giving other
    channel widths, for comparison). ``lightning_rate``: the train section's Lightning img/s (float32);
    ``lightning_rates``: the precision section's ``{setup: {precision: img/s}}`` (Lightning path)."""
    import torch

    from glyphlab.models.training import resolve_precision

    cfgs = [compose(["model=cnn", *w]) for w in widths]
    per_image = [training_flops_per_image(cfg) for cfg in cfgs]
    kinds = (("float32", None, False), ("bf16", torch.bfloat16, True))
    peaks = {k: [] for k, *_ in kinds}
    cpu_peaks = {k: [] for k, *_ in kinds}
    peak_sizes = {k: [] for k, *_ in kinds}
    ratios = {(i, k): [] for i in range(len(cfgs)) for k, *_ in kinds}
    cpu_ratios = {(i, k): [] for i in range(len(cfgs)) for k, *_ in kinds}
    for _ in range(repeats):
        for kind, dtype, bf16 in kinds:
            peak, n = matmul_peak(dtype=dtype, cpu_peaks=cpu_peaks[kind])
            peaks[kind].append(peak)
            peak_sizes[kind].append(n)
            for i, cfg in enumerate(cfgs):
                per_cpu = []
                ratios[i, kind].append(steps_rate(cfg, steps, bf16=bf16, cpu_rates=per_cpu) * per_image[i] / peak)
                cpu_ratios[i, kind].append(per_cpu[0] * per_image[i] / cpu_peaks[kind][-1])
    peak = {k: median(v) for k, v in peaks.items()}
    cpu_peak = {k: median(v) for k, v in cpu_peaks.items()}
    default = resolve_precision(compose().trainer.precision, "cpu")
    default_kind = "bf16" if default == "bf16-mixed" else "float32"
    rows = [Row("flops", "matmul peak, bf16 / float32 (torch.mm, square)", f"{peak['bf16'] / peak['float32']:.2f}×",
                detail=f"{peak['bf16'] / 1e9:.1f} vs {peak['float32'] / 1e9:.1f} GFLOP/s (best n: bf16 "
                       f"{statistics.mode(peak_sizes['bf16'])}, float32 {statistics.mode(peak_sizes['float32'])}), "
                       f"{torch.get_num_threads()} threads; {spread([b / a for a, b in zip(peaks['float32'], peaks['bf16'])])}; "
                       f"per CPU-second {cpu_peak['bf16'] / 1e9:.1f} vs {cpu_peak['float32'] / 1e9:.1f} GFLOP")]
    for i, (cfg, w, flops) in enumerate(zip(cfgs, widths, per_image)):
        for kind, *_ in kinds:
            r = ratios[i, kind]
            ratio = median(r)
            judged = not w and kind == default_kind
            target, verdict = judge("flops_cnn", ratio) if judged else ("–", "–")
            channels = list(cfg.model.net.channels)
            rows.append(Row("flops", f"cnn {channels} training FLOP/s / {kind} matmul peak (raw loop"
                                     + (", autocast" if kind == "bf16" else "") + ")"
                                     + (", the default" if judged else ""), f"{ratio:.0%}", target, verdict,
                            f"{ratio * peak[kind] / 1e9:.1f} GFLOP/s achieved ({flops / 1e6:.1f} MFLOP per image "
                            f"fwd+bwd, batch {cfg.model.batch_size}) vs {peak[kind] / 1e9:.1f} GFLOP/s {kind} "
                            f"torch.mm peak, {torch.get_num_threads()} threads; {spread(r)}; per CPU-second "
                            f"{median(cpu_ratios[i, kind]):.0%} ({spread(cpu_ratios[i, kind])})"))
    if lightning_rate:
        ratio = lightning_rate * per_image[0] / peak["float32"]
        target, verdict = judge("flops_cnn", ratio) if default_kind == "float32" else ("–", "–")
        rows.append(Row("flops", "cnn training FLOP/s / float32 matmul peak (Lightning path, 32-true, default cnn)",
                        f"{ratio:.0%}", target, verdict,
                        "the train section's Lightning img/s × FLOP per image / this section's peak"))
    for setup, rates in (lightning_rates or {}).items():
        for precision, rate in rates.items():
            if precision.endswith("/cpu"):
                continue
            kind = "bf16" if precision == "bf16-mixed" else "float32"
            # Per CPU-second: the precision section measured these img/s minutes before this section's peak,
            # possibly at another load; work per CPU-second does not depend on how the cores were shared.
            wall = rate * per_image[0] / peak[kind]
            cpu_rate = rates.get(f"{precision}/cpu")
            ratio = cpu_rate * per_image[0] / cpu_peak[kind] if cpu_rate else wall
            target, verdict = judge("flops_cnn", ratio) if precision == default else ("–", "–")
            rows.append(Row("flops", f"{setup}: training FLOP per CPU-second / {kind} matmul peak's (Lightning path, "
                                     f"{precision})" + (", the default" if precision == default else ""), f"{ratio:.0%}",
                            target, verdict,
                            f"the precision section's {cpu_rate or 0:.0f} img per CPU-s × {per_image[0] / 1e6:.1f} MFLOP "
                            f"per image / {cpu_peak[kind] / 1e9:.1f} GFLOP per CPU-s of torch.mm; by wall clock "
                            f"{rate:.0f} img/s / {peak[kind] / 1e9:.1f} GFLOP/s = {wall:.0%} (measured minutes apart)"
                                     + ("; augmentation's own work is not counted as FLOPs" if "read_real" in setup
                                        else "")))
    return rows
