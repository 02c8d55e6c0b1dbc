"""Training mechanics of the torch family: one Lightning ``Trainer.fit`` with glyphlab's precision,
patiences, callbacks, best-epoch weights and resume, for :class:`~glyphlab.models.torch_adapter.TorchFamily`.

:func:`train` is the whole of it; the other functions are its parts (tested one by one).
torch is imported inside the functions: the run sets torch's thread policy before the first import.
"""
from __future__ import annotations

import math
from pathlib import Path

from glyphlab.errors import ConfigError, refused


def train(cfg, module, train_batches, val_batches, n_val: int, n_positions: int, workdir) -> tuple[dict, str]:
    """Fit ``module`` (a :class:`~glyphlab.models.lit.GlyphClassifier`) with ``cfg.trainer`` and the
    ``callbacks`` group, resuming from ``ckpt_path`` when given, and load its best validation epoch.

    ``n_val``: images in the validation split (scales the patiences, :func:`val_scaled_patience`).
    Checkpoints go to the run's Hydra output dir (``workdir`` outside Hydra): best.ckpt and last.ckpt
    after every epoch, interrupted.ckpt when Ctrl-C / SIGTERM stops training; ``ckpt_path=`` resumes
    from any. Returns the metrics and the words that say how training ended (:func:`keep_best`).
    """
    import mlflow
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from glyphlab.models.lit import ExtraMetricsToMlflow, check_monitors

    root = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else str(workdir)
    checkpoints = Path(root) / "checkpoints"
    check_monitors(cfg, n_positions)
    callbacks = build_callbacks(cfg.get("callbacks"), checkpoints, n_val, cfg.model.get("patience_val_images"))
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    try:
        trainer = instantiate(cfg.trainer, logger=ExtraMetricsToMlflow(), default_root_dir=root, callbacks=callbacks,
                              precision=precision)
    except Exception as e:  # noqa: BLE001
        raise refused("trainer", cfg.trainer, e) from None
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None:
        check_resume(ckpt_path, cfg.trainer.get("max_epochs"))
    if trainer.is_global_zero:  # DDP: a process of rank ≥ 1 has no MLflow run (glyphlab.distributed)
        mlflow.set_tags({"checkpoints": str(checkpoints), "precision": precision})
        mlflow.log_params(effective_patiences(module, callbacks))   # what the run used, after the scaling
    try:
        trainer.fit(module, train_batches, val_batches, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as e:
        # Lightning answers Ctrl-C / SIGTERM (after its on_exception callbacks: interrupted.ckpt) with
        # sys.exit(1); the interrupt goes on instead, so every family's ends the same way (experiment.main).
        if isinstance(e.__context__, KeyboardInterrupt):
            raise e.__context__ from None
        raise
    return keep_best(trainer, module, train_batches)


def plateau_config(cfg, n_val: int) -> dict:
    """``model.plateau`` with its patience scaled for a validation split of ``n_val`` images
    (``model.patience_val_images``, :func:`val_scaled_patience`), as early stopping's is."""
    plateau = dict(cfg.model.get("plateau") or {})
    if "patience" in plateau:
        plateau["patience"] = val_scaled_patience(plateau["patience"], n_val, cfg.model.get("patience_val_images"))
    return plateau


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16): there oneDNN's bf16
    kernels beat float32 (BENCHMARKS.md, precision); elsewhere bf16 is emulated and no faster. torch's
    own probe of the CPU (``torch.cpu.get_capabilities``), else the kernel's flags in /proc/cpuinfo."""
    import torch

    probe = getattr(torch.cpu, "get_capabilities", None)
    if probe is not None:
        capabilities = probe()
        return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision, accelerator="auto") -> str:
    """``trainer.precision``, with ``auto`` made concrete: ``bf16-mixed`` on the device Lightning will
    train on when it computes bf16 natively (a CUDA GPU with ``torch.cuda.is_bf16_supported()``, a CPU
    with AVX512-BF16/AMX), ``32-true`` elsewhere (MPS, older CPUs). Any other value is kept as given."""
    if str(precision) != "auto":
        return precision
    import torch

    accelerator = str(accelerator or "auto")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    if accelerator == "mps" or (accelerator == "auto" and torch.backends.mps.is_available()):
        return "32-true"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def val_scaled_patience(patience: int, n_val: int, val_images: int | None) -> int:
    """``patience`` (epochs) counted as if the validation split had at least ``val_images`` images:
    with ``n_val`` < ``val_images`` it is multiplied by sqrt(val_images / n_val), rounded.

    Why: val/accuracy on n images moves in steps of 1/n and its noise grows as 1/sqrt(n), so on a
    small split a lucky epoch sets a best that the next ones take longer to beat while the net still
    improves; "N epochs without a better val/accuracy" then cuts the rate (and stops) too early
    (experiments/datasets). null or 0: the patience as configured."""
    if not val_images or n_val <= 0 or n_val >= val_images:
        return patience
    return round(patience * math.sqrt(val_images / n_val))


