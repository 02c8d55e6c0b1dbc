"""The draw page's HTTP server (:mod:`glyphlab.draw`): the standard library's ``ThreadingHTTPServer``
made to hold up on a machine a browser shares with other sites and with bursts of requests.

- a Host allow-list (this machine's names and the bound address; a POST's Origin too): a page from
  elsewhere that rebinds its domain name to 127.0.0.1 (DNS rebinding) is answered 403;
- a listen backlog of :data:`LISTEN_BACKLOG` and at most ``max_handlers`` requests handled at once,
  the rest waiting in the backlog rather than being reset;
- a read timeout: a client that stalls mid-request (or trickles its body) is disconnected; an upload over
  :data:`MAX_UPLOAD_BYTES` is answered 413 from its Content-Length, before its body is read.

``app`` (what is served) has ``page``, ``info``, ``font``, ``get(route) -> dict | None`` (other GET
routes), ``accepts(route) -> bool`` (the POST routes it has) and ``post(route, body, content_type) -> dict``;
a :class:`~glyphlab.errors.GlyphlabError` from ``post`` is answered 400, or its ``http_status``
(413 for :class:`~glyphlab.errors.ImageTooLargeError`).
"""
from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_UPLOAD_BYTES = 8 * 1024 * 1024   # a canvas PNG is tens of KB; anything near this is not a drawing
# A refused upload is still read (and dropped) up to this size, so its sender is done sending and
# reads the 413; past it the connection is closed mid-upload (the sender sees a reset).
MAX_DRAINED_BYTES = 128 * 1024 * 1024
READ_TIMEOUT_S = 10   # a client silent this long mid-request (a stalled upload) is disconnected
BODY_DEADLINE_READS = 6  # a whole body must arrive within this many read timeouts
MAX_HANDLERS = 32     # requests handled at once; the page sends one at a time, a burst waits in the backlog
LISTEN_BACKLOG = 128  # connections the kernel queues while every handler is busy (socketserver's default: 5)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class DrawServer(ThreadingHTTPServer):
    """A thread per request, at most ``max_handlers`` at once, a listen backlog of :data:`LISTEN_BACKLOG`,
    and a Host allow-list: this machine's names and the bound address (a DNS-rebinding page is refused)."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, address, app, read_timeout: float, max_handlers: int):
        self.app, self.read_timeout = app, read_timeout
        self.body_deadline = BODY_DEADLINE_READS * read_timeout  # a body trickled in byte by byte is cut off too
        self.slots = threading.BoundedSemaphore(max_handlers)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        bound = address[0].strip("[]").lower()
        self.any_address = bound in ("", "0.0.0.0", "::")  # listening everywhere: any IP address may be the Host
        self.allowed_hosts = set(LOOPBACK) | ({bound} if not self.any_address else set())
        super().__init__(address, DrawHandler)

    def host_allowed(self, host: str | None) -> bool:
        """Whether a Host (or Origin) names this server: a loopback name, the bound address, or, when
        bound to every address, an IP address (a rebinding page reaches the server under a domain name)."""
        if host is None:
            return False
        if host in self.allowed_hosts:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                return False
        return False

    def process_request(self, request, client_address):
        self.slots.acquire()  # all slots busy: the next connections wait in the backlog
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        # A page closed or reloaded mid-request is not an error worth a traceback on the console.
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset, ConnectionAborted
            return
        super().handle_error(request, client_address)


class DrawHandler(BaseHTTPRequestHandler):
    server_version = "glyphlab-draw"
    server: DrawServer

    def setup(self):
        self.timeout = self.server.read_timeout  # a client that stops sending mid-request is cut off
        super().setup()

    def do_GET(self):
        if not self._host_checked():
            return
        app, route = self.server.app, self.path.split("?", 1)[0]
        if route in ("/", "/index.html"):
            self._send(HTTPStatus.OK, app.page, "text/html; charset=utf-8")
        elif route == "/info":
            self._send(HTTPStatus.OK, app.info, "application/json")
        elif route == "/font" and app.font is not None:
            self._send(HTTPStatus.OK, app.font[1], app.font[0], cache=True)
        elif (answer := app.get(route)) is not None:
            self._send(HTTPStatus.OK, json.dumps(answer, ensure_ascii=False).encode(), "application/json")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {route}")

    def do_POST(self):
        if not self._host_checked(origin=True):
            return
        route = self.path.split("?", 1)[0]
        if not self.server.app.accepts(route):
            self.close_connection = True  # its body is not read
            return self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {self.path}")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self._error(HTTPStatus.LENGTH_REQUIRED, "expected a Content-Length header")
        if not 0 < length <= MAX_UPLOAD_BYTES:  # answered before the body is read, then the body is dropped
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST,
                        f"expected a PNG of 1 byte to {MAX_UPLOAD_BYTES} bytes, got {length}")
            return self._drain(length)
        body = self._read(length)
        if body is None:  # the client hung up, stalled or trickled: no answer, the connection is closed
            self.close_connection = True
            return
        self._answer(route, body)

    def _answer(self, route: str, body: bytes) -> None:
        from glyphlab import errors

        try:
            result = self.server.app.post(route, body, self.headers.get("Content-Type", ""))
        except errors.GlyphlabError as e:  # not an image (400), more pixels than glyphlab decodes (413), ...
            status = getattr(e, "http_status", None) or (
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE if isinstance(e, errors.ImageTooLargeError) else HTTPStatus.BAD_REQUEST)
            return self._error(status, str(e))
        except OSError as e:  # the disk of a collect folder: full, or changed under the server
            self.log_error("%s failed: %r", route, e)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot write the drawing ({e.strerror or e})")
        except Exception as e:  # noqa: BLE001 - the page gets a line, the console the whole story
            self.log_error("prediction failed: %r", e)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                               f"the model failed on this drawing ({type(e).__name__}); see the server's console")
        self._send(HTTPStatus.OK, json.dumps(result, ensure_ascii=False).encode(), "application/json")

    def _host_checked(self, origin: bool = False) -> bool:
        """False, after a 403, when the Host header (or a POST's Origin) names another site than this server."""
        host, sent_origin = self.headers.get("Host"), self.headers.get("Origin") if origin else None
        bad = None
        if host is not None and not self.server.host_allowed(_hostname(host)):
            bad = f"Host {host!r}"
        elif sent_origin is not None and not self.server.host_allowed(_hostname(sent_origin, url=True)):
            bad = f"Origin {sent_origin!r}"
        if bad is None:
            return True
        self.close_connection = True
        self._error(HTTPStatus.FORBIDDEN, f"expected a request to this machine ({', '.join(LOOPBACK)} or the "
                                          f"address it listens on), got {bad}")
        return False

    def _drain(self, length: int) -> None:
        """Read and drop a refused body, so a client that sends it whole reads the answer; one that
        stalls or trickles is dropped as in :meth:`_read`, one that sends over MAX_DRAINED_BYTES cut off."""
        self.wfile.flush()
        self._read(min(max(length, 0), MAX_DRAINED_BYTES), keep=False)

    def _read(self, length: int, keep: bool = True) -> bytes | None:
        """The request's next ``length`` bytes (dropped unless ``keep``); None when the client hung up, sent
        nothing for ``read_timeout`` or has not sent them all within the server's ``body_deadline``."""
        deadline = time.monotonic() + self.server.body_deadline
        parts, left = [], length
        try:
            while left > 0:
                chunk = self.rfile.read1(min(left, 1 << 20))  # what has come, at most one wait of read_timeout
                if not chunk or time.monotonic() > deadline:
                    return None
                left -= len(chunk)
                if keep:
                    parts.append(chunk)
        except (TimeoutError, ConnectionError):
            return None
        return b"".join(parts)

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


def _hostname(value: str, url: bool = False) -> str | None:
    """The host of a Host header (``localhost:8765``, ``[::1]:8765``) or an Origin URL; None if there is none."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(value if url else f"//{value}").hostname
    except ValueError:
        return None
