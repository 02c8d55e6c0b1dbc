"""Section precision: ``trainer.precision=bf16-mixed`` against ``32-true`` on this CPU — training img/s
of the default CNN and of the read_real recipe's net (the same CNN with ``augmentation=heavy``, online),
inference img/s, and test / eval accuracy of real runs over seeds."""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, RUN_PY, Row, compose, glyph_tensors, median, spread

PRECISIONS = ("32-true", "bf16-mixed")
OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot"   # the read_real recipe's real Greek letters
# The two setups of the issue: (label, the net's training config, the real run's overrides).
# read_real (conf/experiment/read_real.yaml) is the default cnn with augmentation=heavy online; its
# img/s is measured on stand-in 32×32 images of 24 classes, as many as Greek has.
RUNES = ("cnn on runes", ("model=cnn",), ("model=cnn", "data=runes"))
READ_REAL = ("read_real on greek", ("+experiment=read_real",),
             ("data=greek", "+experiment=read_real", "eval_data=omniglot", "eval_data.alphabet=Greek",
              f"eval_data.root={OMNIGLOT}"))


def native_bf16() -> bool:
    from glyphlab.models.training import cpu_has_native_bf16

    return cpu_has_native_bf16()


def training_rates(overrides, n_images: int, epochs: int, repeats: int) -> tuple[list[float], list[float]]:
    """Lightning-path img/s (median epoch after the first) of the config ``overrides`` compose to, in
    32-true and in bf16-mixed, alternated in every repeat; online augmentation included when the
    config has it (it runs inside the training step, under autocast like the net)."""
    import torch

    from benchmarks.train import lightning_epoch_rates
    from glyphlab import augment

    images, labels = glyph_tensors(n_images)
    rates = {p: [] for p in PRECISIONS}
    cpu_rates = {p: [] for p in PRECISIONS}
    for r in range(repeats):
        for precision in (PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]):
            cfg = compose([*overrides, f"trainer.precision={precision}"])
            augmenter = augment.build_augmenter(cfg.augmentation) if cfg.augmentation.mode == "online" else None
            torch.manual_seed(0)
            per_cpu = []
            rates[precision].append(median(lightning_epoch_rates(cfg, images, labels, epochs, augmenter=augmenter,
                                                                 cpu_rates=per_cpu)))
            cpu_rates[precision].append(median(per_cpu))
    return rates["32-true"], rates["bf16-mixed"], cpu_rates["32-true"], cpu_rates["bf16-mixed"]


def inference_rates(n_images: int = 4096, repeats: int = 3, batch_size: int = 512) -> dict:
    """``lit.predict_proba``'s forward pass (the evaluation's, batch 512; the server's, one image a
    request) in float32 and under bf16 autocast, alternated: img/s, images per CPU-second and the
    one-image latency of each, as lists over repeats; and ``agree``, the share of argmax predictions
    the two agree on (an untrained net: its logits are close together, a lower bound)."""
    import torch

    from benchmarks.common import build_net
    from glyphlab.models.lit import to_input

    @torch.no_grad()
    def predict_proba(images, bf16, size=batch_size):  # lit.predict_proba, the forward pass under autocast or not
        out = []
        for start in range(0, len(images), size):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(to_input(torch.from_numpy(images[start:start + size])))
            out.append(torch.softmax(logits.float(), dim=-1))
        return torch.cat(out).numpy()

    net, _ = build_net(compose(["model=cnn"]))
    net.eval()
    images = glyph_tensors(n_images)[0].numpy()
    out = {k: [] for k in ("f32", "bf16", "f32_cpu", "bf16_cpu", "f32_one_ms", "bf16_one_ms")}
    predict_proba(images[:batch_size], True), predict_proba(images[:batch_size], False)  # warm-up
    reference = None  # float32's probabilities, which bf16's are compared with
    for _ in range(repeats):
        for kind, bf in (("f32", False), ("bf16", True)):
            started, cpu = time.perf_counter(), time.process_time()
            probs = predict_proba(images, bf)
            out[kind].append(n_images / (time.perf_counter() - started))
            out[f"{kind}_cpu"].append(n_images / (time.process_time() - cpu))
            if bf:
                out["agree"] = float((probs.argmax(-1) == reference.argmax(-1)).mean())
            else:
                reference = probs
            one = images[:64]
            cpu = time.process_time()   # CPU time: single calls' wall time is mostly the shared machine's noise
            predict_proba(one, bf, size=1)
            out[f"{kind}_one_ms"].append((time.process_time() - cpu) / len(one) * 1e3)
    return out


