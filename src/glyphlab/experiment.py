"""One experiment, top to bottom: data → augmentation → model → evaluation → MLflow.

``run.py`` hands the composed Hydra config to :func:`main`; :func:`run` is the whole story
of a run and returns the validation accuracy (the value a hyper-parameter search maximises).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from glyphlab import data as datasets
from glyphlab import phases
from glyphlab.data import extra
from glyphlab.errors import GlyphlabError, Interrupted, check_image_size, check_split
from glyphlab.models.tta import check_tta, with_views
from glyphlab.steps import (augmented_train, evaluate_eval_data, evaluate_test, limit_threads, load_eval_data,
                            member_views, seed_everything, training_class_weights)

log = logging.getLogger(__name__)


def main(cfg: DictConfig) -> float:
    """Run, turning expected errors into one line on stderr and a non-zero exit.

    Inside a multirun a failed job returns NaN instead, so the other jobs go on; its MLflow
    run is FAILED and the sweep's parent run counts it. Ctrl-C or SIGTERM, in any model family and
    phase, is one line too (which MLflow run ended KILLED) and exit status 128 + the signal's number
    (130, 143), as a shell reports a process the signal stopped; in a multirun the interrupt goes on
    to stop the sweep.
    """
    try:
        return run(cfg)
    except KeyboardInterrupt as e:
        if cfg.get("debug") or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        interrupt = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)  # Python's own Ctrl-C
        log.error(f"glyphlab: {interrupt}")
        if _in_multirun():  # the job's record says so, and the sweep stops (cli.main exits, without a traceback)
            from glyphlab.tracking.sweep import job_interrupted

            job_interrupted(interrupt)
            interrupt.reported = True
            raise interrupt from None
        sys.exit(128 + interrupt.signum)
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


# One function on purpose (~65 lines): the five steps of a run read top to bottom here; each step's work
# lives in its own module.
def run(cfg: DictConfig) -> float:
    from glyphlab import distributed, models, tracking
    from glyphlab.tracking.inputs import log_dataset

    if not distributed.is_rank_zero():  # a DDP process Lightning started for rank ≥ 1: it trains, rank 0 logs
        return distributed.train_only(cfg)
    phases.mark("run_start")
    family = models.family(cfg.model.adapter)
    check_config(cfg, family)
    threads = limit_threads(cfg.get("threads"), with_torch=family.uses_torch, family_threads=family.default_threads)
    seed_everything(cfg.seed)
    with tracking.start_run(cfg) as active, tempfile.TemporaryDirectory() as tmp:
        import mlflow

        tmp = Path(tmp)
        mlflow.set_tag("threads", threads)
        # 1. Data: the glyph set and its seeded stratified split, the same for every model.
        glyphs = datasets.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=cfg.cache_dir)
        glyphs = extra.add_drawings(glyphs, cfg.data, cfg.split.val, cfg.split.test, cfg.seed)  # data.extra_root
        train, val, test = datasets.split(glyphs, cfg.split.val, cfg.split.test, cfg.seed)
        # eval_data is loaded and its classes matched to the model's now, not after a whole training.
        eval_set = load_eval_data(cfg, glyphs) if cfg.get("eval_data") else None
        log_dataset(cfg.data, glyphs, "training", cfg.cache_dir)  # the runs table's Dataset column
        if eval_set is not None:
            log_dataset(cfg.eval_data, eval_set[0], "evaluation", cfg.cache_dir)
        phases.mark("data_ready")

        # 2. Augmentation: offline copies of the train split (online happens per batch in training).
        x_train, y_train = augmented_train(cfg, family, glyphs, train, tmp)
        x_train = member_views(cfg, family, glyphs, train, x_train)  # model.member_data=own: a set per ensemble member
        mlflow.log_metrics({"data/n_train": len(x_train), "data/n_train_original": len(train),
                            "data/member_sets": x_train.shape[1] if x_train.ndim == 4 else 1,
                            "data/n_val": len(val), "data/n_test": len(test), "data/n_classes": glyphs.n_classes,
                            **extra.counts(glyphs)})   # data.extra_root: real images per split
        if prototypes := glyphs.meta.get("prototypes"):  # synthetic sets: ways of writing each class
            mlflow.log_dict(prototypes, "prototypes.json")
            mlflow.log_metric("data/min_prototypes", min(prototypes.values()))
        weights = training_class_weights(cfg, y_train, glyphs.n_classes)

        # 3. Model: fit on the (augmented) train split, watching the val split every epoch.
        phases.mark("fit_start")
        started = time.perf_counter()
        fitted = family.fit(cfg, glyphs, x_train, y_train, val, weights, tmp)
        fit_s = time.perf_counter() - started
        phases.mark("fit_end")

        # 4. Evaluation on the untouched test split (and on eval_data, when given), read as the logged model
        # reads (model.tta: also a few turned and scaled views of each image).
        predict_proba = with_views(fitted.predict_proba, cfg.model.get("tta"))
        metrics = evaluate_test(cfg, glyphs, predict_proba, test, tmp)
        # Whole-sample accuracy: for position-wise labels a sequence counts only when every position is right.
        val_right = predict_proba(glyphs.images[val]).argmax(-1) == glyphs.labels[val]
        val_accuracy = float(np.mean(val_right.reshape(len(val), -1).all(axis=1)))
        metrics.update({"time/fit_s": fit_s, "model/n_params": fitted.n_params, "val/final_accuracy": val_accuracy,
                        **fitted.metrics})
        mlflow.log_metrics(metrics)
        if cfg.get("eval_data"):
            metrics.update(evaluate_eval_data(cfg, glyphs, predict_proba, tmp, train, eval_set))

        # 5. The model itself, as a pyfunc that takes raw images (its preprocessing goes with it).
        model_uri = None
        if cfg.tracking.log_model:
            from glyphlab import serving

            model_uri = serving.log_model(cfg, family, fitted.model, glyphs)
        run_id, experiment_id = active.info.run_id, active.info.experiment_id

    print_summary(cfg, metrics, run_id, fitted.summary, model_uri, experiment_id)
    return val_accuracy


def check_config(cfg: DictConfig, family=None) -> None:
    """Catch nonsense values before any work, each with one line naming the key."""
    from glyphlab import models
    from glyphlab.keytypes import check_data_keys

    if cfg.data.get("image_size") is not None:
        check_image_size(cfg.data.image_size)
    check_split(cfg.split.val, cfg.split.test)
    check_data_keys(cfg.data, "data")
    check_data_keys(cfg.get("eval_data"), "eval_data")
    check_tta(cfg.model.get("tta"))
    (family or models.family(cfg.model.adapter)).check_config(cfg)


def print_summary(cfg, metrics: dict, run_id: str, training: str = "", model_uri: str | None = None,
                  experiment_id: str | None = None) -> None:
    """The run's few lines on stdout; ``training``: how training ended (the family's words);
    ``model_uri``: the logged model's MLflow 3 URI (``models:/m-…``)."""
    from glyphlab.tracking import store_note, tracking_uri
    from glyphlab.tracking.store import ui_link

    uri = tracking_uri(cfg.tracking)
    lines = [f"model {cfg.model.name}  data {cfg.data.name}  augmentation {cfg.augmentation.name}  seed {cfg.seed}",
             f"test/accuracy {metrics['test/accuracy']:.4f}  test/macro_f1 {metrics['test/macro_f1']:.4f}  "
             f"fit {metrics['time/fit_s']:.1f}s" + (f"  {training}" if training else "")]
    if "test/digit_accuracy" in metrics:  # position-wise labels: test/accuracy is whole sequences
        lines.append(f"test/digit_accuracy {metrics['test/digit_accuracy']:.4f}  "
                     f"test/length_accuracy {metrics.get('test/length_accuracy', float('nan')):.4f}")
    if "eval/accuracy" in metrics:
        lines.append(f"eval/accuracy {metrics['eval/accuracy']:.4f}  eval/macro_f1 {metrics['eval/macro_f1']:.4f} "
                     f"on {cfg.eval_data.name} ({metrics['eval/n_classes_present']} classes present)")
    lines.append(f"MLflow run {run_id}")
    if model_uri:
        store_option = f" --tracking-uri {uri}" if cfg.tracking.get("uri") else ""
        lines.append(f"model {model_uri}  (also runs:/{run_id}/model)")
        lines.append(f"draw on it: glyphlab draw --model {model_uri}{store_option}")
    link = ui_link(uri, experiment_id) if experiment_id is not None else None
    if uri.startswith(("http://", "https://")):
        lines.append(f"open it: {link or uri}")
    else:
        lines.append(f"open it: mlflow ui --backend-store-uri {uri}{store_note(cfg.tracking)}")
        if link:  # MLflow 3's UI opens on its GenAI view unless told (tracking.store.ui_link)
            lines.append(f"         {link}")
    log.info("\n".join(lines))  # console and the job's run.log (conf/hydra/job_logging/glyphlab.yaml)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
