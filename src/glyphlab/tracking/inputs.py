"""A run's data sets as MLflow *inputs* (``mlflow.log_input``): the runs table's Dataset column.

Each set is named by its data option (``runes``, ``digits``, ``folder`` …) and its digest is the set's
cache key, the hash of the config that built it, so two runs on the same images show the same
``name (digest)``. The source is where the images came from: ``data.root``, else the cache file.
Only the description is logged (shape, dtype, size), never the images.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path


def log_dataset(cfg_data, glyphs, context: str, cache_dir=None) -> None:
    """Log ``glyphs`` (a :class:`~glyphlab.data.GlyphSet`, all its splits) built from the data config
    ``cfg_data`` on the active run, in ``context`` (``training`` for ``data``, ``evaluation`` for
    ``eval_data``)."""
    import mlflow
    from omegaconf import OmegaConf

    from glyphlab.data import cache_key, cache_path

    cfg = OmegaConf.to_container(cfg_data, resolve=True) if not isinstance(cfg_data, dict) else cfg_data
    name = str(cfg.get("name", "data"))
    cached = cache_path(cfg, cache_dir) if cache_dir is not None else None
    source = None  # None: MLflow names the code that logged it
    if cfg.get("root"):
        source = Path(str(cfg["root"])).expanduser().resolve().as_uri()
    elif cached is not None and cached.exists():
        source = cached.resolve().as_uri()
    with warnings.catch_warnings():  # MLflow registers two equal sources for file URIs and says so
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_numpy(glyphs.images, targets=glyphs.labels, source=source, name=name,
                                         digest=_digest(cache_key(cfg), glyphs))
    mlflow.log_input(dataset, context=context)


def _digest(key: str, glyphs) -> str:
    """The set's identity: its cache key, and the drawings data.extra_root added (glyphlab.data.extra)."""
    drawings = glyphs.meta.get("extra", {}).get("digest")
    return key if drawings is None else hashlib.sha256(f"{key}+{drawings}".encode()).hexdigest()[:16]
