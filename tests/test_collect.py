"""Collect mode of the draw page (`glyphlab draw --collect DIR`): class names that are not paths, the folder
rules, atomic numbered writes that data=folder reads back (non-ASCII names too), resuming and undo; a
real server on 127.0.0.1 refusing what is no drawing; the command's one-line errors; the command itself
collecting a model's classes, with what the model reads of each drawing, and resuming."""
from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import threading
import unicodedata
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers import RUNES, png_header


def drawing(seed: int = 0, size: int = 64, alpha: bool = True) -> bytes:
    """A canvas-like PNG: a dark bar on transparent (or white) paper, placed by ``seed``."""
    img = np.zeros((size, size, 4), np.uint8) if alpha else np.full((size, size, 4), 255, np.uint8)
    x = 10 + seed % 20
    img[8:-8, x:x + 6] = (0, 0, 0, 255)
    out = io.BytesIO()
    Image.fromarray(img, "RGBA").save(out, format="PNG")
    return out.getvalue()


def collection(tmp_path, classes="ᚠᚢ", per_class=3):
    from glyphlab.collect import Collection

    return Collection(tmp_path / "mine", list(classes), per_class)


@pytest.mark.parametrize("name", ["/", "a/b", "..", ".", "", ".hidden", "a\0b", "a\\b", " a", "a\n",
                                  "x" * 201])
def test_a_class_name_that_is_no_folder_name_is_refused(name):
    from glyphlab.collect import check_class_name
    from glyphlab.errors import ConfigError

    with pytest.raises(ConfigError, match="class names are not paths"):
        check_class_name(name)


def test_drawings_land_numbered_in_class_folders_and_data_folder_reads_them(tmp_path):
    from glyphlab.data.folder import read_folder

    decomposed = unicodedata.normalize("NFD", "é")                      # as macOS would hand it over
    mine = collection(tmp_path, ["ᚠ", "あ", decomposed, "ka"], per_class=2)
    assert mine.classes == ["ᚠ", "あ", "é", "ka"]
    for k in range(4):
        for seed in range(3):
            assert mine.save(k, drawing(seed))["saved"] == f"{mine.classes[k]}/{seed + 1}.png"
    root = tmp_path / "mine"
    assert sorted(os.listdir(root / "ᚠ")) == ["1.png", "2.png", "3.png"]          # no temp file left
    with Image.open(root / "ᚠ" / "1.png") as im:
        assert im.mode == "L" and im.getpixel((0, 0)) == 255                      # gray, transparency on white
    glyphs = read_folder(root, image_size=16, class_order=mine.classes)
    assert glyphs.classes == ["ᚠ", "あ", "é", "ka"] and glyphs.class_counts().tolist() == [3, 3, 3, 3]
    state = mine.state()
    assert [c["count"] for c in state["classes"]] == [3, 3, 3, 3] and state["total"] == 12
    assert state["train"] == f"glyphlab data=folder data.root={root}"


def test_it_resumes_counting_what_is_there_and_never_overwrites(tmp_path):
    root = tmp_path / "mine"
    (root / "ᚠ").mkdir(parents=True)
    for name in ("1.png", "7.png", "scan.jpg"):
        Image.new("L", (8, 8), 255).save(root / "ᚠ" / name)
    (root / "ᚠ" / ".hidden.png").write_bytes(b"")
    mine = collection(tmp_path)
    assert [c["count"] for c in mine.state()["classes"]] == [3, 0]
    assert mine.save(0, drawing())["saved"] == "ᚠ/8.png"                        # after the highest number


