"""The one image reader: an image file -> a glyph as the models see it, uint8, ink 255 on 0.

Every user image goes through :func:`load_image`: ``data=folder`` and ``data=omniglot`` (so
``eval_data`` too), ``glyphlab predict``, the draw page and the logged pyfunc model, so a served
model reads an image exactly as its run read its training and test files. The steps:

1. open the header only and refuse an image claiming more than :data:`MAX_PIXELS` pixels
   (:class:`~glyphlab.errors.ImageTooLargeError`), before any pixel is decoded;
2. decode to gray: any mode, 16-bit and float scaled, EXIF rotation applied; transparency is
   composited on the paper the visible pixels contrast with (:func:`_to_gray`);
3. level the paper (:mod:`glyphlab.data.paper`): grey, shaded or noisy paper -> 0, the ink
   bright at full contrast, whichever polarity it had;
4. shrink (aspect kept, Lanczos) to the model's size, where what is left of the paper's noise
   is cut, and pad to a square with the (now black) paper.
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps

from glyphlab.data.paper import MIN_NOISE, cut_noise, level_paper, stretch
from glyphlab.errors import ImageTooLargeError

# An image claiming more pixels than this is refused before decoding: a 61 KB PNG can claim
# 7000x7000 pixels, ~500 MB decoded. A 12 MP phone photo (4032x3024) is within it.
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE
# Pillow's own guard, for every Image.open in the process: it warns above this and refuses at open
# above twice this; the reader refuses above it itself, with the file's size in the message.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Levelling works on at most this side (images are then shrunk to 8..1024 px anyway).
WORK_SIDE = 1024
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _limit() -> str:
    return f"the limit of {MAX_PIXELS:,} pixels ({MAX_SIDE}x{MAX_SIDE})"


@contextmanager
def open_image(source, image_size: int | None = None):
    """``Image.open(source)`` (a path or a binary file object) with the pixel limit checked on the
    header, before anything is decoded. ``image_size``: the side the image will be shrunk to; a
    JPEG is then decoded at a reduced scale (DCT scaling, still 2x that side). Raises
    :class:`ImageTooLargeError` (a :class:`~glyphlab.errors.DataError`) when the image is too large."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in one line
        try:
            im = Image.open(source)
        except Image.DecompressionBombError as e:
            claimed = re.search(r"\((\d+) pixels\)", str(e))
            count = f"{int(claimed.group(1)):,} pixels" if claimed else "too many pixels"
            raise ImageTooLargeError(f"claims {count}, more than {_limit()}; refused before decoding "
                                     f"(a decompression bomb? else shrink it first)") from None
    with im:
        if im.width * im.height > MAX_PIXELS:
            raise ImageTooLargeError(f"claims {im.width}x{im.height} pixels, more than {_limit()}; refused "
                                     f"before decoding (a decompression bomb? else shrink it first)")
        if image_size is not None:  # a no-op for formats other than JPEG
            im.draft("L", (2 * image_size, 2 * image_size))
        yield im


def load_image(source, image_size: int) -> tuple[np.ndarray, bool]:
    """One image file (path or binary file object) -> uint8 ``[image_size, image_size]``, ink 255 on 0.

    Returns the image and whether its ink was darker than its paper (so it was turned around).
    Raises :class:`ImageTooLargeError` for an image over :data:`MAX_PIXELS` and Pillow's errors
    on undecodable input.
    """
    with open_image(source, image_size) as im:
        gray = _to_gray(ImageOps.exif_transpose(im))  # float32 [H, W] in 0..255
    ink, dark_ink = level_paper(_shrink(gray, WORK_SIDE))   # float32 [h, w]: paper ~0, ink positive
    stretched, noise = stretch(ink)                     # float32 [h, w], the ink's level at 255
    contain = (image_size, image_size)
    if noise > MIN_NOISE:  # cut at the size the model sees: shrinking has averaged much of the noise away
        fitted = cut_noise(np.asarray(ImageOps.contain(Image.fromarray(stretched), contain,
                                                       method=Image.Resampling.LANCZOS)))
    else:                  # clean paper: exactly the 8-bit resize a clean image always had
        clean = Image.fromarray(np.clip(np.round(stretched), 0, 255).astype(np.uint8))
        fitted = np.asarray(ImageOps.contain(clean, contain, method=Image.Resampling.LANCZOS))
    square = ImageOps.pad(Image.fromarray(fitted), contain, color=0)
    return np.asarray(square, dtype=np.uint8), dark_ink


def check_decodes(data: bytes) -> None:
    """Raise unless ``data`` is a whole image within the pixel limit that Pillow decodes
    (a truncated or damaged file fails here, named by the caller, not later as "image 1")."""
    import io

    with open_image(io.BytesIO(data), WORK_SIDE) as im:
        im.load()


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    h, w = gray.shape
    if max(h, w) <= side:
        return gray
    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    return np.asarray(Image.fromarray(gray.astype(np.float32)).resize(size, Image.Resampling.BOX), dtype=np.float32)


def _to_gray(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 ``[H, W]`` gray in 0..255."""
    if im.mode.startswith("I;16"):
        return np.asarray(im, dtype=np.float32) / 257.0
    if im.mode in ("I", "F"):  # 32-bit int or float: 16-bit PNGs, float TIFFs
        a = np.asarray(im, dtype=np.float32)
        top = float(a.max(initial=0))
        scale = 255.0 if im.mode == "F" and top <= 1.0 else 1.0 if top <= 255 else 255.0 / 65535.0
        return np.clip(a * scale, 0, 255)
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        lum = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float32)
        if alpha.min() == alpha.max():  # all opaque, or evenly translucent: alpha holds no drawing
            return lum
        return _composite(lum, alpha)
    if im.mode not in ("L", "1", "P", "RGB"):  # CMYK, YCbCr, LAB, HSV ...
        im = im.convert("RGB")
    return np.asarray(im.convert("L"), dtype=np.float32)


def _composite(lum: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Gray ``lum`` with opacity ``alpha`` (0..1) over the paper its visible pixels contrast with.

    The transparent part is paper. Its colour is the one the ink stands out from: white under dark
    ink ("remove background" PNGs, transparent GIFs), black under light ink (drawn for a dark theme).
    The ink is taken from the visible pixels' extremes (10th and 90th percentiles), not their mean:
    thin anti-aliased strokes often have more light fringe (a halo of the old paper) than dark core,
    and a mean then says "light ink", composites on black, and leaves a hollow outline.
    """
    visible = alpha >= 0.5 * float(alpha.max())
    darkest, lightest = np.percentile(lum[visible], [10, 90])
    paper = 255.0 if (255.0 - darkest) >= lightest else 0.0
    return alpha * lum + (1.0 - alpha) * paper
