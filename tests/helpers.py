"""What several test files share: tiny override lists, the command line, a real run, stores and waits.

Test files import from here (``from helpers import TINY, cli``), never from each other or from
conftest.py, which holds the fixtures only.
"""
from __future__ import annotations

import functools
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def scratch() -> Path:
    """This process's working folder for the runs it starts: Hydra writes outputs/ and multirun/ under the
    working folder, and a test run must leave nothing in the checkout. Removed when the process ends."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="glyphlab-test-cwd-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


# Small enough to train in seconds, big enough that a model learns something.
TINY = ["data.samples_per_class=24", "data.image_size=16", "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false"]
TINY_SKLEARN = ["data.samples_per_class=24", "data.image_size=16", "model.max_epochs=3"]
# Valid for every model family at once (++ adds the key where a family lacks it; it is then unused).
TINY_ANY = ["data.samples_per_class=12", "data.image_size=16", "trainer.max_epochs=1", "++model.batch_size=64",
            "++model.max_epochs=2", "trainer.enable_progress_bar=false", "tracking.log_model=false"]
# A two-job sklearn sweep (seed=0,1) that logs no models.
TINY_SKLEARN_SWEEP = ["model=sklearn_mlp", "seed=0,1", "data.samples_per_class=12", "data.image_size=16",
                      "model.max_epochs=2", "tracking.log_model=false"]

RUNES = "ᚠᚢᚦᚫᚱᚲᚷᚹᚺᚾᛁᛃᛇᛈᛉᛋᛏᛒᛖᛗᛚᛜᛞᛟ"


def compose(overrides=(), hydra=False):
    """The config `python run.py <overrides>` would get (real Hydra composition); ``hydra=True``: with
    its ``hydra`` node (sweeper, launcher)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def cli(*args, cwd=None, env=None, timeout=600):
    """Run `python run.py ARGS` in a subprocess; returns the CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd or scratch(), env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def main_exit(overrides, capsys):
    """Run glyphlab.experiment.main in-process; returns (exit code, last stderr line)."""
    from glyphlab.experiment import main

    with pytest.raises(SystemExit) as info:
        main(compose(overrides))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return info.value.code, lines[-1]


_EMPTY_STORE: list[Path] = []


def new_store(db: Path) -> str:
    """A copy of an empty, fully migrated MLflow SQLite store at ``db`` (its folder made); returns its URI.
    MLflow's creation of a store (its tables, then its migrations) costs seconds; it is made once per
    process, in a temp folder of its own, and copied for every store a test does not need to see created."""
    import atexit
    import shutil
    import tempfile

    from mlflow.tracking import MlflowClient

    if not _EMPTY_STORE:
        folder = tempfile.mkdtemp(prefix="glyphlab-empty-store-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        MlflowClient(f"sqlite:///{folder}/mlflow.db").search_experiments()
        _EMPTY_STORE.append(Path(folder) / "mlflow.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_EMPTY_STORE[0], db)
    return f"sqlite:///{db}"


def logged_run(tmp: Path, overrides) -> tuple[str, str]:
    """(tracking URI, run id) of one real run of ``overrides`` (in-process, as `python run.py` would
    run it) in a store (an empty one copied: :func:`new_store`) and data cache of its own under ``tmp``;
    the run is FINISHED."""
    from glyphlab.experiment import run
    from glyphlab.tracking import tracking_uri

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", new_store(tmp / "mlruns" / "mlflow.db"))
        mp.setenv("GLYPHLAB_CACHE", str(tmp / "cache"))
        cfg = compose(overrides)
        run(cfg)
        uri = tracking_uri(cfg.tracking)
    _, runs = all_runs(uri)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    return uri, runs[0].info.run_id


def all_runs(uri):
    """Every run in the store, newest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client, client.search_runs(ids, max_results=1000) if ids else []


def assert_nothing_running(uri):
    """No run of the store (if it exists) is still RUNNING; returns its runs."""
    _, runs = all_runs(uri) if os.path.exists(uri.removeprefix("sqlite:///")) else (None, [])
    assert all(r.info.status != "RUNNING" for r in runs)
    return runs


def parent_and_children(store):
    """(client, parent, children) of the store's one sweep, every run FINISHED, none failed."""
    client, runs = all_runs(store)
    parents = [r for r in runs if r.data.tags.get("glyphlab.sweep") == "parent"]
    assert len(parents) == 1, [r.data.tags for r in runs]
    parent = parents[0]
    children = [r for r in runs if r is not parent]
    assert all(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id for r in children)
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children)
    assert parent.data.metrics["sweep/n_children"] == len(children)
    assert parent.data.metrics["sweep/n_failed"] == 0
    return client, parent, children


def parent_of(store):
    """(client, parent, children) of the store's one sweep, whatever the children's states."""
    client, runs = all_runs(store)
    [parent] = [r for r in runs if r.data.tags.get("glyphlab.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return client, parent, children


def job_lines(stdout: str) -> list[str]:
    """A sweep's ``[n/N] …`` lines, one per ended job."""
    return [line for line in stdout.splitlines() if re.match(r"\[\d+/\d+\] ", line)]


def check_report(client, parent, children, stdout):
    """The table on stdout and on the parent run, naming the finished children."""
    assert re.search(r"^\| runes \| sklearn_mlp \| none \| \d \| [01]\.\d{3}", stdout, flags=re.M), stdout[-2000:]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"report.md", "accuracy.png"}
    report = open(client.download_artifacts(parent.info.run_id, "report.md"), encoding="utf-8").read()
    best = max((r for r in children if r.info.status == "FINISHED"), key=lambda r: r.data.metrics["test/accuracy"])
    assert best.info.run_id[:8] in report and f"glyphlab compare --parent {parent.info.run_id}" in report


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    """Whether the MLflow server at ``url`` answers its /health check."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_for(condition, what: str, timeout: float = 120, proc=None, log: Path | None = None, interval=0.2):
    """``condition()``'s first true value, polled every ``interval`` s; an AssertionError naming ``what``
    after ``timeout`` s or once ``proc`` has ended, with the tail of ``log`` or of the process's stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first\n{_tail(proc, log)}")
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{_tail(None, log)}")


def _tail(proc, log: Path | None) -> str:
    if log is not None and log.exists():
        return log.read_text()[-3000:]
    err = proc.communicate()[1] if proc is not None and proc.stderr is not None else None
    return (err or "")[-3000:]


def draw_folder(root, classes="ab", per_class=6, size=20):
    """A folder-per-class image set: class k is a bar at a class-specific angle."""
    from PIL import Image

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.full((size, size), 255, np.uint8)  # dark ink on white paper
            if k % 2 == 0:
                img[size // 2 - 1 + i % 3, 2:-2] = 0
            else:
                img[2:-2, size // 2 - 1 + i % 3] = 0
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def glyph_png(path):
    """A 20x20 PNG of one bright vertical bar at ``path``; returns the path."""
    from PIL import Image

    img = np.zeros((20, 20), np.uint8)
    img[4:16, 9:11] = 255
    Image.fromarray(img).save(path)
    return path


def fresh_runes(image_size=48, seed=123):
    """One new handwritten variant of every rune, at another size than the model's and seeded
    differently from its training data: uint8 [24, image_size, image_size], ink bright."""
    from glyphlab.data import runes
    from glyphlab.data.strokes import render_glyph

    rng = np.random.default_rng(seed)
    return np.concatenate([render_glyph(runes.rune_strokes(r), 1, image_size, rng, rotation=3.0, slant=0.05,
                                        jitter=0.01, wobble=0.02) for r in RUNES])


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height 8-bit gray pixels: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")
