"""Test-time augmentation: a model reads an image and a few turned and scaled views of it, by their mean probability.

``model.tta: {rotations: [-7, 7], scales: [0.9, 1.1]}`` reads each image as it is plus once per rotation (degrees,
about the image centre) and once per scale (about the centre), and answers the mean of the class probabilities.
It wraps any family's ``predict_proba`` (uint8 ``[N, H, W]`` → ``[N, C]`` or ``[N, P, C]``), so the test split,
``eval_data``, the logged pyfunc, ``glyphlab predict`` and the draw page all read the same way: the run writes the
value into the logged model's ``glyph_model.json``, and the pyfunc wraps its reader with it on load. The views are
drawn with Pillow (bilinear, the ground filled dark), which every logged model already needs. ``null``: one view,
the image itself. Why: experiments/synth_to_real, "Test-time views".
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from glyphlab.errors import ConfigError

KEYS = {"rotations": (-45.0, 45.0), "scales": (0.5, 2.0)}   # each key's allowed range


def check_tta(tta, where: str = "model.tta") -> dict | None:
    """``tta`` as a plain dict of float lists (or None); one line naming the key on anything else."""
    if tta is None:
        return None
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(tta):
            tta = OmegaConf.to_container(tta, resolve=True)
    except ImportError:  # the serving process may lack omegaconf; its value is plain JSON already
        pass
    if not isinstance(tta, dict):
        raise ConfigError(f"{where} must be null or a mapping like {{rotations: [-7, 7], scales: [0.9, 1.1]}}, "
                          f"got {tta!r}")
    if unknown := sorted(set(tta) - set(KEYS)):
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; expected {', '.join(KEYS)}")
    out = {}
    for key, (lo, hi) in KEYS.items():
        values = [] if tta.get(key) is None else tta[key]   # a 0 or "" is a mistake to name, not an empty list
        if not isinstance(values, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise ConfigError(f"{where}.{key} must be a list of numbers, got {values!r}")
        if bad := [v for v in values if not lo <= v <= hi]:
            raise ConfigError(f"{where}.{key} must lie in [{lo:g}, {hi:g}], got {', '.join(f'{v:g}' for v in bad)}")
        out[key] = [float(v) for v in values]
    return out


def views(images: np.ndarray, tta: dict) -> list[np.ndarray]:
    """The images themselves, then one turned copy per rotation and one scaled copy per scale (uint8, same shape)."""
    out = [images]
    out += [_warp(images, angle, 1.0) for angle in tta.get("rotations", [])]
    out += [_warp(images, 0.0, scale) for scale in tta.get("scales", [])]
    return out


def with_views(predict_proba: Callable[[np.ndarray], np.ndarray], tta) -> Callable[[np.ndarray], np.ndarray]:
    """``predict_proba`` reading every image in each of ``tta``'s views, by the mean probability; as it is for
    ``tta`` None (or no views)."""
    tta = check_tta(tta)
    if not tta or not any(tta.values()):
        return predict_proba

    def read(images: np.ndarray) -> np.ndarray:
        parts = views(np.asarray(images), tta)
        return (sum(predict_proba(v).astype(np.float64) for v in parts) / len(parts)).astype(np.float32)
    return read


def _warp(images: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """Each image turned by ``angle`` degrees (counter-clockwise) and scaled by ``scale`` about its centre."""
    from PIL import Image

    h, w = images.shape[-2:]
    cx, cy = w / 2, h / 2
    # Pillow's AFFINE maps each output pixel to the input point it samples: the inverse of the turn and scale
    cos, sin = math.cos(math.radians(angle)) / scale, math.sin(math.radians(angle)) / scale
    coefficients = (cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy)
    flat = images.reshape(-1, h, w)
    out = np.empty_like(flat)
    for i, image in enumerate(flat):
        out[i] = np.asarray(Image.fromarray(image).transform((w, h), Image.Transform.AFFINE, coefficients,
                                                             resample=Image.Resampling.BILINEAR, fillcolor=0))
    return out.reshape(images.shape)
