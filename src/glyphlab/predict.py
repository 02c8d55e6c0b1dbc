"""Read glyph images with a trained model, from the command line.

    glyphlab predict --model runs:/<run id>/model fehu.png scan.jpg [--top-k 5] [--json]

``--model`` is any MLflow model URI: ``runs:/<run id>/model`` (the id ``python run.py``
prints), ``models:/<name>/<version>`` for a registered model, or a local model folder.
Runs are looked up in glyphlab's store (``MLFLOW_TRACKING_URI``, else ``<repo>/mlruns/mlflow.db``)
unless ``--tracking-uri`` says otherwise. Images may be any size, either polarity. A file that is
not an image is skipped with one line saying which and why; the others are read, and the exit status is 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from glyphlab.data.sequences import BLANK  # the class of an empty position in position-wise data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glyphlab predict", description=__doc__.split("\n\n")[0],
                                     epilog="example:\n" + __doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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

    from glyphlab.errors import GlyphlabError

    read, skipped = {}, {}
    for path in args.images:  # before the (slower) model load; a file that is no image is skipped, not the batch
        try:
            read[path] = read_image_file(path)
        except GlyphlabError as e:
            skipped[path] = str(e)
            print(f"glyphlab: error: {e}" + (" (skipped)" if len(args.images) > 1 else ""), file=sys.stderr)
    try:
        if read:
            model, classes = load_model(args.model, args.tracking_uri)
            results = _predict_each(model, read, skipped, args.top_k, len(args.images) > 1)
    except GlyphlabError as e:
        print(f"glyphlab: error: {e}", file=sys.stderr)
        return 2
    for path in [p for p in read if not has_ink(read[p])]:  # read, but its reading is a guess
        print(f"glyphlab: warning: {path}: no ink found (a blank page, or ink too faint to tell from the paper); "
              f"its reading is a guess", file=sys.stderr)
    status = 2 if skipped else 0  # the rest are read, but a script sees that some were not
    if args.json:
        print(json.dumps([{"image": str(path), **(results[path] if path in read else {"error": skipped[path]})}
                          for path in args.images], ensure_ascii=False, indent=1))
        return status
    for path, result in ((path, results[path]) for path in args.images if path in read):
        if "reading" not in result:
            print(path)
            print_top(result["top"])
            continue
        print(f"{path}: {result['reading']!r}  ({result['top'][0]['probability']:.3f})")
        for position, top in enumerate(result["positions"]):
            print(f"  position {position}")
            print_top(top, indent="    ")
    return status


def _predict_each(model, read: dict, skipped: dict, top_k: int, several: bool) -> dict:
    """``{path: result}`` of the images in ``read`` (one batch); when the model refuses one, each on its
    own, the refused ones moved to ``skipped`` with their line on stderr."""
    from glyphlab.errors import GlyphlabError

    try:
        return dict(zip(read, predict(model, list(read.values()), top_k)))
    except GlyphlabError:
        if not several:
            raise
    results = {}
    for path in list(read):
        try:
            results[path] = predict(model, [read[path]], top_k)[0]
        except GlyphlabError as e:
            skipped[path] = f"{path}: {e}"
            del read[path]
            print(f"glyphlab: error: {skipped[path]} (skipped)", file=sys.stderr)
    return results


def print_top(top: list[dict], indent: str = "  ") -> None:
    for guess in top:
        name = readable(guess["class"])
        print(f"{indent}{guess['class']}  {guess['probability']:.3f}" + (f"  ({name})" if name else ""))


def read_image_file(path: Path) -> bytes:
    """The bytes of an image file; :class:`DataError` (one line) when it is missing or not an image."""
    from glyphlab.errors import DataError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; expected an image file (PNG, JPEG, ...)") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; expected an image file (PNG, JPEG, ...)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror})") from None
    check_image(data, str(path))
    return data


def has_ink(data: bytes) -> bool:
    """Whether the image holds any ink once its paper is levelled (as every reader of glyphlab levels it)."""
    import io

    from glyphlab.data.reader import load_image

    try:
        return bool(load_image(io.BytesIO(data), 32)[0].any())
    except Exception:  # noqa: BLE001 — the model's own reader has read it; only blankness is asked here
        return True


def check_image(data: bytes, name: str) -> None:
    """:class:`DataError` naming ``name`` unless ``data`` is a whole image Pillow decodes; an image over
    the reader's pixel limit is refused unread, as :class:`~glyphlab.errors.ImageTooLargeError`."""
    from PIL import UnidentifiedImageError

    from glyphlab.data.reader import check_decodes
    from glyphlab.errors import DataError

    try:
        check_decodes(data)
    except DataError as e:  # ImageTooLargeError: the message says the size and the limit
        raise type(e)(f"{name} {e}") from None
    except UnidentifiedImageError:
        raise DataError(f"{name} is not an image Pillow can read; expected PNG, JPEG, BMP, ...") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds on damaged data
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{name}: Pillow cannot decode it ({reason}); expected a whole PNG, JPEG, ...") from None


def load_model(uri: str, tracking_uri: str | None = None):
    """``(pyfunc model, classes)`` from a model URI, resolved against glyphlab's store."""
    from glyphlab.tracking import existing_store, quiet_progress_bars

    quiet_progress_bars()
    import mlflow

    from glyphlab.serving import load_glyph_model

    if uri.startswith(("runs:/", "models:/")):  # a local model folder needs no store
        mlflow.set_tracking_uri(existing_store(tracking_uri))
    return load_glyph_model(uri)


def predict(model, files: list[bytes], top_k: int) -> list[dict]:
    """One result per image file: ``{"top": [{"class", "probability"}, ...]}``, the top-k classes,
    most probable first. A position-wise model (``data=digit_sequence``) also gives ``reading``
    (the best class per position, blanks dropped: "42") and ``positions`` (top-k per position);
    its ``top`` is that reading alone, with the product of the positions' probabilities.
    """
    import pandas as pd

    from glyphlab.serving import INPUT_COLUMN

    proba = model.predict(pd.DataFrame({INPUT_COLUMN: files}))
    n_positions = int((model.metadata.metadata or {}).get("n_positions", 1))
    results = []
    for _, row in proba.iterrows():
        if n_positions == 1:
            results.append({"top": _top(row, top_k)})
            continue
        positions = [_top(row[[c for c in row.index if c.startswith(f"{p}:")]].rename(lambda c: c.split(":", 1)[1]),
                          top_k) for p in range(n_positions)]
        reading = "".join(top[0]["class"] for top in positions if top[0]["class"] != BLANK)
        certainty = float(np.prod([top[0]["probability"] for top in positions]))
        results.append({"top": [{"class": reading, "probability": round(certainty, 6)}],
                        "reading": reading, "positions": positions})
    return results


def _top(row, k: int) -> list[dict]:
    best = row.sort_values(ascending=False, kind="stable")[:k]
    return [{"class": str(name), "probability": round(float(p), 6)} for name, p in best.items()]


def readable(name: str) -> str:
    """A readable name for a non-ASCII class (``ᚠ`` → ``fehu feoh``), '' for ASCII ones."""
    from glyphlab.evaluate import readable_name

    return "" if name.isascii() else readable_name(name)


if __name__ == "__main__":
    sys.exit(main())
