"""A page to draw a glyph and watch a trained model read it, served on this machine.

    glyphlab draw --model runs:/<run id>/model [--port 8765] [--host 127.0.0.1] [--open]

The page (``draw.html``, no build step, no framework) has a canvas for mouse, pen or touch, and
shows the model's top 5 classes as you draw: it POSTs the canvas as a PNG to ``/predict``
(debounced) and gets JSON back. The server (:mod:`glyphlab.draw_server`) is the standard library's
``ThreadingHTTPServer`` with a cap on requests handled at once, a real listen backlog, read timeouts,
an upload size limit and a Host allow-list: it binds 127.0.0.1 unless ``--host`` says otherwise.

Routes: ``GET /`` the page, ``GET /info`` the model and its classes, ``GET /font`` a font that
has every class character (when this machine has one; the page falls back to the browser's
fonts and shows readable names beside the characters), ``POST /predict`` PNG in, JSON out.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from importlib import resources

from glyphlab.draw_server import MAX_HANDLERS, READ_TIMEOUT_S, DrawServer

DEFAULT_PORT = 8765
TOP_K = 5
FONT_TYPES = {".ttf": "font/ttf", ".otf": "font/otf", ".ttc": "font/collection"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glyphlab draw", description=__doc__.split("\n\n")[0],
                                     epilog="example:\n" + __doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="runs:/<run id>/model, models:/<name>/<version> or a local model folder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one")
    parser.add_argument("--tracking-uri", help="MLflow store of runs:/ and models:/ URIs "
                                               "(default: $MLFLOW_TRACKING_URI, else <repo>/mlruns/mlflow.db)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    args = parser.parse_args(argv)

    from glyphlab.errors import GlyphlabError
    from glyphlab.predict import load_model

    try:
        model, classes = load_model(args.model, args.tracking_uri)
    except GlyphlabError as e:
        print(f"glyphlab: error: {e}", file=sys.stderr)
        return 2
    try:
        server = make_server(model, classes, args.model, args.host, args.port)
    except OSError as e:
        print(f"glyphlab: error: cannot listen on {args.host}:{args.port} ({e.strerror}); "
              f"try another --port (0 picks a free one)", file=sys.stderr)
        return 2
    url = f"http://{_url_host(args.host)}:{server.server_address[1]}/"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"glyphlab: warning: listening on {args.host}: anyone who can reach this machine can use the page",
              file=sys.stderr)
    print(f"glyphlab draw: {len(classes)} classes from {args.model}\nopen {url}  (Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def make_server(model, classes: list[str], model_uri: str, host: str = "127.0.0.1", port: int = 0,
                read_timeout: float = READ_TIMEOUT_S, max_handlers: int = MAX_HANDLERS) -> DrawServer:
    """A server (not yet serving: call ``serve_forever``) for the pyfunc ``model`` of ``classes``.

    ``read_timeout``: seconds a client may keep the server waiting for the next bytes of its request;
    ``max_handlers``: requests handled at once (more wait in the listen backlog, they are not refused).
    """
    return DrawServer((host, port), _App(model, classes, model_uri), read_timeout, max_handlers)


class _App:
    """What the server serves: the page, the model's classes (``/info``), a font for them, the model."""

    def __init__(self, model, classes: list[str], model_uri: str):
        from glyphlab.evaluate import readable_name

        self.model, self.name_of = model, readable_name
        self.page = resources.files("glyphlab").joinpath("draw.html").read_bytes()
        self.font = _font_for(classes)
        self.info = json.dumps({"model": model_uri, "font": self.font is not None,
                                "classes": [{"class": c, "name": readable_name(c)} for c in classes]},
                               ensure_ascii=False).encode()
        self.lock = threading.Lock()  # one prediction at a time: torch threads already use both cores

    def predict(self, png: bytes) -> dict:
        """The answer for one upload; a GlyphlabError when it is not an image glyphlab reads."""
        from glyphlab.predict import check_image

        check_image(png, "the drawing")
        return predict_drawing(self.model, png, self.lock, self.name_of)


def predict_drawing(model, png: bytes, lock: threading.Lock, name_of) -> dict:
    """The page's answer for one canvas PNG: top-k classes, the image as the model sees it, the time."""
    from glyphlab.predict import predict
    from glyphlab.serving import encode_png, model_view

    meta = model.metadata.metadata or {}
    # What the model sees, from the model's own preprocessing; raises DataError on a non-image.
    seen = model_view(png, meta, where="drawing") if "image_size" in meta else None
    started = time.perf_counter()
    with lock:
        top = predict(model, [png], TOP_K)[0]["top"]
    return {"top": [{**guess, "name": name_of(guess["class"])} for guess in top],
            "seen": None if seen is None else "data:image/png;base64," + base64.b64encode(encode_png(seen)).decode(),
            "ms": round(1000 * (time.perf_counter() - started), 1)}


def _font_for(classes: list[str]):
    """``(content type, bytes)`` of a font file covering every class, or None."""
    from pathlib import Path

    from glyphlab.data.font_images import font_for

    if all(c.isascii() for c in classes):  # every browser has these
        return None
    path = font_for(classes)
    if path is None or Path(path).suffix.lower() not in FONT_TYPES:
        return None
    return FONT_TYPES[Path(path).suffix.lower()], Path(path).read_bytes()


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    sys.exit(main())
