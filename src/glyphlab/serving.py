"""The logged model: an MLflow pyfunc that reads raw glyph images and answers class probabilities.

Every run logs one (:func:`log_model`), so a trained model is used without glyphlab's config::

    model = mlflow.pyfunc.load_model("runs:/<run id>/model")
    model.predict(pd.DataFrame({"image": [open("fehu.png", "rb").read()]}))   # one row per image

Input: a DataFrame with one column ``image`` of image *files* as bytes (PNG, JPEG, any format
Pillow reads; any size, mode and polarity). ``mlflow models serve`` takes the same column
base64-encoded: ``{"dataframe_split": {"columns": ["image"], "data": [["iVBORw0..."]]}}``.
Output: a DataFrame with one float32 column per class, named by the class (the character), each
row summing to 1. A model with several label positions (``data=digit_sequence``) has a column
``"<position>:<class>"`` per position and class instead, each position summing to 1.

Preprocessing travels with the model: each image goes through
:func:`glyphlab.data.reader.load_image`, the one reader the run's folder data and eval_data went
through (gray, transparency on the paper its ink contrasts with, the paper levelled to black and
the ink made bright, padded to a square, resized to the training size), then the run's
``data.normalize``; a position-wise model's input is squeezed to a square instead of padded, as
its training strips were; a run with test-time views (``model.tta``) is read over the same views
(:mod:`glyphlab.models.tta`). Nothing is unpickled on load: the pyfunc is logged "from code"
(:mod:`glyphlab.serving_entry` builds it), a torch net is stored as its ``state_dict`` (loaded
with ``weights_only=True``) plus its constructor arguments in ``glyph_model.json``, and a
scikit-learn estimator with skops, which loads only the types it trusts: each family's adapter
(:mod:`glyphlab.models`) says how its model is stored and loaded, and what it needs installed.
glyphlab's own code is bundled with the model (``code_paths``), so the model also loads where
glyphlab is not installed.
"""
from __future__ import annotations

import base64
import io
import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from glyphlab.models import META_FILE

INPUT_COLUMN = "image"


def log_model(cfg, family, model, glyphs) -> str:
    """Log ``model`` (what ``family``'s fit gave: a torch net, an sklearn estimator) as the run's
    pyfunc model ``model``, stored as ``family`` (:class:`glyphlab.models.Family`) says.

    ``glyphs`` is the training :class:`~glyphlab.data.GlyphSet`: it gives the class names,
    the image size and the input example. Also logs ``classes.json``. Returns the model's URI,
    ``models:/m-<model id>`` (MLflow 3 keeps it as a logged model of the experiment, not a run artifact).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from glyphlab.models import n_positions
    from glyphlab.models.tta import check_tta

    meta = {"family": family.name, "adapter": f"{type(family).__module__}.{type(family).__qualname__}",
            "classes": list(glyphs.classes), "image_size": glyphs.image_size,
            "n_positions": n_positions(glyphs), "model": cfg.model.name, "data": cfg.data.name,
            "normalize": cfg.data.get("normalize"), "tta": check_tta(cfg.model.get("tta"))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        artifacts, extra = family.save(model, cfg, glyphs, tmp)
        meta.update(extra)
        (tmp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        artifacts["meta"] = str(tmp / META_FILE)

        columns = output_columns(meta["classes"], meta["n_positions"])
        signature = ModelSignature(inputs=Schema([ColSpec("binary", INPUT_COLUMN)]),
                                   outputs=Schema([ColSpec("float", c) for c in columns]))
        # A scanned-looking example: dark ink on light paper, which the model turns around itself.
        example = pd.DataFrame({INPUT_COLUMN: [encode_png(255 - glyphs.images[0])]})
        package = Path(__file__).resolve().parent   # glyphlab's code, bundled (MLflow drops __pycache__)
        info = mlflow.pyfunc.log_model(name="model", python_model=str(package / "serving_entry.py"), artifacts=artifacts,
                                       code_paths=[str(package)], signature=signature,
                                       input_example=example, pip_requirements=_pinned(family.requirements),
                                       metadata={k: meta[k] for k in ("classes", "image_size", "n_positions",
                                                                      "normalize", "tta")})
    mlflow.log_dict({"classes": list(glyphs.classes)}, "classes.json")
    return info.model_uri


class GlyphModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: image files in, class probabilities out (see the module docstring)."""

    def load_context(self, context):
        from glyphlab.models import family_of_logged
        from glyphlab.models.tta import with_views

        self.meta = json.loads(Path(context.artifacts["meta"]).read_text(encoding="utf-8"))
        self.columns = output_columns(self.meta["classes"], self.meta["n_positions"])
        # read as the run read its test split and eval_data: with the run's test-time views (model.tta), if any
        self.predict_images = with_views(family_of_logged(self.meta).load(context.artifacts, self.meta),
                                         self.meta.get("tta"))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        images = np.stack([model_view(data, self.meta, where=f"image {i}")
                           for i, data in enumerate(_column(model_input))])   # uint8 [N, S, S]
        # predict_images (set by load_context): float32 [N, C] (or [N, P, C]) for uint8 [N, S, S]
        proba = self.predict_images(images)
        return pd.DataFrame(proba.reshape(len(images), -1), columns=self.columns)


