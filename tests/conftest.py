"""Shared fixtures: a throw-away MLflow store and data cache per test, one thread per xdist worker.

The plain helpers the test files share (tiny override lists, the command line, a logged run, waits)
are in helpers.py.
"""
from __future__ import annotations

import os

import pytest

# Under pytest-xdist (`make test`: a worker per core) each worker and every run it starts computes on one
# thread: two workers with a thread per core each would oversubscribe the cores, and OpenBLAS threads
# spin-wait for a core that the other worker holds (an sklearn fit many times slower). Set before numpy
# or torch is imported; a value already in the environment wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


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
