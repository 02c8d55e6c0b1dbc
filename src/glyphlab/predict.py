"""Read glyph images with a trained model, from the command line.

    python -m glyphlab.predict --model runs:/<run id>/model fehu.png scan.jpg [--top-k 5] [--json]

``--model`` is any MLflow model URI: ``runs:/<run id>/model`` (the id ``python run.py``
prints), ``models:/<name>/<version>`` for a registered model, or a local model folder.
Runs are looked up in glyphlab's store (``MLFLOW_TRACKING_URI``, else ``<repo>/mlruns/mlflow.db``)
unless ``--tracking-uri`` says otherwise. Images may be any size, either polarity.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glyphlab.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, ...)")
    parser.add_argument("--model", required=True,
                        help="runs:/<run id>/model, models:/<name>/<version> or a local model folder")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per image (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--tracking-uri", help="MLflow store of runs:/ and models:/ URIs "
                                               "(default: $MLFLOW_TRACKING_URI, else <repo>/mlruns/mlflow.db)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")

    from glyphlab.data import DataError

    try:
        files = [read_image_file(path) for path in args.images]   # before the (slower) model load
        model, classes = load_model(args.model, args.tracking_uri)
        results = predict(model, files, args.top_k)
    except DataError as e:
        print(f"glyphlab: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"image": str(path), "top": top} for path, top in zip(args.images, results)],
                         ensure_ascii=False, indent=1))
    else:
        for path, top in zip(args.images, results):
            print(path)
            for guess in top:
                name = readable(guess["class"])
                print(f"  {guess['class']}  {guess['probability']:.3f}" + (f"  ({name})" if name else ""))
    return 0


def read_image_file(path: Path) -> bytes:
    """The bytes of an image file; :class:`DataError` (one line) when it is missing or not an image."""
    import io

    from PIL import Image

    from glyphlab.data import DataError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; expected an image file (PNG, JPEG, ...)") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; expected an image file (PNG, JPEG, ...)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        with Image.open(io.BytesIO(data)) as im:  # the header only: says whether Pillow reads it
            im.size
    except Exception:
        raise DataError(f"{path} is not an image Pillow can read; expected PNG, JPEG, BMP, ...") from None
    return data


def load_model(uri: str, tracking_uri: str | None = None):
    """``(pyfunc model, classes)`` from a model URI, resolved against glyphlab's store."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    from glyphlab.serving import load
    from glyphlab.tracking import tracking_uri as default_uri

    mlflow.set_tracking_uri(tracking_uri or default_uri({}))
    return load(uri)


def predict(model, files: list[bytes], top_k: int) -> list[list[dict]]:
    """Top-k ``{"class", "probability"}`` per image file, most probable first."""
    import pandas as pd

    from glyphlab.serving import INPUT_COLUMN

    proba = model.predict(pd.DataFrame({INPUT_COLUMN: files}))
    results = []
    for _, row in proba.iterrows():
        best = row.sort_values(ascending=False, kind="stable")[:top_k]
        results.append([{"class": str(name), "probability": round(float(p), 6)} for name, p in best.items()])
    return results


def readable(name: str) -> str:
    """A readable name for a non-ASCII class (``ᚠ`` → ``fehu feoh``), '' for ASCII ones."""
    from glyphlab.evaluate import readable_name

    return "" if name.isascii() else readable_name(name)


if __name__ == "__main__":
    sys.exit(main())
