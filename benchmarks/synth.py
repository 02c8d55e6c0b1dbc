"""Section synth: stroke synthesizer images/s per core (runes, kana at 32×32) and the data set cache."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import IMAGE_SIZE, Row, compose, container, judge, median, spread


def bench_synth(samples_per_class: int = 200, repeats: int = 3, cache_overrides=()) -> list[Row]:
    """Section 4: stroke synthesizer images per CPU-second (= per core: it runs on one thread)
    for the runes and kana configs at 32×32; and the data set cache vs building the default runes
    set (``cache_overrides``: extra overrides for that set, e.g. a smaller one in tests)."""
    from threadpoolctl import threadpool_limits

    from glyphlab import data

    rows = []
    with threadpool_limits(1):
        for name in ("runes", "kana"):
            cfg = compose([f"data={name}", f"data.image_size={IMAGE_SIZE}",
                           f"data.samples_per_class={samples_per_class}"])
            spec = container(cfg.data)
            data.load(dict(spec, samples_per_class=2), cache_dir=None)  # warm-up: stroke tables, SVG parsing
            cpu, wall = [], []
            for r in range(repeats):
                started_cpu, started = time.process_time(), time.perf_counter()
                glyphs = data.load(dict(spec, seed=r), cache_dir=None)
                cpu.append(len(glyphs) / (time.process_time() - started_cpu))
                wall.append(len(glyphs) / (time.perf_counter() - started))
            target, verdict = judge("synth_per_core", median(cpu))
            rows.append(Row("synth", f"{name} synthesizer at {IMAGE_SIZE}×{IMAGE_SIZE}, images/s per core",
                            f"{median(cpu):,.0f}", target, verdict,
                            f"{len(glyphs)} images of {glyphs.n_classes} classes per repeat, 1 thread, images per "
                            f"CPU-second ({median(wall):,.0f} per wall-second on the shared machine); "
                            f"{spread(cpu)}"))
    # The cache: the default runes set from disk vs synthesizing it.
    cfg = compose(["data=runes", *cache_overrides])
    spec = container(cfg.data)
    with tempfile.TemporaryDirectory() as tmp:
        build, read = [], []
        for r in range(repeats):
            started = time.perf_counter()
            glyphs = data.load(spec, cache_dir=Path(tmp) / str(r))  # miss: builds and writes
            build.append(time.perf_counter() - started)
            started = time.perf_counter()
            data.load(spec, cache_dir=Path(tmp) / str(r))  # hit
            read.append(time.perf_counter() - started)
    speedups = [b / r for b, r in zip(build, read)]
    rows.append(Row("synth", "data set cache: build / load from cache (default runes)", f"{median(speedups):.0f}×",
                    detail=f"{len(glyphs)} images: built + written in {median(build):.2f} s, read back in "
                           f"{median(read) * 1e3:.0f} ms"))
    return rows
