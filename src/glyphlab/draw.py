"""A page to draw a glyph and watch a trained model read it, served on this machine; or, with
--collect DIR, a page that asks for one character at a time and saves your drawings for training.

    glyphlab draw --model runs:/<run id>/model [--port 8765] [--host 127.0.0.1] [--open]
    glyphlab draw --collect ~/my_runes --classes runes --per-class 5    # then: glyphlab data=folder data.root=~/my_runes

The page (``draw.html``, no build step, no framework) has a canvas for mouse, pen or touch, and
shows the model's top 5 classes as you draw: it POSTs the canvas as a PNG to ``/predict``
(debounced) and gets JSON back. The server (:mod:`glyphlab.draw_server`) is the standard library's
``ThreadingHTTPServer`` with a cap on requests handled at once, a real listen backlog, read timeouts,
an upload size limit and a Host allow-list: it binds 127.0.0.1 unless ``--host`` says otherwise.

Routes: ``GET /`` the page, ``GET /info`` the model and its classes, ``GET /font`` a font that
has every class character (when this machine has one; the page falls back to the browser's
fonts and shows readable names beside the characters), ``POST /predict`` PNG in, JSON out.
Collect mode (``collect.html``, :mod:`glyphlab.collect`): ``GET /collect`` the classes and their
counts, ``POST /collect/<class number>`` a drawing (image/png) saved as ``DIR/<class>/<n>.png``,
``POST /undo`` (application/json) removes the last one saved.
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
MAX_PORT = 65535
DEFAULT_PER_CLASS = 5
TOP_K = 5
FONT_TYPES = {".ttf": "font/ttf", ".otf": "font/otf", ".ttc": "font/collection"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glyphlab draw", description=__doc__.split("\n\n")[0],
                                epilog="examples:\n" + __doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="runs:/<run id>/model, models:/<name>/<version> or a local model folder "
                                   "(with --collect: optional, the classes to draw and what it reads of each)")
    p.add_argument("--collect", metavar="DIR", help="save each drawing as DIR/<class>/<n>.png, the layout "
                                                    "data=folder reads (DIR is created when missing)")
    p.add_argument("--classes", metavar="OPTION|CHARS",
                   help="with --collect: a synthetic data option (runes, kana, latin, greek, digits_synth, script; "
                        "its keys follow as OVERRIDES) or the characters ('ᚠᚢᚦ', or names with spaces "
                        "'ka ki ku'); default: the model's classes")
    p.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS, metavar="N",
                   help=f"with --collect: drawings wanted of each class (default {DEFAULT_PER_CLASS})")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDES", help="with --classes OPTION: its keys, e.g. "
                                                                     "data.charset=katakana")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one")
    p.add_argument("--tracking-uri", help="MLflow store of runs:/ and models:/ URIs "
                                          "(default: $MLFLOW_TRACKING_URI, else <repo>/mlruns/mlflow.db)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 0 <= args.port <= MAX_PORT:  # else socket.bind's OverflowError, a traceback
        print(f"glyphlab: error: --port must be from 0 to {MAX_PORT} (0 picks a free one), got {args.port}",
              file=sys.stderr)
        return 2
    from glyphlab.errors import GlyphlabError

    try:
        model, classes, collection = _what_to_serve(args)
    except GlyphlabError as e:
        print(f"glyphlab: error: {e}", file=sys.stderr)
        return 2
    try:
        server = make_server(model, classes, args.model, args.host, args.port, collection=collection)
    except OSError as e:
        print(f"glyphlab: error: cannot listen on {args.host}:{args.port} ({e.strerror}); "
              f"try another --port (0 picks a free one)", file=sys.stderr)
        return 2
    url = f"http://{_url_host(args.host)}:{server.server_address[1]}/"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        saves = f" and save drawings into {collection.root}" if collection else ""
        print(f"glyphlab: warning: listening on {args.host}: anyone who can reach this machine can use the page{saves}",
              file=sys.stderr)
    if collection:
        print(f"glyphlab draw: collecting {len(classes)} classes, {collection.per_class} drawings each, into "
              f"{collection.root} ({collection.state()['total']} there already)")
    else:
        print(f"glyphlab draw: {len(classes)} classes from {args.model}")
    print(f"open {url}  (Ctrl-C stops)", flush=True)
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


def _what_to_serve(args):
    """``(model or None, classes, Collection or None)`` from the command line; a GlyphlabError when unusable."""
    from glyphlab.errors import ConfigError

    if args.collect is None:
        if args.classes or args.overrides or args.per_class != DEFAULT_PER_CLASS:
            raise ConfigError("--classes, --per-class and overrides go with --collect DIR")
        if not args.model:
            raise ConfigError("--model is required: runs:/<run id>/model, models:/... or a model folder")
    elif not (args.model or args.classes):
        raise ConfigError("--collect needs the classes to draw: --classes runes (a data option), "
                          "--classes 'ᚠᚢᚦ' (the characters) or --model URI (its classes)")
    model = classes = None
    if args.model:
        from glyphlab.predict import load_model

        model, classes = load_model(args.model, args.tracking_uri)
    if args.collect is None:
        return model, classes, None
    from glyphlab.collect import Collection, classes_from

    if args.classes:
        classes = classes_from(args.classes, args.overrides)
    elif args.overrides:
        raise ConfigError(f"overrides ({' '.join(args.overrides)}) go with --classes OPTION")
    elif int((model.metadata.metadata or {}).get("n_positions", 1)) > 1:
        raise ConfigError(f"{args.model} reads digit sequences; collect single characters with --classes 0123456789")
    collection = Collection(args.collect, classes, args.per_class)
    return model, collection.classes, collection


def make_server(model, classes: list[str], model_uri: str | None, host: str = "127.0.0.1", port: int = 0,
                read_timeout: float = READ_TIMEOUT_S, max_handlers: int = MAX_HANDLERS,
                collection=None) -> DrawServer:
    """A server (not yet serving: call ``serve_forever``) for the pyfunc ``model`` of ``classes``;
    with a :class:`~glyphlab.collect.Collection`, the collect page (``model`` may then be None).

    ``read_timeout``: seconds a client may keep the server waiting for the next bytes of its request;
    ``max_handlers``: requests handled at once (more wait in the listen backlog, they are not refused).
    """
    return DrawServer((host, port), _App(model, classes, model_uri, collection), read_timeout, max_handlers)


class _App:
    """What the server serves: the page, the model's classes (``/info``), a font for them, the model,
    and in collect mode the collection."""

    def __init__(self, model, classes: list[str], model_uri: str | None, collection=None):
        from glyphlab.evaluate import readable_name

        self.model, self.name_of, self.collection = model, readable_name, collection
        page = "collect.html" if collection is not None else "draw.html"
        self.page = resources.files("glyphlab").joinpath(page).read_bytes()
        self.font = _font_for(classes)
        self.info = json.dumps({"model": model_uri, "font": self.font is not None, "collect": collection is not None,
                                "classes": [{"class": c, "name": readable_name(c)} for c in classes]},
                               ensure_ascii=False).encode()
        self.lock = threading.Lock()  # one prediction at a time: torch threads already use both cores

    def get(self, route: str) -> dict | None:
        return self.collection.state() if route == "/collect" and self.collection is not None else None

    def accepts(self, route: str) -> bool:
        if route == "/predict":
            return self.model is not None
        return self.collection is not None and (route == "/undo" or route.startswith("/collect/"))

    def post(self, route: str, body: bytes, content_type: str) -> dict:
        """The answer to a POST to a route :meth:`accepts`; a GlyphlabError for a refused body."""
        from glyphlab.collect import NotAPngUpload

        kind = content_type.split(";")[0].strip().lower()
        if route == "/predict":
            return self.predict(body)
        if route == "/undo":  # JSON only: a cross-site form cannot send it without the browser asking first
            if kind != "application/json":
                raise NotAPngUpload(f"expected Content-Type application/json for /undo, got {kind or 'none'!r}")
            return self.collection.undo()
        if kind != "image/png":
            raise NotAPngUpload(f"expected the drawing as Content-Type image/png, got {kind or 'none'!r}")
        number = route.removeprefix("/collect/")
        answer = self.collection.save(int(number) if number.isdecimal() else number, body)
        if self.model is not None:  # what the model reads of it, so the page can say which ones it gets wrong
            answer["read"] = self.predict(body)["top"][:3]
        return answer

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
