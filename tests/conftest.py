"""Shared fixtures: a throw-away MLflow store and data cache per test, one thread per xdist worker.

The plain helpers the test files share (tiny override lists, the command line, a logged run, waits)
are in helpers.py.
"""
from __future__ import annotations

import os
import signal

import pytest

from helpers import compose, new_store

# Under pytest-xdist (`make test`: a worker per core) each worker and every run it starts computes on one
# thread: two workers with a thread per core each would oversubscribe the cores, and OpenBLAS threads
# spin-wait for a core that the other worker holds (an sklearn fit many times slower). Set before numpy
# or torch is imported; a value already in the environment wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


# The Ctrl-C tests need Ctrl-C to be Python's KeyboardInterrupt here and in the runs they start. A shell
# starts a background job (`make test &`, nohup, some CI runners) with SIGINT ignored, every process it
# starts inherits that, and Python then leaves SIGINT ignored: the tests' Ctrl-C would be lost. Behave as
# a terminal's foreground job does (a handler is reset to the default in the processes we start).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def empty_store_file(tmp_path_factory):
    """An empty, fully migrated MLflow SQLite file: creating one costs seconds, copying it nothing."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    new_store(path)
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


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory):
    """(tracking URI, runs:/ model URI) of a tiny real sklearn run, in a store of its own (one per module)."""
    from mlflow.tracking import MlflowClient

    from glyphlab.experiment import run

    tmp = tmp_path_factory.mktemp("serving")
    uri = new_store(tmp / "mlruns" / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("GLYPHLAB_CACHE", str(tmp / "cache"))
        run(compose(["model=sklearn_mlp", "model.max_epochs=3", "data.samples_per_class=12", "data.image_size=16"]))
    client = MlflowClient(uri)
    (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return uri, f"runs:/{found.info.run_id}/model"
