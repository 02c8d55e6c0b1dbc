"""The data cache never hands back different data (every flipped bit is caught) and a killed write's
temp file does not stay: issue 26, items 2 and 7."""
from __future__ import annotations

import io
import logging
import subprocess
import struct
import sys
import time
import zipfile

import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import ROOT, compose

from glyphlab import data as datasets
from glyphlab.data import GlyphSet


def tiny_set() -> GlyphSet:
    """Big enough (12 KB of pixels) that numpy's reader stops short of a member's end, as for a real set."""
    rng = np.random.default_rng(0)
    return GlyphSet(rng.integers(0, 256, (48, 16, 16), dtype=np.uint8), np.arange(48) % 3, ["a", "ᚠ", "c"],
                    (np.arange(48) % 3).astype(np.int8), {"note": "x"})


def same(a: GlyphSet, b: GlyphSet) -> bool:
    return (a.images.dtype == b.images.dtype and np.array_equal(a.images, b.images) and
            a.images.shape == b.images.shape and np.array_equal(a.labels, b.labels) and a.classes == b.classes and
            np.array_equal(a.split, b.split) and a.meta == b.meta)


def regions(blob: bytes) -> tuple[set, set]:
    """(offsets of the npy headers, offsets of the array data) of an npz file; the rest is zip structure."""
    headers, data = set(), set()
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        for info in z.infolist():
            name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            (header_len,) = struct.unpack("<H", blob[start + 8:start + 10])  # npy format 1.0
            headers.update(range(start, start + 10 + header_len))
            data.update(range(start + 10 + header_len, start + info.compress_size))
    return headers, data


def test_no_single_flipped_bit_loads_different_data(tmp_path):
    """A deterministic fuzz of one-bit flips over a real cache file: every zip-structure byte (one bit
    each), bits 0-3 of every npy header byte (where a digit of a shape turns into another digit) and
    a sample of the array bytes. Each damaged file either reads back identical or is refused."""
    original = tiny_set()
    path = tmp_path / "set-0123.npz"
    datasets._write(path, original)
    blob = path.read_bytes()
    headers, data = regions(blob)
    flips = {(i, i % 8) for i in range(len(blob)) if i not in data}
    flips |= {(i, bit) for i in headers for bit in range(4)} | {(i, i // 16 % 8) for i in sorted(data)[::16]}
    silently_different, refused = [], 0
    started = time.perf_counter()
    for i, bit in sorted(flips):
        flipped = bytearray(blob)
        flipped[i] ^= 1 << bit
        try:
            loaded = datasets._read(io.BytesIO(flipped))  # as from the file, without writing thousands of files
        except Exception:  # noqa: BLE001 - any refusal makes the loader rebuild
            refused += 1
            continue
        if not same(loaded, original):
            silently_different.append((i, bit))
    assert silently_different == [], f"{len(silently_different)} of {len(flips)} flips loaded other data"
    assert len(flips) // 2 < refused < len(flips)  # flips of what nobody reads (a timestamp) load as before
    assert time.perf_counter() - started < 20


def damage_the_shape(path) -> None:
    """The issue's case: one bit of the images' header makes their height 16 → 14 (a valid npy still)."""
    blob = path.read_bytes()
    start = blob.index(b"'shape': (")
    n = blob.index(b", 16,", start) + 2
    path.write_bytes(blob[:n] + b"14" + blob[n + 2:])


def runes_cfg():
    return OmegaConf.to_container(compose(["data.samples_per_class=12", "data.image_size=16"]).data, resolve=True)


def test_a_cache_file_copied_over_another_sets_is_not_read_as_it(tmp_path, caplog):
    cfg, other = runes_cfg(), OmegaConf.to_container(
        compose(["data.samples_per_class=12", "data.image_size=16", "seed=1"]).data, resolve=True)
    fresh = datasets.load(cfg, tmp_path)
    datasets.load(other, tmp_path)
    path = datasets.cache_path(cfg, tmp_path)
    path.write_bytes(datasets.cache_path(other, tmp_path).read_bytes())  # whole and valid, but seed 1's images
    with caplog.at_level(logging.WARNING):
        assert same(datasets.load(cfg, tmp_path), fresh)
    assert any("another data set's cache file" in r.getMessage() for r in caplog.records)


def test_a_damaged_cache_file_is_rebuilt_with_one_warning_and_replaced(tmp_path, caplog):
    cfg = runes_cfg()
    fresh = datasets.load(cfg, tmp_path)
    path = datasets.cache_path(cfg, tmp_path)
    damage_the_shape(path)
    with caplog.at_level(logging.WARNING):
        again = datasets.load(cfg, tmp_path)
    assert same(again, fresh) and len(again) == 24 * 12
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and str(path) in warnings[0], warnings
    assert same(datasets._read(path), fresh)  # the rebuilt file is in place and verifies
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file beside it


WRITER = """
import os, signal, sys, time
from pathlib import Path
import numpy as np
from glyphlab import data as datasets

def savez(f, **arrays):  # half the file, then the process dies (SIGKILL, the OOM killer) or stalls
    f.write(b"PK" + b"x" * 1000)
    f.flush()
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(300)

np.savez = savez
datasets._write(Path(sys.argv[1]), datasets.GlyphSet(np.zeros((2, 8, 8), np.uint8), np.array([0, 1]), ["a", "b"]))
"""


@pytest.mark.slow
def test_the_temp_file_of_a_killed_cache_write_is_removed_and_a_live_ones_kept(tmp_path):
    cfg = runes_cfg()
    path = datasets.cache_path(cfg, tmp_path)
    live = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "stall"], cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not list(tmp_path.glob("*.tmp")) and time.time() < deadline:
            time.sleep(0.05)
        (writing,) = tmp_path.glob("*.tmp")  # a write in progress, in another process
        killed = subprocess.run([sys.executable, "-c", WRITER, str(path), "die"], cwd=ROOT, capture_output=True)
        assert killed.returncode == -9, killed.stderr
        (leftover,) = set(tmp_path.glob("*.tmp")) - {writing}  # a real leftover, named as the real writer names it
        assert leftover.name.startswith(path.name) and not path.exists()
        old_style = tmp_path / f"{path.name}k3j2h1g0.tmp"  # an older glyphlab's name: no writer in it, none holds it
        old_style.write_bytes(b"partial")

        glyphs = datasets.load(cfg, tmp_path)  # builds and writes the set: the dead writers' files go
        assert len(glyphs) == 24 * 12 and path.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, writing.name])  # the live one stays

        leftover.write_bytes(b"partial")  # a reader of the cache cleans too, not only a writer
        datasets.load(cfg, tmp_path)
        assert not leftover.exists() and writing.exists()
    finally:
        live.kill()
        live.wait()
    datasets.load(cfg, tmp_path)  # its writer killed: gone too
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
