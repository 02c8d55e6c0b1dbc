"""The steps that :func:`glyphlab.experiment.run` tells, one function each: threads and seeds for the
process, the (augmented) training data and its class weights, eval_data matched to the model's
classes, and the evaluations on the test split and on eval_data with their logged artifacts.
Rank ≥ 1 of a DDP run (:mod:`glyphlab.distributed`) builds its training inputs with the same ones.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from glyphlab import data as datasets
from glyphlab import usable_cores
from glyphlab.data import GlyphSet
from glyphlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)


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


MEMBER_SEED_STEP = 1000  # member k's set: the data option built with data.seed + k × this


def member_views(cfg, family, glyphs: GlyphSet, train, x_train: np.ndarray) -> np.ndarray:
    """``model.member_data=own`` (torch families: the others have no members): the train split once per
    ensemble member, uint8 ``[N, K, H, W]``; member 0's view is ``x_train``, member k's the same data option
    built again with ``data.seed + k × MEMBER_SEED_STEP`` (``data.extra_root``'s drawings added and offline
    copies made as for the first), so each net learns from images the others never see, with the same labels
    in the same order. Otherwise ``x_train`` unchanged (``[N, H, W]``): also for a data option that reads
    images (no ``data.seed``), which gives every member the same images (``data/member_sets`` 1)."""
    members = cfg.model.get("members", 1)
    if (not family.uses_torch or cfg.model.get("member_data", "shared") != "own" or members == 1
            or "seed" not in cfg.data):
        return x_train
    from glyphlab import augment
    from glyphlab.data import extra

    data = OmegaConf.to_container(cfg.data, resolve=True)
    views = [x_train]
    for k in range(1, members):
        member = {**data, "seed": int(data["seed"]) + k * MEMBER_SEED_STEP}
        other = datasets.load(member, cache_dir=cfg.cache_dir)
        other = extra.add_drawings(other, member, cfg.split.val, cfg.split.test, cfg.seed)  # rewrites: the member's seed
        if other.classes != glyphs.classes or not np.array_equal(other.labels, glyphs.labels):
            raise DataError(f"model.member_data=own: data={cfg.data.name} built with another seed has other classes "
                            f"or another order of labels; expected the same layout for every seed")
        views.append(augment.inflate(other.images[train], other.labels[train], cfg.augmentation, cfg.seed)[0])
    return np.stack(views, axis=1)


def training_class_weights(cfg, y_train: np.ndarray, n_classes: int):
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
    if absent := evaluate.note_absent_classes(y_test, glyphs.classes, "test", "the test split"):
        log.warning(f"glyphlab: {absent}")
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


_family_cap = None  # (threadpoolctl limiter, torch threads before) of a family's default cap in force


def limit_threads(threads: int | None = None, with_torch: bool = True, family_threads: int | None = None) -> int:
    """Cap the threads of torch and of the BLAS under numpy/sklearn; returns the number in force.

    ``threads`` (the ``threads`` config key) wins when given. Otherwise, under
    ``hydra/launcher=joblib``, each of the ``n_jobs`` parallel jobs gets ``cores // n_jobs``
    (at least 1) so they share the cores instead of oversubscribing them; under
    ``hydra/launcher=ray``, the ``num_cpus`` its task reserved; else all cores. ``family_threads``
    (the model family's ``default_threads``, 1 for sklearn) caps that default: a family whose
    compute gains nothing from more threads does not take them.
    ``with_torch=False`` (sklearn runs) leaves torch unimported: its import is ~2.5 CPU-s of start-up.
    """
    global _family_cap
    from threadpoolctl import threadpool_limits

    # OpenMP threads sleep at a barrier instead of spinning: while another process holds a core, a
    # spinning thread keeps its partner off the CPU (BENCHMARKS.md, fastpaths: OMP_WAIT_POLICY).
    # libgomp reads this when torch loads, hence before the first `import torch`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch = None
    if with_torch or "torch" in sys.modules:
        import torch

    if _family_cap is not None:  # an earlier job of this process (a sequential sweep) capped for its family
        limiter, torch_threads = _family_cap
        limiter.restore_original_limits()
        if torch_threads is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(torch_threads)
        _family_cap = None
    by_family = False
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
        if family_threads is not None:
            threads = family_threads if threads is None else min(threads, family_threads)
            by_family = True
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be at least 1 (or null), got {threads}")
        torch_threads = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(threads)
        # threadpoolctl caps only the pools loaded so far: scikit-learn brings scipy's own OpenBLAS and
        # its OpenMP, which would otherwise start a thread per core (every run imports it: the split).
        import sklearn  # noqa: F401
        limiter = threadpool_limits(threads)
        if by_family:  # not asked for by the user: the next job in this process starts from the limits before it
            _family_cap = (limiter, torch_threads)
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
    try:
        other = datasets.load(OmegaConf.to_container(cfg.eval_data, resolve=True), cache_dir=cfg.cache_dir)
    except DataError as e:  # the builders' messages say data.root, samples_per_class ...: say which set they are about
        raise DataError(f"eval_data={cfg.eval_data.name}: {e}") from None
    if other.image_size != glyphs.image_size:
        raise ConfigError(f"eval_data.image_size ({other.image_size}) must equal data.image_size "
                          f"({glyphs.image_size}), the size the model was trained on")
    if other.labels.shape[1:] != glyphs.labels.shape[1:]:  # one label per image, or one per position
        raise ConfigError(f"eval_data={cfg.eval_data.name} has {_label_shape(other)} but the model reads "
                          f"{_label_shape(glyphs)} (data={cfg.data.name}); expected eval data of the same kind")
    index = {name: i for i, name in enumerate(glyphs.classes)}
    unknown = [name for name in other.classes if name not in index]
    keep = np.ones(len(other), dtype=bool)
    if unknown:
        if not cfg.eval_data.get("ignore_unknown"):
            raise DataError(f"eval_data has {len(unknown)} class(es) the model does not know: "
                            f"{' '.join(unknown[:30])}{' …' if len(unknown) > 30 else ''} "
                            f"(model classes: {' '.join(glyphs.classes[:30])}); set eval_data.ignore_unknown=true to drop them")
        known = np.isin(other.labels, [i for i, n in enumerate(other.classes) if n in index])
        keep = known.reshape(len(other), -1).all(axis=1)  # a sequence is kept only when every position is known
        if not keep.any():
            raise DataError(f"eval_data has no sample of a class the model knows: its classes "
                            f"{' '.join(other.classes[:30])}{' …' if len(other.classes) > 30 else ''}, the model's "
                            f"{' '.join(glyphs.classes[:30])}{' …' if len(glyphs.classes) > 30 else ''}")
        log.warning(f"glyphlab: eval_data: dropped {int((~keep).sum())} samples of {len(unknown)} unknown classes")
    mapping = np.array([index.get(n, -1) for n in other.classes])
    return other, keep, mapping[other.labels[keep]]


def _label_shape(glyphs: GlyphSet) -> str:
    return ("one label per image" if glyphs.labels.ndim == 1
            else f"{glyphs.labels.shape[1]} label positions per image")


def evaluate_eval_data(cfg, glyphs: GlyphSet, proba, tmp: Path, train: np.ndarray, eval_set) -> dict:
    """Test the trained model on ``eval_data`` (``eval_set``, from :func:`load_eval_data`);
    ``train``: the training split's indices into ``glyphs``, shown beside the worst-read eval classes."""
    import mlflow

    from glyphlab import evaluate

    other, keep, y_true = eval_set
    pred = proba(other.images[keep]).argmax(-1)
    metrics = evaluate.classification_metrics(y_true, pred, glyphs.classes, "eval")
    if absent := evaluate.note_absent_classes(y_true, glyphs.classes, "eval", f"eval_data ({cfg.eval_data.name})"):
        log.warning(f"glyphlab: {absent}")
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
