"""The draw server under load and abuse, a real server on 127.0.0.1: a burst of 50 POSTs all answered, a
foreign Host or Origin (DNS rebinding) refused, a stalled upload cut off, an oversize upload refused from
its headers, an image that claims too many pixels refused before decoding."""
from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time

import pytest
from PIL import Image

from helpers import glyph_png

pytestmark = pytest.mark.slow  # a real draw server under load, on a model trained for the module


READ_TIMEOUT_S = 1.5  # the server's, short so a stalled client is dropped quickly


@pytest.fixture(scope="module")
def server(model_uri):
    from glyphlab.draw import make_server
    from glyphlab.predict import load_model

    model, classes = load_model(model_uri[1], model_uri[0])
    srv = make_server(model, classes, model_uri[1], read_timeout=READ_TIMEOUT_S)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    return glyph_png(tmp_path_factory.mktemp("png") / "g.png").read_bytes()


def request(srv, method, path, body=None, headers=None, timeout=30):
    """(status, JSON answer) of one request; ``headers`` may replace Host."""
    connection = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host="Host" in (headers or {}))
        for key, value in {**(headers or {}), **({"Content-Length": str(len(body))} if body is not None else {})}.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, (json.loads(data) if answer.getheader("Content-Type") == "application/json" else data)
    finally:
        connection.close()


def test_fifty_concurrent_posts_are_all_answered(server, png):
    start = threading.Barrier(50)
    results = [None] * 50

    def post(k):
        start.wait()
        try:
            results[k] = request(server, "POST", "/predict", png, {"Content-Type": "image/png"}, timeout=60)[0]
        except OSError as e:  # a reset or a refused connection
            results[k] = repr(e)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert results == [200] * 50, [r for r in results if r != 200][:5]
    assert server.request_queue_size >= 128  # the listen backlog a burst waits in


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_this_machines_names_are_served(server, host):
    status, answer = request(server, "GET", "/info", headers={"Host": f"{host}:{server.server_address[1]}"})
    assert status == 200 and "classes" in answer


@pytest.mark.parametrize("headers", [{"Host": "evil.example:8765"}, {"Host": "glyphlab.attacker.test"},
                                     {"Host": "127.0.0.1.evil.example"}])
def test_a_foreign_host_is_refused(server, headers, png):
    for method, body in (("GET", None), ("POST", png)):
        status, answer = request(server, method, "/info" if method == "GET" else "/predict", body, headers)
        assert status == 403 and headers["Host"] in answer["error"], (method, status, answer)


def test_a_post_from_a_foreign_origin_is_refused(server, png):
    host = {"Host": f"127.0.0.1:{server.server_address[1]}"}
    status, answer = request(server, "POST", "/predict", png, {**host, "Origin": "http://evil.example"})
    assert status == 403 and "evil.example" in answer["error"]
    status, _ = request(server, "POST", "/predict", png, {**host, "Origin": f"http://localhost:{server.server_address[1]}"})
    assert status == 200


def raw(srv, head: bytes, timeout: float):
    s = socket.create_connection(srv.server_address, timeout=timeout)
    s.sendall(head)
    return s


def test_a_stalled_upload_is_cut_off_after_the_read_timeout(server):
    s = raw(server, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                    b"Content-Length: 5000\r\n\r\n\x89PNG", timeout=READ_TIMEOUT_S + 10)
    started = time.monotonic()
    with s:
        while s.recv(65536):  # whatever comes, until the server closes the connection
            pass
    assert time.monotonic() - started < READ_TIMEOUT_S + 5


def test_a_stalled_request_head_is_cut_off_too(server):
    started = time.monotonic()
    with raw(server, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=READ_TIMEOUT_S + 10) as s:
        while s.recv(65536):
            pass
    assert time.monotonic() - started < READ_TIMEOUT_S + 5