def test_two_collectors_on_one_folder_never_write_over_each_other(tmp_path):
    """Two processes' collections of one DIR: each counts what is there, then writes; a number the other
    took meanwhile is passed over, not replaced. Threads stand in for the processes (no shared lock)."""
    from glyphlab.collect import write_new

    folder = tmp_path / "mine" / "ᚠ"
    folder.mkdir(parents=True)
    (folder / "1.png").write_bytes(b"the other collector's drawing")
    assert write_new(folder, 1, b"mine").name == "2.png"                       # 1 was taken since counting
    assert (folder / "1.png").read_bytes() == b"the other collector's drawing"
    ours, theirs = collection(tmp_path), collection(tmp_path)

    def draw(mine, seed):
        for i in range(15):
            mine.save(0, drawing(seed + i))
    workers = [threading.Thread(target=draw, args=(c, s)) for c, s in ((ours, 0), (theirs, 100))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    files = sorted(os.listdir(folder))
    assert len(files) == 2 + 30 and not [f for f in files if f.startswith(".")]
    assert len(ours.saved) == len(theirs.saved) == 15 and not set(ours.saved) & set(theirs.saved)


def test_undo_removes_this_sessions_drawings_newest_first_only(tmp_path):
    from glyphlab.collect import NothingToUndo

    root = tmp_path / "mine"
    (root / "ᚢ").mkdir(parents=True)
    Image.new("L", (8, 8), 255).save(root / "ᚢ" / "1.png")                       # from an earlier session
    mine = collection(tmp_path)
    mine.save(0, drawing(1))
    mine.save(1, drawing(2))
    assert mine.state()["undo"] == "ᚢ/2.png"
    assert mine.undo()["undone"] == "ᚢ/2.png"
    assert mine.undo()["undone"] == "ᚠ/1.png"
    with pytest.raises(NothingToUndo):
        mine.undo()
    assert os.listdir(root / "ᚢ") == ["1.png"] and os.listdir(root / "ᚠ") == []


def test_a_write_that_fails_leaves_neither_the_file_nor_its_temp(tmp_path, monkeypatch):
    mine = collection(tmp_path)

    def broken_link(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "link", broken_link)
    with pytest.raises(OSError):
        mine.save(0, drawing())
    assert os.listdir(tmp_path / "mine" / "ᚠ") == [] and mine.state()["undo"] is None


@pytest.mark.parametrize("body, error", [
    (b"GIF89a not a png", "not a PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a PNG Pillow can decode"),
    (png_header(100_000, 100_000), "refused before decoding"),
    (png_header(4000, 10), "at most 2048 px"),
], ids=["gif", "damaged", "bomb", "wide"])
def test_what_is_no_drawing_is_refused_and_nothing_is_written(tmp_path, body, error):
    from glyphlab.errors import DataError

    mine = collection(tmp_path)
    with pytest.raises(DataError, match=error):
        mine.save(0, body)
    assert not (tmp_path / "mine" / "ᚠ").exists()


def test_a_class_folder_that_is_a_link_or_a_file_is_refused(tmp_path):
    from glyphlab.errors import DataError

    root = tmp_path / "mine"
    root.mkdir()
    (root / "ᚠ").symlink_to(tmp_path)
    with pytest.raises(DataError, match="is a symbolic link"):
        collection(tmp_path)
    (root / "ᚠ").unlink()
    (root / "ᚠ").write_text("")
    with pytest.raises(DataError, match="is a file"):
        collection(tmp_path)


def test_classes_from_a_data_option_or_the_characters():
    from glyphlab.collect import classes_from
    from glyphlab.errors import ConfigError

    assert classes_from("runes") == list(RUNES)
    assert classes_from("ᚠᚢᚠ") == ["ᚠ", "ᚢ"]
    assert classes_from("ka ki ku") == ["ka", "ki", "ku"]
    with pytest.raises(ConfigError, match="only a synthetic data option"):
        classes_from("mnist")
    with pytest.raises(ConfigError, match="go with a data option"):
        classes_from("abc", ["data.charset=x"])
    with pytest.raises(ConfigError, match="class names are not paths"):
        classes_from("ok ../x")


def unwritable(tmp_path):
    if os.geteuid() == 0:   # root writes anywhere a mode allows nothing; not in /proc
        return "/proc/self"
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    return str(folder)


@pytest.mark.parametrize("case", ["file", "unwritable", "slash", "dotdot", "nothing_to_draw", "per_class", "port"])
def test_the_command_says_what_is_wrong_in_one_line(tmp_path, capsys, case):
    from glyphlab.draw import main

    (tmp_path / "file").write_text("")
    argv, expected = {
        "file": (["--collect", str(tmp_path / "file"), "--classes", "ab"], "is a file; expected a folder"),
        "unwritable": (["--collect", unwritable(tmp_path), "--classes", "ab"], "is not a writable folder"),
        "slash": (["--collect", str(tmp_path / "d"), "--classes", "a/b"], "'/' cannot be a folder"),
        "dotdot": (["--collect", str(tmp_path / "d"), "--classes", "ok .."], "'..' cannot be a folder"),
        "nothing_to_draw": (["--collect", str(tmp_path / "d")], "--collect needs the classes to draw"),
        "per_class": (["--collect", str(tmp_path / "d"), "--classes", "ab", "--per-class", "0"], "--per-class"),
        "port": (["--collect", str(tmp_path / "d"), "--classes", "ab", "--port", "99999"],
                 "--port must be from 0 to 65535 (0 picks a free one), got 99999"),
    }[case]
    assert main(["--port", "0", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glyphlab: error: ") and expected in err[0], err
    assert not (tmp_path / "d").exists()                                          # refused before anything is made


@pytest.fixture
def server(tmp_path):
    from glyphlab.draw import make_server

    mine = collection(tmp_path)
    srv = make_server(None, mine.classes, None, "127.0.0.1", 0, read_timeout=2, collection=mine)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, method, path, body=None, headers=None):
    """(status, JSON answer or bytes) of one request to ``srv``."""
    connection = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, (json.loads(data) if answer.getheader("Content-Type") == "application/json" else data)
    finally:
        connection.close()


def files(tmp_path) -> list[str]:
    root = tmp_path / "mine"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_the_server_saves_drawings_and_undoes_them(server, tmp_path):
    status, page = request(server, "GET", "/")
    assert status == 200 and b"Teach glyphlab your hand" in page
    status, state = request(server, "GET", "/collect")
    assert status == 200 and [c["class"] for c in state["classes"]] == ["ᚠ", "ᚢ"] and state["per_class"] == 3
    png = {"Content-Type": "image/png"}
    assert request(server, "POST", "/collect/1", drawing(), png)[1]["saved"] == "ᚢ/1.png"
    assert request(server, "POST", "/collect/0", drawing(), png)[1]["saved"] == "ᚠ/1.png"
    assert files(tmp_path) == ["ᚠ/1.png", "ᚢ/1.png"]
    status, state = request(server, "POST", "/undo", b"{}", {"Content-Type": "application/json"})
    assert status == 200 and state["undone"] == "ᚠ/1.png" and files(tmp_path) == ["ᚢ/1.png"]
    assert request(server, "POST", "/predict", drawing(), png)[0] == 404          # no model, no predictions


@pytest.mark.parametrize("path, body, headers, status", [
    ("/collect/0", b"not a png", {"Content-Type": "image/png"}, 400),
    ("/collect/0", png_header(100_000, 100_000), {"Content-Type": "image/png"}, 413),
    ("/collect/0", drawing(), {"Content-Type": "text/plain"}, 415),               # what a cross-site form sends
    ("/collect/2", drawing(), {"Content-Type": "image/png"}, 400),                # no such class
    ("/collect/..%2f..%2fx", drawing(), {"Content-Type": "image/png"}, 400),
    ("/collect/-1", drawing(), {"Content-Type": "image/png"}, 400),
    ("/collect/0", drawing(), {"Content-Type": "image/png", "Origin": "http://evil.example"}, 403),
    ("/collect/0", drawing(), {"Content-Type": "image/png", "Host": "evil.example"}, 403),
    ("/undo", b"{}", {"Content-Type": "text/plain"}, 415),
    ("/undo", b"{}", {"Content-Type": "application/json"}, 409),                   # nothing saved yet
], ids=["not_png", "bomb", "form_type", "no_class", "path", "negative", "origin", "host", "undo_type", "no_undo"])
def test_the_server_refuses_what_is_no_drawing_and_writes_nothing(server, tmp_path, path, body, headers, status):
    answer_status, answer = request(server, "POST", path, body, headers)
    assert answer_status == status and answer["error"], answer
    assert files(tmp_path) == []


def test_an_upload_over_the_limit_is_refused_from_its_length(server, tmp_path):
    from glyphlab.draw_server import MAX_UPLOAD_BYTES

    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    connection.putrequest("POST", "/collect/0")
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Content-Length", str(MAX_UPLOAD_BYTES + 1))
    connection.endheaders()
    answer = connection.getresponse()                                             # before any body is sent
    assert answer.status == 413
    connection.close()
    assert files(tmp_path) == []


def start_collector(uri: str, args: list[str]):
    """`python -m glyphlab.draw ARGS --port 0` in a process; returns (process, banner line, page URL)."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "glyphlab.draw", *args, "--port", "0"], env=env, text=True,
                            encoding="utf-8", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    while not any(line.startswith("open http://127.0.0.1:") for line in lines):
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"draw exited early: {''.join(lines)} {proc.communicate()[1][-2000:]}")
        lines.append(line)
    return proc, lines[-2].strip(), lines[-1].split()[1]


@pytest.mark.slow
def test_the_command_collects_the_models_classes_and_resumes(model_uri, tmp_path):
    uri, model = model_uri
    root = tmp_path / "mine"
    for there in (0, 1):                                  # a second start counts the drawing of the first
        proc, banner, url = start_collector(uri, ["--collect", str(root), "--model", model])
        try:
            assert banner == f"glyphlab draw: collecting 24 classes, 5 drawings each, into {root} ({there} there already)"
            post = urllib.request.Request(url + "collect/0", data=drawing(there), headers={"Content-Type": "image/png"})
            with urllib.request.urlopen(post, timeout=60) as answer:
                saved = json.loads(answer.read())
            assert saved["saved"] == f"ᚠ/{there + 1}.png" and saved["classes"][0]["count"] == there + 1
            assert len(saved["read"]) == 3 and {"class", "probability", "name"} <= set(saved["read"][0])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert sorted(os.listdir(root / "ᚠ")) == ["1.png", "2.png"]
