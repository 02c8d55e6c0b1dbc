"""``make gpu-check``: does glyphlab train on this machine's GPU, and how much faster than on its CPU?

    python -m benchmarks.gpu_check                    # = make gpu-check (a few minutes at most)
    python -m benchmarks.gpu_check --accelerator cpu --quick   # the same steps on the CPU: a smoke run

Where CUDA is present:

1. the default run end to end on the GPU: ``python run.py model=cnn augmentation=affine
   trainer.accelerator=auto trainer.precision=bf16-mixed`` (``16-mixed`` where the GPU has no bf16)
   with a 2-epoch budget, into a throw-away MLflow store; it must finish with Lightning saying the
   GPU was used.
2. training throughput of the default CNN with online augmentation (kornia, on the training
   device) through glyphlab's Lightning path (GlyphClassifier over TensorBatches): img/s on the
   GPU in mixed and in full precision, next to the CPU's.

Where there is none, it says so and exits 0. Not part of ``make bench``: that table is the CPU's.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONLINE = "affine"  # an augmentation with mode: online, so it runs per batch on the training device


def cuda_status() -> tuple[bool, str]:
    """(usable, one line about it)."""
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return False, f"no CUDA GPU here (torch {torch.__version__}, {build})"
    props = torch.cuda.get_device_properties(0)
    return True, (f"{torch.cuda.device_count()} CUDA GPU(s): {props.name}, compute capability "
                  f"{props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB, "
                  f"bf16 {'supported' if torch.cuda.is_bf16_supported() else 'not supported'}")


def mixed_precision(accelerator: str) -> str:
    """bf16 autocast where the device has it (Ampere and later GPUs, CPUs), else fp16 autocast."""
    import torch

    if accelerator == "cpu" or torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed"


def compose(overrides=()):
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def run_overrides(accelerator: str, precision: str, quick: bool) -> list[str]:
    """The default run's overrides for the end-to-end check."""
    small = ["data.samples_per_class=40", "data.image_size=16", "trainer.max_epochs=1"] if quick else []
    return ["model=cnn", f"augmentation={ONLINE}", f"trainer.accelerator={accelerator}",
            f"trainer.precision={precision}", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
            "tracking.log_model=false", *small]


def end_to_end(accelerator: str, precision: str, quick: bool, timeout: float = 240) -> str:
    """Run ``run.py`` with :func:`run_overrides` into a temporary MLflow store; returns its summary
    lines. Raises RuntimeError when it fails or did not train on the device asked for."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db", PYTHONUNBUFFERED="1")
        cmd = [sys.executable, str(ROOT / "run.py"), *run_overrides(accelerator, precision, quick),
               f"hydra.run.dir={tmp}/run"]
        started = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        took = time.perf_counter() - started
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"the run failed (exit {p.returncode}):\n{out[-3000:]}")
    used = re.search(r"GPU available: (\w+), used: (\w+)", out)
    on_gpu = bool(used) and used.group(2) == "True"
    if on_gpu != (accelerator != "cpu"):
        raise RuntimeError(f"the run trained on the {'GPU' if on_gpu else 'CPU'}, expected the "
                           f"{'CPU' if accelerator == 'cpu' else 'GPU'}: {used.group(0) if used else out[-2000:]}")
    summary = [line for line in p.stdout.splitlines() if line.startswith(("test/accuracy", "model "))]
    return "\n".join(summary + [f"{took:.0f} s for the whole run"])


def throughput(accelerator: str, precision: str, n_images: int, epochs: int = 3) -> tuple[float, str]:
    """img/s of training the default CNN with online augmentation, the epochs after the first
    (which pays one-off costs: CUDA context, kernel selection) on random glyph-sized images;
    returns it with the device the augmentation ran on."""
    import logging
    import warnings

    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate

    from glyphlab import augment
    from glyphlab.models.lit import GlyphClassifier, TensorBatches

    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=name)  # "no val_dataloader": none is wanted here
    cfg = compose(["model=cnn", f"augmentation={ONLINE}"])
    size, n_classes = cfg.data.image_size, 24
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_images, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, n_classes, (n_images,), generator=g)
    torch.manual_seed(0)
    net = instantiate(cfg.model.net, image_size=size, n_classes=n_classes, n_positions=1)
    module = GlyphClassifier(net, instantiate(cfg.model.optimizer), augmenter=augment.build_augmenter(cfg.augmentation))
    devices = set()
    module.augmenter.register_forward_pre_hook(lambda m, args: devices.add(args[0].device.type))
    starts: list[float] = []

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if accelerator != "cpu":
                torch.cuda.synchronize()
            starts.append(time.perf_counter())

        def on_train_end(self, trainer, module):
            if accelerator != "cpu":
                torch.cuda.synchronize()
            starts.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=precision, max_epochs=epochs,
                             logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp, callbacks=[Clock()])
        trainer.fit(module, TensorBatches(images, labels, cfg.model.batch_size, shuffle=True, seed=0))
    seconds = starts[-1] - starts[1]
    return n_images * (epochs - 1) / seconds, ",".join(sorted(devices))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accelerator", default="gpu", choices=["gpu", "cpu"],
                        help="gpu (default): check the CUDA GPU; cpu: the same steps on the CPU (a smoke run)")
    parser.add_argument("--quick", action="store_true", help="small data and sizes (seconds, not minutes)")
    args = parser.parse_args(argv)

    from glyphlab.steps import limit_threads

    limit_threads()  # glyphlab's thread settings, as in a run (before torch loads)
    usable, line = cuda_status()
    print(f"gpu-check: {line}")
    if args.accelerator == "gpu" and not usable:
        print("gpu-check: nothing to check on a GPU; `make gpu-check` on a machine with a CUDA GPU and a "
              "CUDA build of torch (pip install torch from the CUDA index) runs it there.")
        return 0
    accelerator = "auto" if args.accelerator == "gpu" else "cpu"
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    mixed = mixed_precision(args.accelerator)
    print(f"gpu-check: 1/2 the default run, trainer.accelerator={accelerator} trainer.precision={mixed} ...",
          flush=True)
    print(end_to_end(accelerator, mixed, args.quick))

    print("gpu-check: 2/2 training img/s, cnn with online augmentation (affine):", flush=True)
    n_device = 1024 if args.quick else 32768
    n_cpu = 512 if args.quick else 4096
    rows = [(device, mixed, *throughput(args.accelerator, mixed, n_device))]
    if args.accelerator == "gpu":
        rows.append((device, "32-true", *throughput("gpu", "32-true", n_device)))
    rows.append(("cpu", "32-true", *throughput("cpu", "32-true", n_cpu)))
    cpu_rate = rows[-1][2]
    print(f"  {'device':8}{'precision':12}{'img/s':>10}{'× CPU':>8}  augmentation ran on")
    for dev, precision, rate, ran_on in rows:
        print(f"  {dev:8}{precision:12}{rate:>10,.0f}{rate / cpu_rate:>8.1f}  {ran_on}")
    if args.accelerator == "gpu" and rows[0][3] != "cuda":
        print(f"gpu-check: error: the augmentation ran on {rows[0][3]}, expected cuda", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
