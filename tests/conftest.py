"""Shared fixtures: a throw-away MLflow store and data cache per test, one thread per xdist worker.

The plain helpers the test files share (tiny override lists, the command line, a logged run, waits)
are in helpers.py.
"""
from __future__ import annotations

import os

import pytest

from helpers import compose

# Under pytest-xdist (`make test`: a worker per core) each worker and every run it starts computes on one
# thread: two workers with a thread per core each would oversubscribe the cores, and OpenBLAS threads
# spin-wait for a core that the other worker holds (an sklearn fit many times slower). Set before numpy
# or torch is imported; a value already in the environment wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


# The longest files, longest first (from the durations of a full run: each starts processes, servers or sweeps).
# `make test` hands whole files to the xdist workers in collection order (--dist loadfile --no-loadscope-reorder):
# run these first and the files each worker takes last are short ones, so both end together. Without it xdist
# orders files by their number of tests and a two-test file of three minutes can come last.
LONGEST_FIRST = ("test_reliability", "test_scaleout", "test_server", "test_reliability_server", "test_reliability_dead",
                 "test_optuna", "test_predict", "test_sweeps", "test_reliability_races", "test_verbosity",
                 "test_reliability_store", "test_read_real", "test_reliability_data", "test_fine_tune", "test_experiment")


def pytest_collection_modifyitems(items):
    """Files in :data:`LONGEST_FIRST` order ahead of the rest; the order inside each file is kept."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


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


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory):
    """(tracking URI, runs:/ model URI) of a tiny real sklearn run, in a store of its own (one per module)."""
    from mlflow.tracking import MlflowClient

    from glyphlab.experiment import run

    tmp = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("GLYPHLAB_CACHE", str(tmp / "cache"))
        run(compose(["model=sklearn_mlp", "model.max_epochs=3", "data.samples_per_class=12", "data.image_size=16"]))
    client = MlflowClient(uri)
    (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return uri, f"runs:/{found.info.run_id}/model"