def accuracy_runs(overrides, seeds, work: Path, parallel: int = 2) -> dict[str, list[tuple[float, float | None]]]:
    """(test accuracy, eval accuracy or None) per seed of real ``run.py`` runs in each precision,
    ``parallel`` at a time with 1 thread each, into a throw-away MLflow store; model not logged."""
    import os

    # The user's data cache (nothing here is timed, and building Greek twice at once would race).
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", PYTHONUNBUFFERED="1")
    work.mkdir(parents=True, exist_ok=True)
    jobs = [(p, s) for s in seeds for p in PRECISIONS]
    results: dict[str, list] = {p: [] for p in PRECISIONS}
    running: list[tuple[str, int, subprocess.Popen]] = []

    def reap(proc_info):
        precision, seed, proc = proc_info
        out, err = proc.communicate()
        test = re.search(r"test/accuracy (\d\.\d+)", out)
        if proc.returncode != 0 or not test:
            raise RuntimeError(f"run.py {' '.join(overrides)} seed={seed} trainer.precision={precision} exited "
                               f"{proc.returncode}:\n{err[-2000:]}")
        ev = re.search(r"eval/accuracy (\d\.\d+)", out)
        results[precision].append((float(test.group(1)), float(ev.group(1)) if ev else None))

    for precision, seed in jobs:
        if len(running) >= parallel:
            reap(running.pop(0))
        cmd = [sys.executable, str(RUN_PY), *overrides, f"seed={seed}", f"trainer.precision={precision}", "threads=1",
               "tracking.log_model=false", "trainer.enable_progress_bar=false", "tracking.experiment=bench-precision",
               f"hydra.run.dir={work / f'{precision}-{seed}-{len(results[precision])}'}"]
        running.append((precision, seed, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                           stderr=subprocess.PIPE, text=True)))
    for info in running:
        reap(info)
    return results


def _mean_std(values) -> str:
    import statistics

    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"


def bench_precision(n_images: int = 4096, epochs: int = 3, repeats: int = 3,
                    shared: dict | None = None) -> list[Row]:
    """bf16-mixed / 32-true: training img/s (default CNN, read_real net) and inference img/s.
    ``shared`` receives the median img/s per setup and precision for the flops section."""
    import torch

    rows = []
    has_bf16 = native_bf16()
    where = (f"this CPU {'has' if has_bf16 else 'has no'} native bf16 (avx512_bf16/amx_bf16); "
             f"{torch.get_num_threads()} threads, batch 128, {n_images} images × {epochs - 1} timed epochs, Lightning path")
    for label, net_overrides, _ in (RUNES, READ_REAL):
        f32, bf16, f32_cpu, bf16_cpu = training_rates(net_overrides, n_images, epochs, repeats)
        ratios = [b / a for a, b in zip(f32, bf16)]
        cpu_ratios = [b / a for a, b in zip(f32_cpu, bf16_cpu)]
        if shared is not None:
            shared[label] = {"32-true": median(f32), "bf16-mixed": median(bf16),
                             "32-true/cpu": median(f32_cpu), "bf16-mixed/cpu": median(bf16_cpu)}
        rows.append(Row("precision", f"{label}: training img/s, bf16-mixed / 32-true",
                        f"{median(cpu_ratios):.2f}× per CPU-s (wall {median(ratios):.2f}×)",
                        detail=f"{median(bf16):.0f} vs {median(f32):.0f} img/s wall"
                               + (" (augmentation=heavy online, in the step)" if label == READ_REAL[0] else "")
                               + f"; {where}; per CPU-s {spread(cpu_ratios)}, wall {spread(ratios)}"))
    inf = inference_rates(repeats=repeats)
    ratios = [b / a for a, b in zip(inf["f32"], inf["bf16"])]
    cpu_ratios = [b / a for a, b in zip(inf["f32_cpu"], inf["bf16_cpu"])]
    one = [a / b for a, b in zip(inf["f32_one_ms"], inf["bf16_one_ms"])]
    rows.append(Row("precision", "inference (predict_proba, batch 512): bf16 autocast / float32 img/s",
                    f"{median(cpu_ratios):.2f}× per CPU-s (wall {median(ratios):.2f}×)",
                    detail=f"{median(inf['bf16']):.0f} vs {median(inf['f32']):.0f} img/s, default cnn; "
                           f"one image a call (serving): {median(inf['bf16_one_ms']):.2f} vs "
                           f"{median(inf['f32_one_ms']):.2f} CPU-ms, bf16 {median(one):.2f}× as fast; argmax "
                           f"agreement {inf['agree']:.1%} on an untrained net; wall {spread(ratios)}"))
    return rows


def bench_precision_accuracy(seeds=(0, 1, 2)) -> list[Row]:
    """Test (runes) and eval (read_real → Omniglot Greek) accuracy of real runs over ``seeds`` in
    bf16-mixed and 32-true (a section of its own: ~12 whole runs)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, _, overrides in (RUNES, READ_REAL):
            if label == READ_REAL[0] and not OMNIGLOT.is_dir():
                rows.append(Row("bf16_accuracy", f"{label}: eval accuracy, bf16-mixed vs 32-true", "not run",
                                detail=f"Omniglot not found at {OMNIGLOT}"))
                continue
            results = accuracy_runs(overrides, seeds, Path(tmp) / label.replace(" ", "_"))
            which, pick = ("eval", 1) if label == READ_REAL[0] else ("test", 0)
            acc = {p: [r[pick] for r in results[p]] for p in PRECISIONS}
            diff = median(acc["bf16-mixed"]) - median(acc["32-true"])
            rows.append(Row("bf16_accuracy", f"{label}: {which} accuracy, bf16-mixed − 32-true (median over seeds)",
                            f"{diff:+.4f}",
                            detail=f"bf16-mixed {_mean_std(acc['bf16-mixed'])} vs 32-true {_mean_std(acc['32-true'])} "
                                   f"(mean ± std, seeds {', '.join(map(str, seeds))}; bf16 "
                                   f"{' / '.join(f'{a:.4f}' for a in acc['bf16-mixed'])}, 32-true "
                                   f"{' / '.join(f'{a:.4f}' for a in acc['32-true'])}); real `run.py "
                                   f"{' '.join(o.replace(str(ROOT.parent), '..') for o in overrides)}`, threads=1, "
                                   f"2 at a time"))
    return rows
