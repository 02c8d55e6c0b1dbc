"""The scikit-learn family: an estimator from ``model.estimator`` fitted epoch by epoch on flattened
pixels (:mod:`glyphlab.models.sklearn`), logged with skops. Never imports torch."""
from __future__ import annotations

from pathlib import Path

from glyphlab.errors import ConfigError, check_at_least, refused
from glyphlab.models import Family, Fitted

# Types outside scikit-learn's and numpy's basics that an estimator logged by glyphlab holds;
# skops refuses to load any other (a model file from elsewhere cannot smuggle in code).
SKOPS_TRUSTED = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
                 "sklearn.neural_network._stochastic_optimizers.SGDOptimizer"]


class SklearnFamily(Family):
    name = "sklearn"
    requirements = ("mlflow", "numpy", "pandas", "pillow", "scikit-learn", "skops")
    online_augmentation = False   # no batches to augment: online options become offline copies
    uses_torch = False
    # threads=null: one BLAS thread. The MLP's matrices are too small to gain from a second one, and a
    # BLAS thread per core spin-waits for cores other processes hold (BENCHMARKS.md, sklearn_threads).
    default_threads = 1

    def check_config(self, cfg) -> None:
        check_at_least(cfg.model.max_epochs, 1, "model.max_epochs")

    def fit(self, cfg, glyphs, x_train, y_train, val, weights, workdir) -> Fitted:
        import warnings

        import mlflow
        import numpy as np
        from hydra.utils import instantiate
        from sklearn.base import clone

        from glyphlab.models import sklearn as skl

        if glyphs.labels.ndim != 1:
            raise ConfigError(f"model={cfg.model.name} takes one label per image (MLPClassifier has a single "
                              f"softmax output); this data set has {glyphs.labels.shape[1]} per image: use "
                              "model=mlp, the same dense net with one head per position, or model=cnn")
        try:  # sklearn checks its parameters only in fit: a copy takes one step on two stand-in samples
            estimator = instantiate(cfg.model.estimator, _convert_="all")
            with warnings.catch_warnings():  # batch_size above 2 samples and the like: not the point here
                warnings.simplefilter("ignore")
                clone(estimator).partial_fit(np.zeros((2, 4)), np.array([0, 1]), classes=np.array([0, 1]))
        except Exception as e:  # noqa: BLE001
            raise refused("model.estimator", cfg.model.estimator, e) from None
        if cfg.model.get("init_from"):
            estimator = self.logged_estimator(cfg.model.init_from, glyphs, workdir)
        history = []
        estimator = skl.fit(estimator, x_train, y_train, glyphs.images[val], glyphs.labels[val],
                            n_classes=glyphs.n_classes, max_epochs=cfg.model.max_epochs, patience=cfg.model.patience,
                            sample_weight=None if weights is None else weights[y_train],
                            on_epoch=lambda epoch, m: history.append(m["val/accuracy"]) or mlflow.log_metrics(m, step=epoch))
        n_params = sum(w.size for w in estimator.coefs_) + sum(b.size for b in estimator.intercepts_)
        best = max(range(len(history)), key=history.__getitem__)   # the first epoch with the best val/accuracy
        stopped = len(history) - 1
        how = "early stop" if stopped + 1 < cfg.model.max_epochs else "budget"
        return Fitted(estimator, n_params, lambda images: skl.predict_proba(estimator, images),
                      metrics={"train/stopped_epoch": stopped, "train/best_epoch": best},
                      summary=f"stopped after epoch {stopped} ({how}), best epoch {best}")

    def logged_estimator(self, uri, glyphs, workdir):
        """``model.init_from``: the logged estimator, to train on from its weights (a warm start:
        ``partial_fit`` goes on from them, with the logged estimator's own settings, not model.estimator's)."""
        import skops.io

        from glyphlab.models import pretrained

        meta, files = pretrained.fetch(uri, workdir)
        pretrained.check_fits(meta, glyphs, uri, self.name)
        return skops.io.load(files["estimator"], trusted=SKOPS_TRUSTED)

    def save(self, model, cfg, glyphs, folder) -> tuple[dict, dict]:
        import skops.io

        skops.io.dump(model, Path(folder) / "estimator.skops")
        return {"estimator": str(Path(folder) / "estimator.skops")}, {}

    def load(self, artifacts: dict, meta: dict):
        import skops.io

        from glyphlab.models.sklearn import predict_proba

        estimator = skops.io.load(artifacts["estimator"], trusted=SKOPS_TRUSTED)
        return lambda images: predict_proba(estimator, images)
