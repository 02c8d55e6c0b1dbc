"""Shared fixtures: a throw-away MLflow store and data cache per test, tiny configs, the CLI."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Under pytest-xdist (`make test`: a worker per core) each worker and every run it starts computes on one
# thread: two workers with a thread per core each would oversubscribe the cores, and OpenBLAS threads
# spin-wait for a core that the other worker holds (an sklearn fit many times slower). Set before numpy
# or torch is imported; a value already in the environment wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

# Small enough to train in seconds, big enough that a model learns something.
TINY = ["data.samples_per_class=24", "data.image_size=16", "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false"]
TINY_SKLEARN = ["data.samples_per_class=24", "data.image_size=16", "model.max_epochs=3"]


@pytest.fixture(scope="session")
def empty_store_file(tmp_path_factory):
    """An empty, fully migrated MLflow SQLite file: creating one costs seconds, copying it nothing."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store_file):
    """An empty MLflow SQLite store (and data cache) in a temp dir; returns its tracking URI."""
    import shutil

    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_store_file, tmp_path / "mlruns" / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    return uri


def compose(overrides=()):
    """The config `python run.py <overrides>` would get (real Hydra composition)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


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


def cli(*args, cwd=None, env=None, timeout=600):
    """Run `python run.py ARGS` in a subprocess; returns the CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def logged_run(tmp: Path, overrides) -> tuple[str, str]:
    """(tracking URI, run id) of one real run of ``overrides`` (in-process, as `python run.py` would
    run it) in a store and data cache of its own under ``tmp``; the run is FINISHED."""
    from glyphlab.experiment import run
    from glyphlab.tracking import tracking_uri

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}")
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