def model_view(data, meta: dict, where: str = "image") -> np.ndarray:
    """One image file as the model sees it: decoded at its size (:func:`decode`), then normalised
    as its training images were (``data.normalize``). uint8 ``[S, S]``, ink bright."""
    image = decode(data, int(meta["image_size"]), where=where, squeeze=int(meta.get("n_positions", 1)) > 1)
    if meta.get("normalize") == "box":
        from glyphlab.data import normalize_box

        image = normalize_box(image[None])[0]
    return image


def decode(data, image_size: int, where: str = "image", squeeze: bool = False) -> np.ndarray:
    """Image file bytes (or their base64 text) → uint8 ``[image_size, image_size]``, ink bright on dark.

    ``squeeze``: stretch the image to a square first (no padding), as the training strips of
    position-wise data were; otherwise it is padded to a square, keeping its aspect ratio.
    """
    from glyphlab.data.reader import load_image
    from glyphlab.errors import DataError

    if isinstance(data, str):  # base64 text from a client that did not go through the signature
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError:
            raise DataError(f"{where}: expected image file bytes or their base64 text, "
                            f"got a string that is not base64") from None
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"{where}: expected image file bytes (PNG, JPEG, ...), got {type(data).__name__}")
    try:
        image, _ = load_image(io.BytesIO(_squeezed(bytes(data)) if squeeze else bytes(data)), image_size)
    except DataError as e:  # the kind is kept: a server answers ImageTooLargeError 413, the others 400
        raise type(e)(f"{where}: {e}") from None
    except Exception as e:  # Pillow raises many kinds on bytes that are not an image
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{where}: cannot read it as an image ({why})") from None
    return image


def _squeezed(data: bytes) -> bytes:
    """Image file bytes → PNG bytes of the image stretched to a square (its longer side); the
    reader's pixel limit is checked first (:func:`glyphlab.data.reader.open_image`)."""
    from PIL import Image, ImageOps

    from glyphlab.data.reader import open_image

    with open_image(io.BytesIO(data)) as im:
        if im.width == im.height:
            return data
        im = ImageOps.exif_transpose(im)
        side = max(im.size)
        buffer = io.BytesIO()
        im.resize((side, side), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """uint8 ``[H, W]`` gray image → PNG file bytes (to feed arrays to the model)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def output_columns(classes: list[str], n_positions: int = 1) -> list[str]:
    return list(classes) if n_positions == 1 else [f"{p}:{c}" for p in range(n_positions) for c in classes]


def load_glyph_model(model_uri: str):
    """Load a glyphlab model: returns ``(pyfunc model, class names)`` (per position, for a position-wise model).

    Raises :class:`glyphlab.errors.DataError` (one line) when the URI cannot be loaded or names a
    model that does not take glyph images (e.g. one logged before glyphlab logged pyfuncs).
    """
    from glyphlab.errors import DataError

    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as e:  # MlflowException, OSError, ...: all mean "this URI gives no model"
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot load model {model_uri}: {message}") from None
    inputs = model.metadata.get_input_schema()
    names = inputs.input_names() if inputs is not None else []
    if names != [INPUT_COLUMN]:
        raise DataError(f"model {model_uri} is not a glyphlab image model: expected one input column "
                        f"{INPUT_COLUMN!r}, found {names or 'no input schema'}")
    classes = (model.metadata.metadata or {}).get("classes") or model.metadata.get_output_schema().input_names()
    return model, list(classes)


def _column(model_input):
    if isinstance(model_input, pd.DataFrame):
        if INPUT_COLUMN not in model_input.columns:
            from glyphlab.errors import DataError

            raise DataError(f"expected a column {INPUT_COLUMN!r} of image file bytes, "
                            f"got columns {list(model_input.columns)}")
        return model_input[INPUT_COLUMN].tolist()
    if isinstance(model_input, dict):
        return list(model_input[INPUT_COLUMN])
    return list(model_input)


def _pinned(requirements) -> list[str]:
    """Requirements pinned to the versions here, given explicitly (MLflow's inference of them is slow)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in requirements]
