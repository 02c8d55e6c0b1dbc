"""Section sklearn_threads: how many BLAS threads the scikit-learn MLP's fit should get.

The default sklearn_mlp (MLPClassifier [256, 128], batch 128) fitted on the default runes set through
glyphlab's own epoch loop (``glyphlab.models.sklearn.fit``) for a fixed number of epochs, with the BLAS
pools uncapped (one thread per core: what ``threads=null`` gave before), capped at 1 and at 2 threads,
interleaved per repeat; wall and CPU seconds of the fit. Once on the machine as it is, once with one
core kept busy by another process (a shared machine, a parallel sweep).
"""
from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import Row, compose, container, median, spread
from glyphlab import usable_cores


def runes_split(cfg):
    """The default runes set's train and val images and labels, as a run splits them."""
    from glyphlab import data as datasets

    glyphs = datasets.load(container(cfg.data), cache_dir=cfg.cache_dir)
    train, val, _ = datasets.split(glyphs, cfg.split.val, cfg.split.test, cfg.seed)
    return (glyphs.images[train], glyphs.labels[train], glyphs.images[val], glyphs.labels[val], glyphs.n_classes)


def fit_seconds(cfg, data, epochs: int, blas_threads: int | None) -> tuple[float, float]:
    """(wall, CPU) seconds of ``epochs`` passes of the configured MLP; ``blas_threads`` None: uncapped."""
    from hydra.utils import instantiate
    from threadpoolctl import threadpool_limits

    from glyphlab.models import sklearn as skl

    x_train, y_train, x_val, y_val, n_classes = data
    estimator = instantiate(cfg.model.estimator, _convert_="all")
    with threadpool_limits(blas_threads):
        started, cpu = time.perf_counter(), time.process_time()
        skl.fit(estimator, x_train, y_train, x_val, y_val, n_classes=n_classes, max_epochs=epochs, patience=epochs)
        return time.perf_counter() - started, time.process_time() - cpu


def uncapped_threads() -> int:
    """The threads the process's BLAS pools start with (one per core unless an environment says else)."""
    import sklearn  # noqa: F401 - scipy's OpenBLAS and sklearn's OpenMP, as in a run
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def bench_sklearn_threads(epochs: int = 10, repeats: int = 3, overrides=()) -> list[Row]:
    """Wall ratio uncapped / 1 thread per condition (CPU ratio beside it); every setting's seconds in the detail."""
    cfg = compose(["model=sklearn_mlp", *overrides])
    data = runes_split(cfg)
    n = uncapped_threads()
    settings = {f"one per core ({n})": None, "1": 1, "2": 2}
    fit_seconds(cfg, data, 1, None)  # warm-up: imports, first allocations
    rows = []
    for busy in (False, True):
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            wall = {name: [] for name in settings}
            cpu = {name: [] for name in settings}
            for _ in range(repeats):
                for name, threads in settings.items():
                    w, c = fit_seconds(cfg, data, epochs, threads)
                    wall[name].append(w)
                    cpu[name].append(c)
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        where = "one core busy with another process" if busy else "no extra load"
        uncapped = f"one per core ({n})"
        ratios = [u / one for u, one in zip(wall[uncapped], wall["1"])]
        cpu_ratios = [u / one for u, one in zip(cpu[uncapped], cpu["1"])]
        detail = "; ".join(f"{name}: {median(wall[name]):.2f} s wall, {median(cpu[name]):.2f} CPU-s"
                           for name in settings)
        rows.append(Row("sklearn_threads", f"sklearn_mlp fit on runes, BLAS threads one per core / 1, wall, {where}",
                        f"{median(ratios):.2f}× (CPU-s {median(cpu_ratios):.2f}×)",
                        detail=f"{epochs} epochs, {usable_cores()} cores; {detail}; {spread(ratios)}"))
    return rows
