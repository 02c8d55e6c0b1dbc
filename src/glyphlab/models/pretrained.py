"""``model.init_from``: a logged glyphlab model as the starting point of a run (fine-tuning).

The URI is anything MLflow downloads a logged model from (``runs:/<run id>/model``, ``models:/m-…``,
``models:/<name>/<version>``) or a local folder of one. Only the model's stored files are read
(``glyph_model.json`` and the family's weights, as :mod:`glyphlab.serving` logged them); its code is
not run. The model must have been trained on the same classes, in the same order, at the same image
size as the run's data; each family's adapter then loads what it stored (``Family.init_from``).
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from glyphlab.errors import ConfigError
from glyphlab.models import META_FILE

EXPECTED = "runs:/<run id>/model, models:/m-… or a folder of a logged model"


def fetch(uri: str, workdir) -> tuple[dict, dict]:
    """The logged model ``uri``: its ``glyph_model.json`` and its stored files by name (the artifacts
    the family's ``save`` wrote, e.g. ``weights``), downloaded into ``workdir`` when not local."""
    local = Path(str(uri)).expanduser()
    if not local.exists():
        if len(urlparse(str(uri)).scheme) < 2:  # no runs:/, models:/, s3:// ...: a local path (C: is a drive)
            raise ConfigError(f"model.init_from {uri}: no such file or folder; expected {EXPECTED}")
        import mlflow

        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=str(uri),
                                                             dst_path=str(Path(workdir) / "init_from")))
        except Exception as e:  # MlflowException, OSError ...: all mean "no model there"
            lines = [line for line in str(e).strip().splitlines() if line.strip()] or [type(e).__name__]
            # "The following failures occurred while downloading ... from X:" puts the reason on its last line
            message = lines[0] + (f" {lines[-1]}" if lines[0].endswith(":") and len(lines) > 1 else "")
            raise ConfigError(f"model.init_from {uri} cannot be loaded: {message}") from None
    found = sorted(local.rglob(META_FILE)) if local.is_dir() else []
    if not found:
        raise ConfigError(f"model.init_from {uri} is not a glyphlab model: no {META_FILE} in it "
                          f"(expected {EXPECTED})")
    folder = found[0].parent
    meta = json.loads(found[0].read_text(encoding="utf-8"))
    return meta, {p.stem: str(p) for p in folder.iterdir() if p.is_file() and p.name != META_FILE}


def check_fits(meta: dict, glyphs, uri: str, family_name: str) -> None:
    """One line when the logged model ``meta`` cannot start this run: another family, other classes
    (or their order), another image size or number of label positions."""
    from glyphlab.models import n_positions

    if meta.get("family") != family_name:
        raise ConfigError(f"model.init_from {uri} is a {meta.get('family')} model ({meta.get('model')}); "
                          f"this run trains a {family_name} model: pick the model option it was trained with")
    logged, classes = list(meta.get("classes", [])), list(glyphs.classes)
    found = {"image_size": meta.get("image_size"), "n_positions": meta.get("n_positions", 1)}
    expected = {"image_size": glyphs.image_size, "n_positions": n_positions(glyphs)}
    if logged == classes and found == expected:
        return
    if found != expected:
        what = ", ".join(f"{k} {found[k]} (this run's data: {expected[k]})" for k in found if found[k] != expected[k])
        raise ConfigError(f"model.init_from {uri} does not fit this run's data: {what}")
    if sorted(logged) == sorted(classes):
        raise ConfigError(f"model.init_from {uri} has the data's classes in another order; expected "
                          f"{_names(classes)!r}, found {_names(logged)!r} (data=folder: "
                          f"data.class_order='{_names(logged)}' puts them in the model's order)")
    missing, extra = [c for c in classes if c not in logged], [c for c in logged if c not in classes]
    raise ConfigError(f"model.init_from {uri} was trained on other classes: expected the data's "
                      f"{len(classes)} ({' '.join(classes[:30])}), found {len(logged)}; not in the model: "
                      f"{' '.join(missing[:30]) or 'none'}; only in the model: {' '.join(extra[:30]) or 'none'}")


def _names(classes: list[str]) -> str:
    """Class names as ``data.class_order`` takes them: the characters, or space-separated names."""
    return "".join(classes) if all(len(c) == 1 for c in classes) else " ".join(classes)
