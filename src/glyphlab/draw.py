"""A page to draw a glyph and watch a trained model read it, served on this machine.

    glyphlab draw --model runs:/<run id>/model [--port 8765] [--host 127.0.0.1] [--open]

The page (``draw.html``, no build step, no framework) has a canvas for mouse, pen or touch, and
shows the model's top 5 classes as you draw: it POSTs the canvas as a PNG to ``/predict``
(debounced) and gets JSON back. The server is the standard library's ``ThreadingHTTPServer``:
one user, a few small requests a second, nothing else to install. It binds 127.0.0.1 unless
``--host`` says otherwise.

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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

DEFAULT_PORT = 8765
TOP_K = 5
MAX_UPLOAD_BYTES = 8 * 1024 * 1024   # a canvas PNG is tens of KB; anything near this is not a drawing
# A refused upload is still read (and dropped) up to this size, so its sender is done sending and
# reads the 413; past it the connection is closed mid-upload (the sender sees a reset).
MAX_DRAINED_BYTES = 128 * 1024 * 1024
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


def make_server(model, classes: list[str], model_uri: str, host: str = "127.0.0.1",
                port: int = 0) -> ThreadingHTTPServer:
    """A server (not yet serving: call ``serve_forever``) for the pyfunc ``model`` of ``classes``."""
    from glyphlab.evaluate import readable_name
    from glyphlab.predict import check_image

    page = resources.files("glyphlab").joinpath("draw.html").read_bytes()
    font = _font_for(classes)
    info = json.dumps({"model": model_uri, "font": font is not None,
                       "classes": [{"class": c, "name": readable_name(c)} for c in classes]},
                      ensure_ascii=False).encode()
    lock = threading.Lock()  # one prediction at a time: torch threads already use both cores

    class Handler(BaseHTTPRequestHandler):
        server_version = "glyphlab-draw"

        def do_GET(self):
            route = self.path.split("?", 1)[0]
            if route in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif route == "/info":
                self._send(HTTPStatus.OK, info, "application/json")
            elif route == "/font" and font is not None:
                self._send(HTTPStatus.OK, font[1], font[0], cache=True)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {route}")

        def do_POST(self):
            if self.path.split("?", 1)[0] != "/predict":
                return self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {self.path}")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._error(HTTPStatus.LENGTH_REQUIRED, "expected a Content-Length header")
            if not 0 < length <= MAX_UPLOAD_BYTES:
                self._drain(length)
                return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST,
                                   f"expected a PNG of 1 byte to {MAX_UPLOAD_BYTES} bytes, got {length}")
            body = self.rfile.read(length)
            try:
                check_image(body, "the drawing")
                result = predict_drawing(model, body, lock, readable_name)
            except ValueError as e:  # DataError: not an image
                return self._error(HTTPStatus.BAD_REQUEST, str(e))
            except Exception as e:  # noqa: BLE001 - the page gets a line, the console the whole story
                self.log_error("prediction failed: %r", e)
                return self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                                   f"the model failed on this drawing ({type(e).__name__}); see the server's console")
            self._send(HTTPStatus.OK, json.dumps(result, ensure_ascii=False).encode(), "application/json")

        def _drain(self, length: int) -> None:
            """Read and drop a refused body, so the client finishes sending and sees the answer."""
            self.close_connection = True
            left = min(max(length, 0), MAX_DRAINED_BYTES)
            while left > 0 and (chunk := self.rfile.read(min(left, 1 << 20))):
                left -= len(chunk)

        def _send(self, status, body: bytes, content_type: str, cache: bool = False):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=86400" if cache else "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status, message: str):
            self._send(status, json.dumps({"error": message}, ensure_ascii=False).encode(), "application/json")

        def log_message(self, format, *args):  # quiet: one line per stroke update would flood the terminal
            pass

        def log_error(self, format, *args):  # errors do reach the console
            sys.stderr.write(f"glyphlab draw: {format % args}\n")

    server = _Server((host, port), Handler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A page closed or reloaded mid-request is not an error worth a traceback on the console.
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset, ConnectionAborted
            return
        super().handle_error(request, client_address)


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

    from glyphlab.data.fonts import font_for

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
