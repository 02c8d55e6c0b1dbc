"""Models: one adapter per family, the nets (mlp, cnn), their LightningModule (lit), the sklearn loop.

A model option (``conf/model/<name>.yaml``) names its family's adapter with ``adapter:``, e.g.
``glyphlab.models.torch_adapter.TorchFamily``. An adapter is everything the rest of glyphlab
knows about a family (the :class:`Family` contract below), so ``experiment`` and ``serving``
never ask which family a model is; a new family is a new adapter here plus its YAML.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

import numpy as np

# `model.scheduler` values of the torch models (lit.GlyphClassifier); here, free of torch, so the
# config check before a run can use them too.
SCHEDULERS = (None, "cosine", "plateau")
# The logged model's facts (classes, image size, adapter, the net's arguments): serving writes it,
# model.init_from (pretrained) reads it.
META_FILE = "glyph_model.json"
# Models logged before adapters existed name only their family in glyph_model.json.
FAMILY_ADAPTERS = {"torch": "glyphlab.models.torch_adapter.TorchFamily",
                   "sklearn": "glyphlab.models.sklearn_adapter.SklearnFamily"}


class Fitted(NamedTuple):
    """What a family's ``fit`` gives back."""

    model: Any                                   # what ``save`` stores: a torch nn.Module, an sklearn estimator
    n_params: int
    predict_proba: Callable[[np.ndarray], np.ndarray]   # uint8 [N, H, W] → float32 [N, C] (or [N, P, C])
    metrics: dict = {}                           # run metrics the fit adds, e.g. train/best_epoch
    summary: str = ""                            # how training ended, for the summary line


class Family:
    """The contract of a model family's adapter (subclass it; every method takes the run's config).

    ``fit`` trains on the (augmented) train split watching the val split and returns
    :class:`Fitted`, whose predictions come from the best validation epoch. ``save`` writes the
    trained model into a folder for the logged pyfunc and returns ``(artifacts, meta)``:
    file paths by name and JSON-able facts it needs back; ``load`` turns them into a
    ``predict_proba`` in the serving process (where only the ``requirements`` are installed).
    """

    name: str = ""                    # stored with the logged model, shown in messages
    requirements: tuple[str, ...] = ()   # pip packages a logged model needs, besides glyphlab's bundled code
    online_augmentation: bool = False    # takes a per-batch augmenter (else: offline copies instead)
    uses_torch: bool = False             # imports torch (torch's thread settings then apply)
    default_threads: int | None = None   # threads (torch, BLAS) when the `threads` key is null; None: all cores

    def check_config(self, cfg) -> None:
        """Raise :class:`~glyphlab.errors.ConfigError` on a nonsense value, before any work."""

    def fit(self, cfg, glyphs, x_train, y_train, val, weights, workdir) -> Fitted:
        raise NotImplementedError

    def save(self, model, cfg, glyphs, folder) -> tuple[dict, dict]:
        raise NotImplementedError

    def load(self, artifacts: dict, meta: dict) -> Callable[[np.ndarray], np.ndarray]:
        raise NotImplementedError


def family(target: str) -> Family:
    """The adapter ``target`` names (``package.module.Class``), e.g. ``cfg.model.adapter``."""
    from glyphlab.errors import ConfigError

    module, _, name = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"model.adapter must name a model family class (package.module.Class), "
                          f"got {target!r} ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, Family)):
        raise ConfigError(f"model.adapter must name a subclass of glyphlab.models.Family, got {target!r}")
    return cls()


def family_of_logged(meta: dict) -> Family:
    """The adapter of a logged model, from its glyph_model.json."""
    return family(meta.get("adapter") or FAMILY_ADAPTERS[meta["family"]])


def check_scheduler(scheduler) -> None:
    from glyphlab.errors import ConfigError

    if scheduler not in SCHEDULERS:
        raise ConfigError(f"model.scheduler must be one of null, cosine, plateau, got {scheduler!r}")


def n_positions(glyphs) -> int:
    """Label positions per image: 1, or P for position-wise labels ``[N, P]``."""
    return 1 if glyphs.labels.ndim == 1 else glyphs.labels.shape[1]
