"""Augmentation: one batched kornia pipeline, used offline (materialised copies) and online (per batch).

An option (``conf/augmentation/<name>.yaml``) lists which stages run and how strongly; every
stage whose key is present (and not null) is built, always in this order::

    stroke_width  → angles → degrees/translate/scale/shear → elastic_alpha/elastic_sigma
    → blur_sigma → noise_std → erase_scale → clamp to 0..1

The pipeline takes and returns float ``[B, 1, H, W]`` in 0..1 with the ink bright on a dark
ground, so geometric stages fill the uncovered border with 0 and the background stays clean.
Every stage draws its random parameters per sample from torch's global RNG on the CPU (that is
how kornia draws them), so ``torch.manual_seed`` makes a run reproducible on any device.

``mode: offline`` — :func:`inflate` appends ``copies`` augmented copies of the training images
(the only way to augment for ``model=sklearn_mlp``). ``mode: online`` — :func:`build_augmenter`
gives the module the Lightning module applies to each training batch, so every epoch sees fresh
copies; :func:`inflate` then leaves the training set as it is.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from kornia.augmentation import (IntensityAugmentationBase2D, RandomAffine, RandomElasticTransform, RandomErasing,
                                 RandomGaussianBlur, RandomGaussianNoise, RandomRotation)
from kornia.filters import get_gaussian_kernel1d
from kornia.morphology import dilation, erosion
from torch.nn import functional as F

from glyphlab.errors import DataError

MODES = ("offline", "online")
CHUNK = 1024  # images per pass when inflating: bounds memory, big enough to amortise the per-call cost


def build_augmenter(cfg) -> torch.nn.Module | None:
    """The batched transform an augmentation config describes; ``None`` when it has no stage.

    Input and output: float ``[B, 1, H, W]`` in 0..1, same device. Parameters are drawn per
    sample, afresh at every call, from torch's global RNG.
    For ``angles`` (the ``rotate`` option) each sample gets one angle drawn from ``[0, *angles]``,
    so online batches see the same mix of rotations as the offline 5x set.
    """
    cfg = _check(cfg)
    angles = cfg.get("angles")
    return _pipeline(cfg, None if angles is None else [0.0, *angles])


def inflate(images: np.ndarray, labels: np.ndarray, cfg, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Offline augmentation: the originals followed by ``cfg.copies`` augmented copies of them all.

    images: uint8 ``[N, H, W]``; labels: int64 ``[N]`` or ``[N, P]``.
    Returns uint8 ``[(copies + 1) * N, H, W]`` and the labels repeated alike: rows
    ``k * N .. (k + 1) * N - 1`` are copy ``k`` (copy 0 = the originals). With ``angles`` copy
    ``k`` is every image rotated by ``angles[k - 1]`` (counter-clockwise positive). The result
    depends only on ``seed``; torch's global RNG is left as it was.
    For ``mode: online`` (or ``copies: 0``) the input comes back unchanged.
    """
    cfg = _check(cfg)
    _check_images(images, labels)
    if cfg.mode == "online" or cfg.copies == 0:
        return images, labels
    copies = augmented_copies(images, cfg, seed, cfg.copies)  # [copies, N, H, W]
    images = np.concatenate([images[None], copies]).reshape(-1, *images.shape[1:])
    return images, np.concatenate([labels] * (cfg.copies + 1))