def effective_patiences(module, callbacks) -> dict:
    """The patiences the run trains with, as MLflow params: ``train/plateau_patience`` (scheduler=plateau)
    and ``train/early_stopping_patience`` (an EarlyStopping among the callbacks)."""
    from pytorch_lightning.callbacks import EarlyStopping

    params = {}
    if module.scheduler == "plateau" and "patience" in module.plateau:
        params["train/plateau_patience"] = module.plateau["patience"]
    for callback in callbacks:
        if isinstance(callback, EarlyStopping):
            params["train/early_stopping_patience"] = callback.patience
    return params


def build_callbacks(cfg_callbacks, checkpoints: Path, n_val: int = 0, val_images: int | None = None) -> list:
    """The ``callbacks`` group's Lightning callbacks (``_target_`` each; a ModelCheckpoint without
    ``dirpath`` writes into ``checkpoints``; an EarlyStopping's patience scaled for a validation split of
    ``n_val`` < ``val_images`` images, :func:`val_scaled_patience`), plus the one that saves ``interrupted.ckpt``."""
    from hydra.utils import instantiate
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from glyphlab.models.lit import CheckpointOnInterrupt

    callbacks = []
    for name, node in (cfg_callbacks or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ConfigError(f"callbacks.{name} must name a Lightning callback with _target_, got {dict(node)}")
        try:
            callback = instantiate(node, _convert_="all")
        except Exception as e:  # noqa: BLE001 - a value Lightning refuses (mode=maximum): one line naming the key
            raise refused(f"callbacks.{name}", node, e) from None
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(checkpoints)
        if isinstance(callback, EarlyStopping):
            callback.patience = val_scaled_patience(callback.patience, n_val, val_images)
        callbacks.append(callback)
    return [*callbacks, CheckpointOnInterrupt(checkpoints / "interrupted.ckpt")]


def keep_best(trainer, module, train_batches=None) -> tuple[dict, str]:
    """Load the weights the run keeps into ``module``: the mean of its epochs' weights when a
    :class:`~glyphlab.models.lit.WeightAverage` averaged some (BatchNorm recomputed on ``train_batches``),
    else the best validation epoch's (when a ModelCheckpoint monitored something), else the last epoch's.
    Returns the metrics and the words that say how training ended."""
    import torch
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from glyphlab.models.lit import WeightAverage

    stopped = trainer.current_epoch - 1                 # the last epoch trained, counted from 0 as the metric steps
    early = any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks)
    how = "early stop" if early else "budget"
    average = next((c for c in trainer.callbacks if isinstance(c, WeightAverage) and c.n), None)
    if average is not None:
        average.load_mean(module, train_batches)
        metrics = {"train/stopped_epoch": stopped, "train/averaged_epochs": average.n}
        return metrics, (f"stopped after epoch {stopped} ({how}), mean weights of epochs "
                         f"{average.start}-{average.start + average.n - 1} kept")
    best = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor and c.best_model_path]
    if not best:
        return {"train/stopped_epoch": stopped}, f"stopped after epoch {stopped} ({how}), last epoch kept"
    checkpoint = torch.load(best[0].best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(checkpoint["state_dict"])
    metrics = {"train/stopped_epoch": stopped, "train/best_epoch": checkpoint["epoch"]}
    return metrics, f"stopped after epoch {stopped} ({how}), best epoch {checkpoint['epoch']}"


def check_resume(ckpt_path, max_epochs) -> None:
    """``ckpt_path`` must be a Lightning checkpoint with epochs left to train: one line instead of
    Lightning's error deep in ``fit``. The weights are memory-mapped, not read (Lightning reads them)."""
    import torch

    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path must be a Lightning checkpoint file, got {ckpt_path} (not a file)")
    try:
        epoch = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)["epoch"]
    except Exception as e:  # not a checkpoint, truncated, or from something else
        raise ConfigError(f"ckpt_path must be a Lightning checkpoint file, got {ckpt_path} "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'})") from e
    if max_epochs is not None and max_epochs != -1 and max_epochs <= epoch:
        raise ConfigError(f"ckpt_path {ckpt_path} was saved in epoch {epoch + 1}; trainer.max_epochs must be "
                          f"larger than {epoch} to train on from it, got {max_epochs}")
