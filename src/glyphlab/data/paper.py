"""Paper levelling: a gray photo or scan of a glyph -> ink bright on a clean black background.

Real paper is rarely white: scans are grey, phone photos are shaded, lit unevenly, noisy.
Inverting such an image leaves a grey background that box normalisation takes for ink. So the
paper level is estimated as a smooth surface (a low-order polynomial fitted robustly to the
pixels that are not ink, on a shrunk copy of the image), the image is divided by it (dark ink:
reflectance, which undoes shading) or has it subtracted (light ink), the residual paper noise
is cut at a few noise sigmas, and the ink is stretched to full contrast. The side the ink lies
on (darker or lighter than the paper) is the polarity. Clean images (ink on pure white or pure
black paper) come through unchanged but for a contrast stretch of ink that was not at full
contrast.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FIT_SIDE = 64            # the paper surface is fitted on the image shrunk to at most this side
SURFACE_DEGREE = 3       # paper = a cubic in x and y: grey level, gradients, vignetting, soft shadows
BORDER = 1 / 8           # the first fit uses the outer band of this width: glyph images have paper around the glyph
TRIM_SIGMAS = 2.5        # pixels further than this from the surface are ink (or dirt), left out of the next fit
FIT_ROUNDS = 5
NOISE_SIGMAS = 3.0       # levelled values below this many noise sigmas are paper noise, set to 0
INK_PERCENTILE = 95      # the ink level (-> 255): a high percentile of the ink pixels, robust to a few specks
MIN_INK_CONTRAST = 12.0  # gray levels; an image whose ink differs less from its paper is blank,
MIN_INK_SIGMAS = 5.0     # and so is one whose ink is less than this many noise sigmas (paper noise's own tail)
MIN_NOISE = 0.5          # gray levels: paper noisier than this is cut after shrinking; cleaner paper is
                         # shrunk in 8 bits, as it always was, and its resize filter's ringing kept


def level_paper(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """float ``[H, W]`` gray in 0..255 -> (float32 ``[H, W]`` ink strength: paper ~0, ink positive, in gray
    levels of the paper; whether the ink is darker than the paper). Noise is left for :func:`stretch`."""
    gray = np.asarray(gray, dtype=np.float32)
    level = float(np.median(_sample(gray)))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    # Most pixels, and most of the border, at one exact level: clean paper, nothing to fit. (The border
    # too: a bold glyph cropped tight can cover most of the image, never most of its border.)
    if np.count_nonzero(gray == level) > gray.size / 2 and float(np.median(border)) == level:
        dark_ink = _ink_is_darker(gray - level, 0.5, level)
        return (level - gray if dark_ink else gray - level), dark_ink
    h, w = gray.shape
    coefficients, dark_ink = _fit_paper(_shrink(gray))
    paper = _surface(coefficients, h, w)
    if dark_ink:  # observed = reflectance x light: dividing by the lit paper leaves the ink's reflectance
        level = max(float(np.median(_sample(paper))), 1.0)
        ink = (1.0 - gray / np.maximum(paper, 1.0)) * level
    else:         # light ink (chalk, a screen, MNIST): what rises above the paper
        ink = gray - paper
    return ink.astype(np.float32), dark_ink


def stretch(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink strength (:func:`level_paper`) -> (float32 ``[H, W]`` with the ink's level at 255, not clipped;
    the paper's noise sigma in gray levels). The ink's level is INK_PERCENTILE of the pixels above
    the noise, measured here where strokes have solid cores. An image whose ink is not clearly above
    its noise (MIN_INK_CONTRAST, MIN_INK_SIGMAS) comes out all zeros: blank."""
    ink = np.asarray(ink, dtype=np.float32)
    noise = paper_noise(ink)
    candidates = ink[ink > NOISE_SIGMAS * noise]
    top = float(np.percentile(candidates, INK_PERCENTILE)) if candidates.size else 0.0
    if top < MIN_INK_CONTRAST or top < MIN_INK_SIGMAS * noise:
        return np.zeros(ink.shape, np.float32), noise
    return ink * np.float32(255.0 / top), noise


def cut_noise(image: np.ndarray) -> np.ndarray:
    """float ``[H, W]`` stretched ink, shrunk to the size the model sees (which averaged much of the
    paper's noise away) -> uint8, with what is left of the noise (up to NOISE_SIGMAS sigmas above
    the paper) set to 0. A hard cut, not a soft one: the ink's anti-aliased edges keep their values,
    and the glyph keeps its box."""
    cut = NOISE_SIGMAS * paper_noise(image)
    return np.where(image > cut, np.clip(np.round(image), 0, 255), 0).astype(np.uint8)