def augmented_copies(images: np.ndarray, cfg, seed: int, copies: int) -> np.ndarray:
    """``copies`` augmented versions of every image, whatever the mode: uint8 ``[copies, N, H, W]``.

    Runs the same transform as :func:`build_augmenter` in chunks of :data:`CHUNK` images,
    except that with ``angles`` version ``k`` uses exactly ``angles[k % len(angles)]``.
    """
    cfg = _check(cfg)
    angles = cfg.get("angles")
    out = np.empty((copies, *images.shape), np.uint8)
    with torch.random.fork_rng(devices=[]):  # seed locally: the caller's RNG stream is not disturbed
        torch.manual_seed(seed)
        for k in range(copies):
            augmenter = _pipeline(cfg, None if angles is None else [angles[k % len(angles)]])
            for start in range(0, len(images), CHUNK):
                x = torch.from_numpy(images[start:start + CHUNK]).unsqueeze(1).float().div_(255.0)
                with torch.no_grad():
                    y = x if augmenter is None else augmenter(x)
                out[k, start:start + CHUNK] = y.squeeze(1).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def sample_grid(images_before: np.ndarray, images_after: np.ndarray, path, n: int = 8, title: str = "") -> None:
    """Write a PNG: each row one original training image beside its augmented versions.

    images_before: uint8 ``[N, H, W]``; images_after: uint8 ``[N, H, W]`` (one version each) or
    ``[V, N, H, W]`` (``V`` versions each). The first ``n`` images are shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    after = images_after[None] if images_after.ndim == 3 else images_after
    n = min(n, len(images_before))
    cols = 1 + len(after)
    fig, axes = plt.subplots(n, cols, figsize=(max(2.5, cols * 0.9 + 0.2), n * 0.9 + 0.5), squeeze=False)
    for row in range(n):
        for col, ax in enumerate(axes[row]):
            ax.imshow(images_before[row] if col == 0 else after[col - 1][row], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:  # a coloured frame marks the original column
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:orange")
                    spine.set_linewidth(2)
    axes[0][0].set_title("original", fontsize=8)
    for col in range(1, cols):
        axes[0][col].set_title("augmented", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def preview(images: np.ndarray, cfg, path, seed: int = 0, n: int = 8, versions: int = 5) -> None:
    """``augmentation_samples.png``-style grid for any option and mode: ``n`` images picked with
    ``seed`` (uint8 ``[N, H, W]``), each beside ``versions`` augmented versions (for ``angles``:
    one per angle; for ``none``: the originals alone)."""
    cfg = _check(cfg)
    if cfg.get("angles"):
        versions = len(cfg.angles)
    elif build_augmenter(cfg) is None:
        versions = 0
    pick = np.sort(np.random.default_rng(seed).permutation(len(images))[:n])
    before = images[pick]
    after = augmented_copies(before, cfg, seed, versions)
    sample_grid(before, after, path, n=n, title=f"augmentation={cfg.name} ({cfg.mode})")


# --- the stages ------------------------------------------------------------------------------------

class RandomStrokeWidth(IntensityAugmentationBase2D):
    """Thin or thicken bright-ink strokes by a per-sample amount in ``[-max_px, max_px]`` pixels per side.

    Grey erosion / dilation (kornia.morphology) with a disk of radius ``ceil(max_px)``; a
    fractional amount blends the original with the eroded or dilated image, which on
    anti-aliased strokes moves the edge by about that fraction of the radius.
    """

    def __init__(self, max_px: float, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.max_px = float(max_px)
        self.radius = max(1, math.ceil(self.max_px))
        r = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        self.disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= self.radius ** 2).float()

    def generate_parameters(self, shape):
        return {"amount": (torch.rand(shape[0]) * 2 - 1) * self.max_px}

    def __repr__(self) -> str:
        return f"RandomStrokeWidth(max_px={self.max_px}, p={self.p})"

    def apply_transform(self, input, params, flags, transform=None):
        t = params["amount"].to(input).view(-1, 1, 1, 1) / self.radius  # [B, 1, 1, 1] in -1..1
        kernel = self.disk.to(input)
        # One morphology pass per direction over the whole batch, then a per-sample choice.
        thick = input + t.clamp(min=0) * (dilation(input, kernel) - input)
        return thick + (-t).clamp(min=0) * (erosion(input, kernel) - input)


class RandomAngleChoice(RandomRotation):
    """Rotate each sample by one angle drawn from a fixed list (degrees, counter-clockwise positive).

    The rune article's inflation uses exact angles (-20, -10, +10, +20), which kornia's
    RandomRotation (an interval) cannot express. Uncovered corners are filled with 0.
    """

    def __init__(self, angles) -> None:
        super().__init__(degrees=0.0, p=1.0)
        self.angles = torch.tensor([float(a) for a in angles])

    def generate_parameters(self, shape):
        return {"degrees": self.angles[torch.randint(len(self.angles), (shape[0],))]}

    def __repr__(self) -> str:
        return f"RandomAngleChoice(angles={self.angles.tolist()})"


class RandomElasticPixels(RandomElasticTransform):
    """Elastic distortion (Simard, Steinkraus & Platt 2003) with ``alpha`` and ``sigma`` in pixels.

    A uniform(-1, 1) displacement field per sample (kornia's parameters), smoothed by a Gaussian
    of ``sigma`` px cut at ±3 sigma and scaled by ``alpha`` px, as in the paper (alpha 34,
    sigma 4 on 28-px digits). The result equals ``kornia.geometry.transform.elastic_transform2d``
    with kornia's alpha (half-image units) = 2 * alpha / side, but the smoothing is done as two
    matrix products with banded Gaussian matrices instead of kornia's four one-channel
    convolutions, which oneDNN runs slowly on CPU (BENCHMARKS.md, "Elastic distortion by hand": the
    numbers and the command). The test suite checks both give the same images.
    """

    def __init__(self, alpha: float, sigma: float, p: float = 1.0) -> None:
        self.kernel_size = 2 * math.ceil(3 * sigma) + 1
        super().__init__(kernel_size=(self.kernel_size, self.kernel_size), sigma=(float(sigma), float(sigma)),
                         alpha=(float(alpha), float(alpha)), padding_mode="zeros", p=p)
        self.alpha_px, self.sigma_px = float(alpha), float(sigma)

    def apply_transform(self, input, params, flags, transform=None):
        _, _, height, width = input.shape
        noise = params["noise"].to(input)                          # [B, 2, H, W], channels (x, y)
        rows = _gaussian_band(height, self.kernel_size, self.sigma_px, input.device, input.dtype)
        cols = _gaussian_band(width, self.kernel_size, self.sigma_px, input.device, input.dtype)
        disp = rows @ noise @ cols.T                               # smoothed along H, then along W
        disp = disp * input.new_tensor([2 * self.alpha_px / width, 2 * self.alpha_px / height]).view(1, 2, 1, 1)
        identity = torch.eye(2, 3, dtype=input.dtype, device=input.device)[None]
        grid = F.affine_grid(identity, [1, 1, height, width], align_corners=False)   # [1, H, W, 2]
        return F.grid_sample(input, grid + disp.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros",
                             align_corners=False)


@functools.lru_cache(maxsize=32)
def _gaussian_band(n: int, kernel_size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[n, n]`` matrix whose product is kornia's zero-padded 1-D Gaussian filter of ``kernel_size`` taps."""
    kernel = get_gaussian_kernel1d(kernel_size, sigma, device=device, dtype=dtype)[0]
    index = torch.arange(n, device=device)
    offset = index[None, :] - index[:, None] + kernel_size // 2    # [n, n]: tap that input j gets for output i
    inside = (offset >= 0) & (offset < kernel_size)
    return torch.where(inside, kernel[offset.clamp(0, kernel_size - 1)], kernel.new_zeros(()))


def _pipeline(cfg, angles) -> torch.nn.Module | None:
    """The stages present in ``cfg``, in the fixed order of the module docstring."""
    stages = []
    if cfg.get("stroke_width"):
        stages.append(RandomStrokeWidth(cfg.stroke_width))
    if angles:
        stages.append(RandomAngleChoice(angles))
    if any(cfg.get(k) is not None for k in ("degrees", "translate", "scale", "shear")):
        translate = cfg.get("translate")
        stages.append(RandomAffine(degrees=cfg.get("degrees") or 0.0,
                                   translate=None if translate is None else _pair(translate),
                                   scale=None if cfg.get("scale") is None else _pair(cfg.scale),
                                   shear=cfg.get("shear"), padding_mode="zeros", p=1.0))
    if cfg.get("elastic_alpha"):
        stages.append(RandomElasticPixels(cfg.elastic_alpha, cfg.get("elastic_sigma", 4.0),
                                          p=cfg.get("elastic_p", 1.0)))
    if cfg.get("blur_sigma") is not None:
        sigma = _pair(cfg.blur_sigma)
        size = 2 * math.ceil(2 * sigma[1]) + 1
        stages.append(RandomGaussianBlur((size, size), sigma, border_type="constant", p=cfg.get("blur_p", 1.0)))
    if cfg.get("noise_std"):
        stages.append(RandomGaussianNoise(std=float(cfg.noise_std), p=cfg.get("noise_p", 1.0)))
    if cfg.get("erase_scale") is not None:
        # value 0: the erased patch becomes background, as if part of the stroke were missing
        stages.append(RandomErasing(scale=_pair(cfg.erase_scale), ratio=(0.3, 3.3), value=0.0,
                                    p=cfg.get("erase_p", 0.5)))
    if not stages:
        return None
    # Noise and interpolation overshoot leave 0..1; the model was promised images in 0..1.
    return torch.nn.Sequential(*stages, torch.nn.Hardtanh(0.0, 1.0))


def _pair(value) -> tuple[float, float]:
    """A config value as a (low, high) float pair; a scalar ``v`` means ``(v, v)``."""
    if isinstance(value, (int, float)):
        return float(value), float(value)
    low, high = value
    return float(low), float(high)


def _check(cfg):
    """Validate the keys every option has; one line per mistake."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    mode, copies = cfg.get("mode", "offline"), cfg.get("copies", 0)
    if mode not in MODES:
        raise DataError(f"augmentation.mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(copies, int) or copies < 0:
        raise DataError(f"augmentation.copies must be a whole number >= 0, got {copies!r}")
    angles = cfg.get("angles")
    if angles is not None and mode == "offline" and copies != len(angles):
        raise DataError(f"augmentation.copies must equal the number of augmentation.angles ({len(angles)}) "
                        f"for offline rotation, got {copies}")
    for key in ("elastic_p", "blur_p", "noise_p", "erase_p"):
        if cfg.get(key) is not None and not 0 <= cfg[key] <= 1:
            raise DataError(f"augmentation.{key} must be a probability from 0 to 1, got {cfg[key]}")
    return cfg


def _check_images(images, labels) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(f"augmentation expects uint8 images [N, H, W], got "
                        f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}")
    if len(labels) != len(images):
        raise DataError(f"augmentation got {len(images)} images but {len(labels)} labels")
