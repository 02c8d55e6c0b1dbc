"""IDX reader, the MNIST-family builders and their download, on tiny files written here."""
import functools
import gzip
import hashlib
import http.server
import threading
import zipfile

import numpy as np
import pytest

from glyphlab.data import GlyphSet
from glyphlab.data import idx
from glyphlab.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an unsigned-byte array (what the official files hold)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write(path, array, gz=True):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_part(n_per_class, n_classes, label_offset=0, seed=0):
    """uint8 [n, 28, 28] images whose top-left pixel encodes the label, and uint8 [n] labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(labels)
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[:, 0, 0] = labels * 10 + 5
    return images, (labels + label_offset).astype(np.uint8)


def write_mnist(root, n_train=10, n_test=3, n_classes=10, gz=True, prefix="", label_offset=0):
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for part, n, stem in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images, labels = fake_part(n, n_classes, label_offset, seed=len(stem))
        name = prefix.format(part=part) if prefix else stem
        write(root / f"{name}-images-idx3-ubyte{suffix}", images, gz)
        write(root / f"{name}-labels-idx1-ubyte{suffix}", labels, gz)


# --- read_idx --------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], np.uint8)
    got = idx.read_idx(write(tmp_path / "i.idx", images, gz))
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(idx.read_idx(write(tmp_path / "l.idx", labels, gz)), labels)
    got[0, 0, 0] = 1  # callers may modify what they get


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([[1, -2], [70000, 3]], ">i4")
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + np.asarray(values.shape, ">u4").tobytes() + values.tobytes())
    got = idx.read_idx(path)
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
    (b"", "empty"),
    (b"\x00\x00\x42\x01\x00\x00\x00\x01\x05", "type code"),
    (b"\x00\x00\x08\x03\x00\x00", "dimensions"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2]), "need 3 data bytes, found 2"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "need 1 data bytes, found 2"),
])
def test_read_idx_rejects_bad_files(tmp_path, data, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as e:
        idx.read_idx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8)))[:-20])
    with pytest.raises(DataError, match="cut.gz"):
        idx.read_idx(path)


# --- builders ----------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_keeps_official_test_and_carves_val(tmp_path, gz):
    write_mnist(tmp_path, n_train=10, n_test=3, gz=gz)
    glyphs = idx.mnist(root=str(tmp_path), val_fraction=0.2, seed=0)
    assert isinstance(glyphs, GlyphSet)
    assert glyphs.classes == [str(d) for d in range(10)]
    assert glyphs.images.shape == (130, 28, 28) and glyphs.images.dtype == np.uint8
    assert np.bincount(glyphs.split).tolist() == [80, 20, 30]
    # stratified: every class has 2 val and 3 test images
    for part, n in ((1, 2), (2, 3)):
        assert np.bincount(glyphs.labels[glyphs.split == part], minlength=10).tolist() == [n] * 10
    # labels still match the images (the top-left pixel encodes the label)
    np.testing.assert_array_equal(glyphs.images[:, 0, 0], glyphs.labels * 10 + 5)
    # seeded: same seed same val, other seed other val
    again = idx.mnist(root=str(tmp_path), val_fraction=0.2, seed=0)
    other = idx.mnist(root=str(tmp_path), val_fraction=0.2, seed=1)
    np.testing.assert_array_equal(again.split, glyphs.split)
    assert not np.array_equal(other.split, glyphs.split)


def test_class_names(tmp_path):
    for name in ("fashion_mnist", "kmnist"):
        write_mnist(tmp_path / name, n_train=4, n_test=1)
    fashion = idx.fashion_mnist(root=str(tmp_path / "fashion_mnist"), val_fraction=0.25)
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[-1] == "Ankle boot" and fashion.n_classes == 10
    kana = idx.kmnist(root=str(tmp_path / "kmnist"), val_fraction=0.25)
    assert "".join(kana.classes) == "おきすつなはまやれを"
    assert len(idx.EMNIST_CLASSES["balanced"]) == 47 and len(idx.EMNIST_CLASSES["byclass"]) == 62
    assert idx.EMNIST_CLASSES["balanced"][36:] == list("abdefghnqrt")


def test_resize_and_subset(tmp_path):
    write_mnist(tmp_path, n_train=30, n_test=6)
    glyphs = idx.mnist(root=str(tmp_path), image_size=32, subset=12, val_fraction=0.25)
    assert glyphs.images.shape[1:] == (32, 32)
    train_val = glyphs.labels[glyphs.split < 2]
    test = glyphs.labels[glyphs.split == 2]
    assert np.bincount(train_val).tolist() == [12] * 10  # at most 12 train images per class
    assert np.bincount(test).tolist() == [2] * 10        # test shrunk in the same proportion (12 * 6/30)


def test_emnist_transpose_and_letters_offset(tmp_path):
    rng = np.random.default_rng(0)
    n_classes = 26
    parts = {}
    for part, n in (("train", 4), ("test", 1)):
        labels = np.repeat(np.arange(1, n_classes + 1), n).astype(np.uint8)  # 'letters' counts from 1
        images = np.zeros((len(labels), 28, 28), np.uint8)
        images[:, 0, 5] = 255  # ink at row 0, column 5 in the file: row 5, column 0 once upright
        images[:, 1:, 1:] = rng.integers(0, 50, (len(labels), 27, 27))
        (tmp_path / "gzip").mkdir(exist_ok=True)  # the layout NIST's gzip.zip unpacks to
        write(tmp_path / "gzip" / f"emnist-letters-{part}-images-idx3-ubyte.gz", images)
        write(tmp_path / "gzip" / f"emnist-letters-{part}-labels-idx1-ubyte.gz", labels)
        parts[part] = images
    glyphs = idx.emnist(split="letters", root=str(tmp_path), val_fraction=0.25)
    assert glyphs.classes == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    assert glyphs.labels.min() == 0 and glyphs.labels.max() == 25
    assert glyphs.labels[0] == 0 and glyphs.classes[glyphs.labels[0]] == "A"
    assert (glyphs.images[:, 5, 0] == 255).all() and (glyphs.images[:, 0, 5] == 0).all()
    np.testing.assert_array_equal(glyphs.images[0], parts["train"][0].T)


def test_emnist_rejects_unknown_split_and_labels_out_of_range(tmp_path):
    with pytest.raises(DataError, match="balanced.*got 'letter'"):
        idx.emnist(split="letter", root=str(tmp_path))
    # byclass files (62 labels) read as 'digits' (10 classes)
    write_mnist(tmp_path, n_train=3, n_test=1, n_classes=62, prefix="emnist-digits-{part}")
    with pytest.raises(DataError, match="expected labels 0..9, found 0..61"):
        idx.emnist(split="digits", root=str(tmp_path))


def test_images_and_labels_must_agree(tmp_path):
    write_mnist(tmp_path, n_train=3, n_test=1)
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="expected 10 labels"):
        idx.mnist(root=str(tmp_path))


def test_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError) as e:
        idx.kmnist()
    message = str(e.value)
    assert "\n" not in message
    for needle in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(tmp_path / "cache" / "kmnist"),
                   "data.download=true"):
        assert needle in message


# --- download -----------------------------------------------------------------------------

@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """A directory served over HTTP on 127.0.0.1; yields (directory, base URL)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def md5(path):
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def test_download_lands_in_cache_and_loads(tmp_path, http_dir, monkeypatch):
    served, url = http_dir
    write_mnist(served, n_train=4, n_test=1)
    monkeypatch.setitem(idx.CHECKSUMS, "mnist", {p.name: md5(p) for p in served.iterdir()})
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    glyphs = idx.mnist(download=True, mirror=url, val_fraction=0.25)
    assert len(glyphs) == 50
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(idx.CHECKSUMS["mnist"])
    # files present: no network needed the second time
    assert len(idx.mnist(download=True, mirror="http://127.0.0.1:9/", val_fraction=0.25)) == 50