def paper_noise(ink: np.ndarray) -> float:
    """The paper's noise sigma in levelled ink strength (paper ~0, ink positive): read from the
    values below 0, which only paper noise reaches, however much of the image the ink covers
    (their median magnitude is 0.674 sigma); 0 for clean paper."""
    below = -_sample(ink)
    below = below[below > 0]
    return 1.4826 * float(np.median(below)) if below.size else 0.0


def _sample(values: np.ndarray, at_most: int = 1 << 16) -> np.ndarray:
    """Every k-th pixel, at most ``at_most`` of them: a median of a large image as good, far cheaper."""
    flat = values.ravel()
    return flat[::max(1, flat.size // at_most)]


def _shrink(gray: np.ndarray) -> np.ndarray:
    """The image averaged down to at most FIT_SIDE per side (the paper is smooth; thin strokes fade)."""
    from PIL import Image

    h, w = gray.shape
    factor = max(h, w) / FIT_SIDE
    if factor <= 1:
        return gray
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return np.asarray(Image.fromarray(gray.astype(np.float32)).resize(size, Image.Resampling.BOX),
                      dtype=np.float64)


@lru_cache(maxsize=16)  # a folder's images mostly share a few sizes
def _terms(h: int, w: int) -> np.ndarray:
    """The polynomial's terms x^i y^j (i + j <= degree) at every pixel centre, x and y in -1..1: ``[H*W, T]``."""
    y, x = np.meshgrid(_axis(h), _axis(w), indexing="ij")
    terms = np.stack([(x ** i * y ** j).ravel() for i in range(SURFACE_DEGREE + 1)
                      for j in range(SURFACE_DEGREE + 1 - i)], axis=1)
    terms.flags.writeable = False
    return terms


def _axis(n: int) -> np.ndarray:
    """Pixel centres along a side of ``n`` pixels in -1..1: the same place at any resolution."""
    return (np.arange(n) + 0.5) / n * 2 - 1


def _surface(coefficients: np.ndarray, h: int, w: int) -> np.ndarray:
    """The fitted paper at ``h x w`` pixels (the fit's -1..1 coordinates span any size): ``[H, W]``."""
    y, x = _axis(h)[:, None], _axis(w)[None, :]
    paper = np.zeros((h, w))
    k = 0
    for i in range(SURFACE_DEGREE + 1):
        for j in range(SURFACE_DEGREE + 1 - i):
            paper += coefficients[k] * (x ** i) * (y ** j)
            k += 1
    return paper


def _fit_paper(small: np.ndarray) -> tuple[np.ndarray, bool]:
    """Fit the paper surface to ``small`` ``[h, w]``: (its coefficients, whether the ink is darker).

    Starts from the outer band's median (mostly paper in a glyph image, even a bold one), then
    refits on every pixel within TRIM_SIGMAS of the current surface: ink on either side drops out
    without knowing its polarity first. The polarity is then the side with more mass beyond the trim.
    """
    h, w = small.shape
    values = small.ravel()
    terms = _terms(h, w)
    band = max(1, round(min(h, w) * BORDER))
    inner = np.zeros((h, w), bool)
    inner[band:h - band, band:w - band] = True
    outer = ~inner.ravel()
    # Start from a flat paper at the outer band's median, robust to the ink that reaches into the band.
    residual = values - float(np.median(values[outer]))
    sigma = 1.4826 * float(np.median(np.abs(residual[outer])))
    coefficients = np.zeros(terms.shape[1])
    coefficients[0] = float(np.median(values[outer]))
    keep = np.abs(residual) <= max(TRIM_SIGMAS * sigma, 0.5)
    for _ in range(FIT_ROUNDS):
        if keep.sum() < 2 * terms.shape[1]:
            break
        kept = terms[keep]  # least squares by the normal equations: T x T, T = 10 terms (cheaper than an SVD)
        coefficients = np.linalg.solve(kept.T @ kept + 1e-9 * np.eye(kept.shape[1]), kept.T @ values[keep])
        residual = values - terms @ coefficients
        sigma = 1.4826 * float(np.median(np.abs(residual[keep])))
        new = np.abs(residual) <= max(TRIM_SIGMAS * sigma, 0.5)
        if np.array_equal(new, keep):
            break
        keep = new
    return coefficients, _ink_is_darker(residual, max(TRIM_SIGMAS * sigma, 0.5), float(np.median(values)))


def _ink_is_darker(residual: np.ndarray, margin: float, paper: float) -> bool:
    """Whether the ink is darker than the paper: more of ``residual`` (image - paper) lies more than
    ``margin`` below it than above. With no ink at all, the paper's own level decides."""
    darker = float(np.clip(-residual - margin, 0, None).sum())
    lighter = float(np.clip(residual - margin, 0, None).sum())
    if max(darker, lighter) < 1e-6:
        return paper > 127.5
    return darker >= lighter
