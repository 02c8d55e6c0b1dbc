"""One experiment, top to bottom: data → augmentation → model → evaluation → MLflow.

``run.py`` hands the composed Hydra config to :func:`main`; :func:`run` is the whole story
of a run and returns the validation accuracy (the value a hyper-parameter search maximises).
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from glyphlab import data as datasets
from glyphlab import phases, usable_cores
from glyphlab.data import GlyphSet
from glyphlab.errors import ConfigError, DataError, GlyphlabError, check_image_size, check_split
from glyphlab.models.torch_adapter import check_resume  # noqa: F401 - its old home, still imported from here

log = logging.getLogger(__name__)
USER_ERRORS = (DataError, ConfigError)  # kept for importers; main() catches every GlyphlabError


def main(cfg: DictConfig) -> float:
    """Run, turning expected errors into one line on stderr and a non-zero exit.

    Inside a multirun a failed job returns NaN instead, so the other jobs go on; its MLflow
    run is FAILED and the sweep's parent run counts it.
    """
    try:
        return run(cfg)
    except GlyphlabError as e:
        if cfg.get("debug") or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error(f"glyphlab: error: {e}")
        if _in_multirun():
            return float("nan")
        sys.exit(2)
    except Exception:
        if _in_multirun():
            import traceback

            traceback.print_exc()
            return float("nan")
        raise


def run(cfg: DictConfig) -> float:
    from glyphlab import distributed, evaluate, models, tracking

    if not distributed.is_rank_zero():  # a DDP process Lightning started for rank ≥ 1: it trains, rank 0 logs
        return distributed.train_only(cfg)
    phases.mark("run_start")
    family = models.family(cfg.model.adapter)
    check_config(cfg, family)
    threads = limit_threads(cfg.get("threads"), with_torch=family.uses_torch)
    seed_everything(cfg.seed)
    with tracking.start_run(cfg) as active, tempfile.TemporaryDirectory() as tmp:
        import mlflow

        tmp = Path(tmp)
        mlflow.set_tag("threads", threads)
        # 1. Data: the glyph set and its seeded stratified split, the same for every model.
        glyphs = datasets.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=cfg.cache_dir)
        train, val, test = datasets.split(glyphs, cfg.split.val, cfg.split.test, cfg.seed)
        # eval_data is loaded and its classes matched to the model's now, not after a whole training.
        elsewhere = load_eval_data(cfg, glyphs) if cfg.get("eval_data") else None
        phases.mark("data_ready")

        # 2. Augmentation: offline copies of the train split (online happens per batch in training).
        x_train, y_train = augmented_train(cfg, family, glyphs, train, tmp)
        mlflow.log_metrics({"data/n_train": len(x_train), "data/n_train_original": len(train),
                            "data/n_val": len(val), "data/n_test": len(test), "data/n_classes": glyphs.n_classes})
        if prototypes := glyphs.meta.get("prototypes"):  # synthetic sets: ways of writing each class
            mlflow.log_dict(prototypes, "prototypes.json")
            mlflow.log_metric("data/min_prototypes", min(prototypes.values()))
        weights = class_weights(cfg, y_train, glyphs.n_classes)

        # 3. Model: fit on the (augmented) train split, watching the val split every epoch.
        phases.mark("fit_start")
        started = time.perf_counter()
        fitted = family.fit(cfg, glyphs, x_train, y_train, val, weights, tmp)
        fit_s = time.perf_counter() - started

        # 4. Evaluation on the untouched test split (and on eval_data, when given).
        metrics = evaluate_test(cfg, glyphs, fitted.predict_proba, test, tmp)
        # Whole-sample accuracy: for position-wise labels a sequence counts only when every position is right.
        val_right = fitted.predict_proba(glyphs.images[val]).argmax(-1) == glyphs.labels[val]
        val_accuracy = float(np.mean(val_right.reshape(len(val), -1).all(axis=1)))
        metrics.update({"time/fit_s": fit_s, "model/n_params": fitted.n_params, "val/final_accuracy": val_accuracy,
                        **fitted.metrics})
        mlflow.log_metrics(metrics)
        if cfg.get("eval_data"):
            metrics.update(evaluate_elsewhere(cfg, glyphs, fitted.predict_proba, tmp, train, elsewhere))

        # 5. The model itself, as a pyfunc that takes raw images (its preprocessing goes with it).
        if cfg.tracking.log_model:
            from glyphlab import serving

            serving.log_model(cfg, family, fitted.model, glyphs)
        run_id = active.info.run_id

    print_summary(cfg, metrics, run_id, fitted.summary)
    return val_accuracy


def check_config(cfg: DictConfig, family=None) -> None:
    """Catch nonsense values before any work, each with one line naming the key."""
    from glyphlab import models

    if cfg.data.get("image_size") is not None:
        check_image_size(cfg.data.image_size)
    check_split(cfg.split.val, cfg.split.test)
    (family or models.family(cfg.model.adapter)).check_config(cfg)


def augmented_train(cfg, family, glyphs: GlyphSet, train, tmp: Path):
    """The train split with offline augmented copies appended (uint8 ``[N', H, W]``, its labels);
    logs ``train_samples.png`` and, with an augmentation, ``augmentation_samples.png``."""
    import mlflow

    from glyphlab import evaluate

    augmentation = cfg.augmentation
    if not family.online_augmentation and augmentation.mode == "online":
        # this family sees no batches: give it the same transform as materialised copies instead
        augmentation = OmegaConf.merge(augmentation, {"mode": "offline"})
        log.warning(f"glyphlab: {cfg.model.name} cannot augment online; using {augmentation.copies} offline copies")
    mlflow.set_tag("augmentation_mode", augmentation.mode)
    if augmentation.mode == "offline" and not augmentation.get("copies"):
        x_train, y_train = glyphs.images[train], glyphs.labels[train]  # nothing to add: no torch/kornia import
    else:
        from glyphlab import augment  # torch + kornia: ~3 CPU-s of an sklearn run's start (BENCHMARKS.md)

        x_train, y_train = augment.inflate(glyphs.images[train], glyphs.labels[train], augmentation, cfg.seed)
    shown = np.random.default_rng(cfg.seed).permutation(len(x_train))[:64]
    evaluate.save_image_grid(x_train[shown], y_train[shown], glyphs.classes, tmp / "train_samples.png",
                             title="training samples")
    mlflow.log_artifact(tmp / "train_samples.png")
    if cfg.augmentation.name != "none":  # what the model saw: originals beside augmented versions
        from glyphlab import augment

        augment.preview(glyphs.images[train], augmentation, tmp / "augmentation_samples.png", seed=cfg.seed)
        mlflow.log_artifact(tmp / "augmentation_samples.png")
    return x_train, y_train


def class_weights(cfg, y_train: np.ndarray, n_classes: int):
    """float32 ``[n_classes]`` loss weights for ``data.class_weights: balanced``, else None."""
    if cfg.data.get("class_weights") == "balanced":
        return datasets.class_weights(y_train.ravel(), n_classes)  # sequences: positions pooled
    if cfg.data.get("class_weights") not in (None, "none"):
        raise ConfigError(f"data.class_weights must be null or 'balanced', got {cfg.data.class_weights!r}")
    return None


def evaluate_test(cfg, glyphs: GlyphSet, proba, test, tmp: Path) -> dict:
    """Metrics, confusion matrix and a sheet of predictions on the test split (artifacts logged)."""
    import mlflow

    from glyphlab import evaluate

    y_test = glyphs.labels[test]
    pred = proba(glyphs.images[test]).argmax(-1)
    metrics = evaluate.classification_metrics(y_test, pred, glyphs.classes, "test")
    cm = evaluate.confusion(y_test, pred, glyphs.n_classes)
    evaluate.save_confusion(cm, glyphs.classes, tmp / "confusion_matrix.png", tmp / "confusion_matrix.csv",
                            title=f"{cfg.model.name} on {cfg.data.name}: test accuracy {metrics['test/accuracy']:.3f}")
    mlflow.log_artifact(tmp / "confusion_matrix.png")
    mlflow.log_artifact(tmp / "confusion_matrix.csv")
    shown = np.random.default_rng(cfg.seed).permutation(len(test))[:64]
    evaluate.save_image_grid(glyphs.images[test][shown], y_test[shown], glyphs.classes,
                             tmp / "test_predictions.png", predicted=pred[shown],
                             title="test samples: prediction (true label when wrong, in red)")
    mlflow.log_artifact(tmp / "test_predictions.png")
    return metrics


def limit_threads(threads: int | None = None, with_torch: bool = True) -> int:
    """Cap the threads of torch and of the BLAS under numpy/sklearn; returns the number in force.

    ``threads`` (the ``threads`` config key) wins when given. Otherwise, under
    ``hydra/launcher=joblib``, each of the ``n_jobs`` parallel jobs gets ``cores // n_jobs``
    (at least 1) so they share the cores instead of oversubscribing them; under
    ``hydra/launcher=ray``, the ``num_cpus`` its task reserved; else all cores.
    ``with_torch=False`` (sklearn runs) leaves torch unimported: its import is ~2.5 CPU-s of start-up.
    """
    from threadpoolctl import threadpool_limits

    # OpenMP threads sleep at a barrier instead of spinning: while another process holds a core, a
    # spinning thread keeps its partner off the CPU (BENCHMARKS.md, fastpaths: OMP_WAIT_POLICY).
    # libgomp reads this when torch loads, hence before the first `import torch`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch = None
    if with_torch or "torch" in sys.modules:
        import torch

    if threads is None:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher if HydraConfig.initialized() else {}
        if "joblib" in str(launcher.get("_target_", "")):
            cores = usable_cores()
            n_jobs = int(launcher.get("n_jobs") or -1)
            n_jobs = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
            threads = max(1, cores // n_jobs)
        elif str(launcher.get("_target_", "")).endswith("RayLauncher"):  # the cores the job's Ray task reserved
            threads = max(1, int(launcher.ray.remote.get("num_cpus") or 1))
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be at least 1 (or null), got {threads}")
        if torch is not None:
            torch.set_num_threads(threads)
        threadpool_limits(threads)
    if torch is None:  # the BLAS: `threads`, or one per core
        return threads or usable_cores()
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    import random

    try:  # numpy takes 0 .. 2**32 - 1; the split, the estimators and the augmentation all use it
        np.random.seed(seed)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r} (numpy: {e})") from None
    random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def load_eval_data(cfg, glyphs: GlyphSet) -> tuple[GlyphSet, np.ndarray, np.ndarray]:
    """``eval_data`` with its classes matched by name (the character) to the model's, ``glyphs``.

    Returns ``(other, keep, y_true)``: the set, which of its samples are kept (bool ``[N]``: all,
    or those of known classes with ``eval_data.ignore_unknown``) and their labels as model class
    indices (int64 ``[n_kept]``). Raises before any training when the sizes or classes do not fit.
    """
    other = datasets.load(OmegaConf.to_container(cfg.eval_data, resolve=True), cache_dir=cfg.cache_dir)
    if other.image_size != glyphs.image_size:
        raise ConfigError(f"eval_data.image_size ({other.image_size}) must equal data.image_size "
                          f"({glyphs.image_size}), the size the model was trained on")
    index = {name: i for i, name in enumerate(glyphs.classes)}
    unknown = [name for name in other.classes if name not in index]
    keep = np.ones(len(other), dtype=bool)
    if unknown:
        if not cfg.eval_data.get("ignore_unknown"):
            raise DataError(f"eval_data has {len(unknown)} class(es) the model does not know: "
                            f"{' '.join(unknown[:30])}{' …' if len(unknown) > 30 else ''} "
                            f"(model classes: {' '.join(glyphs.classes[:30])}); set eval_data.ignore_unknown=true to drop them")
        keep = np.isin(other.labels, [i for i, n in enumerate(other.classes) if n in index])
        log.warning(f"glyphlab: eval_data: dropped {int((~keep).sum())} samples of {len(unknown)} unknown classes")
    mapping = np.array([index.get(n, -1) for n in other.classes])
    return other, keep, mapping[other.labels[keep]]


def evaluate_elsewhere(cfg, glyphs: GlyphSet, proba, tmp: Path, train: np.ndarray, elsewhere) -> dict:
    """Test the trained model on ``eval_data`` (``elsewhere``, from :func:`load_eval_data`);
    ``train``: the training split's indices into ``glyphs``, shown beside the worst-read eval classes."""
    import mlflow

    from glyphlab import evaluate

    other, keep, y_true = elsewhere
    pred = proba(other.images[keep]).argmax(-1)
    metrics = evaluate.classification_metrics(y_true, pred, glyphs.classes, "eval")
    metrics["eval/n_samples"] = int(keep.sum())
    mlflow.log_metrics(metrics)
    cm = evaluate.confusion(y_true, pred, glyphs.n_classes)
    evaluate.save_confusion(cm, glyphs.classes, tmp / "eval_confusion_matrix.png", tmp / "eval_confusion_matrix.csv",
                            title=f"{cfg.model.name} trained on {cfg.data.name}, tested on {cfg.eval_data.name}: "
                                  f"{metrics['eval/accuracy']:.3f}")
    mlflow.log_artifact(tmp / "eval_confusion_matrix.png")
    mlflow.log_artifact(tmp / "eval_confusion_matrix.csv")
    evaluate.save_eval_samples(glyphs.images[train], glyphs.labels[train], other.images[keep], y_true, pred,
                               glyphs.classes, tmp / "eval_samples.png", seed=cfg.seed,
                               title="worst-read classes: training images | real images (red: read as, true in brackets)")
    mlflow.log_artifact(tmp / "eval_samples.png")
    return metrics


def print_summary(cfg, metrics: dict, run_id: str, training: str = "") -> None:
    """The run's few lines on stdout; ``training``: how training ended (the family's words)."""
    from glyphlab.tracking import store_note, tracking_uri

    uri = tracking_uri(cfg.tracking)
    lines = [f"model {cfg.model.name}  data {cfg.data.name}  augmentation {cfg.augmentation.name}  seed {cfg.seed}",
             f"test/accuracy {metrics['test/accuracy']:.4f}  test/macro_f1 {metrics['test/macro_f1']:.4f}  "
             f"fit {metrics['time/fit_s']:.1f}s" + (f"  {training}" if training else "")]
    if "test/digit_accuracy" in metrics:  # position-wise labels: test/accuracy is whole sequences
        lines.append(f"test/digit_accuracy {metrics['test/digit_accuracy']:.4f}  "
                     f"test/length_accuracy {metrics.get('test/length_accuracy', float('nan')):.4f}")
    if "eval/accuracy" in metrics:
        lines.append(f"eval/accuracy {metrics['eval/accuracy']:.4f} on {cfg.eval_data.name}")
    lines.append(f"MLflow run {run_id}")
    if cfg.tracking.log_model:
        elsewhere = f" --tracking-uri {uri}" if cfg.tracking.get("uri") else ""
        lines.append(f"draw on it: python -m glyphlab.draw --model runs:/{run_id}/model{elsewhere}")
    if uri.startswith(("http://", "https://")):
        lines.append(f"open it: {uri}")
    else:
        lines.append(f"open it: mlflow ui --backend-store-uri {uri}{store_note(cfg.tracking)}")
    log.info("\n".join(lines))  # console and the job's run.log (conf/hydra/job_logging/glyphlab.yaml)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
