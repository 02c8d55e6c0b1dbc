"""predict and the draw server with bad input: one line (or one JSON error) naming the input, never a traceback."""
from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest
from PIL import Image

from helpers import glyph_png

pytestmark = pytest.mark.slow  # a tiny model trained for the module, predict and the draw server


def predict_line(args, capsys):
    from glyphlab.predict import main

    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


@pytest.mark.parametrize("pixels", [(9000, 9000), (15000, 15000)], ids=["over glyphlab's limit", "over Pillow's"])
def test_predict_names_a_decompression_bomb_as_such(model_uri, tmp_path, capsys, pixels):
    bomb = tmp_path / "bomb.png"
    Image.new("1", pixels).save(bomb)  # a few KB on disk
    code, last = predict_line([bomb, "--model", model_uri[1], "--tracking-uri", model_uri[0]], capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: {bomb}") and "decompression bomb" in last, last


def test_predict_names_a_truncated_image_by_its_path(model_uri, tmp_path, capsys):
    good = glyph_png(tmp_path / "good.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-30])  # the header is whole, the pixels are not
    code, last = predict_line([good, cut, "--model", model_uri[1], "--tracking-uri", model_uri[0]], capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: {cut}: Pillow cannot decode it"), last


def test_predict_never_creates_a_store(model_uri, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "mlflow.db"
    code, last = predict_line([glyph_png(tmp_path / "g.png"), "--model", model_uri[1],
                               "--tracking-uri", f"sqlite:///{missing}"], capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: no MLflow store at sqlite:///{missing}"), last
    assert not missing.exists() and not missing.parent.exists()


@pytest.fixture(scope="module")
def server(model_uri):
    from glyphlab.draw import make_server
    from glyphlab.predict import load_model

    model, classes = load_model(model_uri[1], model_uri[0])
    srv = make_server(model, classes, model_uri[1])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url, body: bytes):
    request = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_draw_server_answers_bad_uploads_with_a_clean_json_error(server, tmp_path):
    _, url = server
    status, answer = post(url, b"not a png")
    assert status == 400 and answer["error"] == "the drawing is not an image Pillow can read; expected PNG, JPEG, BMP, ..."
    status, answer = post(url, glyph_png(tmp_path / "g.png").read_bytes()[:-30])
    assert status == 400 and answer["error"].startswith("the drawing: Pillow cannot decode it")
    assert "object at 0x" not in json.dumps(answer)
    status, answer = post(url, b"\0" * (50 * 1024 * 1024))  # sent whole, then refused: the sender reads the 413
    assert status == 413 and "got 52428800" in answer["error"]
    status, answer = post(url, glyph_png(tmp_path / "g.png").read_bytes())  # and the server still serves
    assert status == 200 and len(answer["top"]) == 5


def test_draw_server_keeps_quiet_about_clients_that_leave(server, capfd):
    srv, url = server
    for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
        try:
            raise error
        except ConnectionError:
            srv.handle_error(None, ("127.0.0.1", 1))
    assert capfd.readouterr().err == ""
    try:
        raise RuntimeError("a real bug")
    except RuntimeError:
        srv.handle_error(None, ("127.0.0.1", 1))
    assert "RuntimeError: a real bug" in capfd.readouterr().err  # other errors still show
    # A real client that hangs up before the answer: the server goes on.
    with socket.create_connection(srv.server_address) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close with a reset
    with urllib.request.urlopen(url + "/info", timeout=30) as r:
        assert r.status == 200
    assert "Traceback" not in capfd.readouterr().err