def test_download_wrong_checksum_fails_clearly(tmp_path, http_dir, monkeypatch):
    served, url = http_dir
    write_mnist(served, n_train=4, n_test=1)
    monkeypatch.setitem(idx.CHECKSUMS, "fashion_mnist", {p.name: "md5:" + "0" * 32 for p in served.iterdir()})
    with pytest.raises(DataError, match=r"download of http://127\.0\.0\.1.*failed.*(?i:hash)") as e:
        idx.fashion_mnist(root=str(tmp_path / "fm"), download=True, mirror=url)
    assert "\n" not in str(e.value)


def test_download_unreachable_host_fails_clearly(tmp_path, http_dir):
    _, url = http_dir
    with pytest.raises(DataError, match="kmnist: download of .*failed"):
        idx.kmnist(root=str(tmp_path / "k"), download=True, mirror=url + "nothing-here/")


def test_emnist_download_unpacks_the_zip(tmp_path, http_dir, monkeypatch):
    served, url = http_dir
    staging = tmp_path / "staging"
    write_mnist(staging, n_train=4, n_test=1, n_classes=10, prefix="emnist-digits-{part}")
    with zipfile.ZipFile(served / "gzip.zip", "w") as z:
        for p in staging.iterdir():
            z.write(p, f"gzip/{p.name}")
    monkeypatch.setitem(idx.CHECKSUMS, "emnist", {"gzip.zip": md5(served / "gzip.zip")})
    root = tmp_path / "emnist"
    glyphs = idx.emnist(split="digits", root=str(root), download=True, mirror=url, val_fraction=0.25)
    assert len(glyphs) == 50 and glyphs.classes == [str(d) for d in range(10)]
    assert (root / "gzip" / "emnist-digits-train-images-idx3-ubyte.gz").is_file()
