"""The sections, in the order they run and appear in the table: name → how to run it at a size.

Each runner takes the size dict (``common.FULL`` or ``common.QUICK``, ``repeats`` possibly
overridden) and ``shared``, a dict a section may leave figures in for a later one (the train
section's Lightning img/s feeds the flops section's Lightning row). Add a section: a module with
its ``bench_<name>`` function, one line here.
"""
from __future__ import annotations


def _train(size, shared):
    from benchmarks.train import bench_train

    return bench_train(n_images=size["n_images"], epochs=size["epochs"], repeats=size["repeats"],
                       lightning_rates=shared.setdefault("lightning_rates", {}))


def _loader(size, shared):
    from benchmarks.loader import bench_loader

    return bench_loader(n_images=size["n_images"], epochs=size["epochs"], repeats=size["repeats"])


def _flops(size, shared):
    from benchmarks.flops import bench_flops

    return bench_flops(steps=size["steps"], repeats=size["repeats"],
                       lightning_rate=shared.get("lightning_rates", {}).get("cnn"),
                       lightning_rates=shared.get("precision_rates"))


def _precision(size, shared):
    from benchmarks.precision import bench_precision

    return bench_precision(n_images=size["n_images"], epochs=size["epochs"], repeats=size["repeats"],
                           shared=shared.setdefault("precision_rates", {}))


def _bf16_accuracy(size, shared):
    from benchmarks.precision import bench_precision_accuracy

    return bench_precision_accuracy(seeds=size["precision_seeds"]) if size["precision_seeds"] else []


def _fastpaths(size, shared):
    from benchmarks.fastpaths import bench_fastpaths

    return bench_fastpaths(steps=size["steps"], repeats=size["repeats"], with_compile=size["compile"])


def _startup(size, shared):
    from benchmarks.startup import bench_startup

    return bench_startup(repeats=size["startup_repeats"])


def _synth(size, shared):
    from benchmarks.synth import bench_synth

    return bench_synth(samples_per_class=size["synth_samples"], repeats=size["repeats"])


def _augment(size, shared):
    from benchmarks.augment import bench_augment

    return bench_augment(steps=size["steps"], repeats=size["repeats"])


def _sklearn_threads(size, shared):
    from benchmarks.sklearn_threads import bench_sklearn_threads

    return bench_sklearn_threads(epochs=size["sklearn_epochs"], repeats=size["repeats"])


def _sweep(size, shared):
    from benchmarks.sweep import bench_sweep

    return bench_sweep(sweep_args=size["sweep_args"], repeats=size.get("process_repeats") or size["sweep_repeats"])


def _e2e(size, shared):
    from benchmarks.e2e import bench_e2e

    return bench_e2e(repeats=size.get("process_repeats") or size["e2e_repeats"])


SECTIONS = {
    "train": _train,          # img/s of glyphlab's Lightning path vs a hand-written PyTorch loop (cnn, mlp)
    "loader": _loader,        # TensorBatches (whole-tensor index batches) vs DataLoader(TensorDataset)
    "precision": _precision,  # bf16-mixed vs 32-true: training and inference img/s, accuracy of real runs over seeds
    "bf16_accuracy": _bf16_accuracy,  # test / eval accuracy of real runs, bf16-mixed vs 32-true, 3 seeds (~12 runs)
    "flops": _flops,          # achieved training FLOP/s of the CNN vs this machine's matmul peak, float32 and bf16
    "fastpaths": _fastpaths,  # channels_last, torch.compile, batch size and thread count, vs the default CNN step
    "startup": _startup,      # `run.py --cfg job` wall time and imports; process start → first training step
    "synth": _synth,          # stroke synthesizer images/s per core (runes, kana at 32×32); the data set cache
    "augment": _augment,      # online augmentation images/s per option and its share of a CNN step
    "sklearn_threads": _sklearn_threads,  # sklearn_mlp's fit with its BLAS uncapped, at 1 and at 2 threads
    "sweep": _sweep,          # a 6-job sweep: sequential wall vs its fits; jobs/min sequential and joblib n_jobs=2
    "e2e": _e2e,              # `python run.py model=cnn data=runes`: wall time and test accuracy
}