def test_a_huge_content_length_is_refused_before_its_body(server):
    with raw(server, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 209715200\r\n\r\n", timeout=READ_TIMEOUT_S / 2) as s:
        answer = b""
        while not answer.endswith(b"}"):  # at once, not after a body that never comes nor after the read timeout
            answer += s.recv(65536)
    assert answer.startswith(b"HTTP/1.0 413") or answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"got 209715200" in answer


def test_an_image_claiming_too_many_pixels_is_refused(server, png):
    from glyphlab import errors

    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")  # a few KB that would decode to 81 Mpx
    status, answer = request(server, "POST", "/predict", buffer.getvalue(), {"Content-Type": "image/png"})
    assert status == (413 if hasattr(errors, "ImageTooLargeError") else 400), (status, answer)
    assert "pixels" in answer["error"]
    assert request(server, "POST", "/predict", png, {"Content-Type": "image/png"})[0] == 200  # and it goes on


def test_predict_skips_a_file_that_is_no_image_and_reads_the_rest(model_uri, tmp_path, capsys):
    from glyphlab.predict import main

    good = glyph_png(tmp_path / "good.png")
    other = glyph_png(tmp_path / "other.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "folder.png").mkdir()
    args = [good, tmp_path / "notes.txt", other, tmp_path / "folder.png", tmp_path / "missing.png"]
    code = main([str(a) for a in [*args, "--model", model_uri[1], "--tracking-uri", model_uri[0]]])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("glyphlab: error: ") for line in lines), err
    for line, name, why in zip(lines, ["notes.txt", "folder.png", "missing.png"],
                               ["is not an image", "is a folder", "no such file"]):
        assert str(tmp_path / name) in line and why in line and line.endswith("(skipped)"), line
    printed = [line for line in out.splitlines() if not line.startswith(" ")]
    assert printed == [str(good), str(other)], out  # both images read, in order

    code = main([str(a) for a in [good, tmp_path / "notes.txt", "--json", "--model", model_uri[1],
                                   "--tracking-uri", model_uri[0]]])
    answer = json.loads(capsys.readouterr().out)
    assert code == 2 and len(answer[0]["top"]) == 5
    assert answer[1]["image"] == str(tmp_path / "notes.txt") and "is not an image" in answer[1]["error"]


def test_a_trickled_upload_is_cut_off_after_the_body_deadline(server):
    """A byte every half second never trips the read timeout; the whole body's deadline ends it."""
    s = raw(server, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                    b"Content-Length: 5000\r\n\r\n", timeout=0.5)
    deadline = getattr(server, "body_deadline", 6 * READ_TIMEOUT_S)
    started = time.monotonic()
    closed = False
    with s:
        while not closed and time.monotonic() - started < deadline + 10:
            try:
                s.sendall(b"\0")
                closed = s.recv(65536) == b""
            except socket.timeout:
                continue
            except OSError:  # reset: closed too
                closed = True
    assert closed and time.monotonic() - started < deadline + 5


def test_predict_skips_an_image_the_models_reader_refuses_and_reads_the_rest(model_uri, tmp_path, capsys,
                                                                            monkeypatch):
    """A file that looks whole but that the model's own reader refuses: that one is skipped, not the batch."""
    from glyphlab import serving
    from glyphlab.errors import DataError
    from glyphlab.predict import main

    good, odd = glyph_png(tmp_path / "good.png"), tmp_path / "odd.png"
    Image.new("L", (30, 20), 200).save(odd)
    decode = serving.decode

    def picky(data, *args, **kwargs):
        if bytes(data) == odd.read_bytes():
            raise DataError(f"{kwargs.get('where', 'image')}: cannot read it as an image (picky)")
        return decode(data, *args, **kwargs)

    monkeypatch.setattr(serving, "decode", picky)
    code = main([str(good), str(odd), "--model", model_uri[1], "--tracking-uri", model_uri[0]])
    out, err = capsys.readouterr()
    assert code == 2 and out.splitlines()[0] == str(good), out
    (line,) = err.strip().splitlines()
    assert line.startswith(f"glyphlab: error: {odd}: ") and "picky" in line and line.endswith("(skipped)"), line
