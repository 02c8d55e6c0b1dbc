"""Where the MLflow store is and how it is opened: its URI, a fail-fast check that it can be used,
a lock around a new store's creation, write-ahead logging for SQLite, and the HTTP settings for a
tracking server."""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from urllib.parse import urlparse

from glyphlab import project_root
from glyphlab.errors import TrackingError
from glyphlab.tracking.liveness import mark_dead_runs
from glyphlab.tracking.sqlite_store import check as check_sqlite
from glyphlab.tracking.sqlite_store import in_use_here
from glyphlab.tracking.sqlite_store import prepare_sqlite

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def tracking_uri(given=None) -> str:
    """The store: ``given`` (a URI, or a ``tracking`` config and its ``uri``) when set, else
    ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<repo>/mlruns/mlflow.db``."""
    if given is not None and not isinstance(given, str):
        given = given.get("uri")
    if given:
        return str(given)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"


def store_note(cfg_tracking) -> str:
    """Words for the run's summary when the store is the default one of an installed glyphlab (no checkout)."""
    from glyphlab import checkout

    # (Compared, not read from the environment: mlflow.set_tracking_uri sets MLFLOW_TRACKING_URI itself.)
    if checkout() is not None or tracking_uri(cfg_tracking) != f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}":
        return ""
    return "  (the default store: ./mlruns/mlflow.db of the current folder; tracking.uri= to change)"


def ui_link(uri: str, experiment_id: str) -> str:
    """The experiment's runs table in the MLflow UI (``mlflow ui``'s default address for a local store).

    MLflow 3's UI shows an experiment as its sidebar's GenAI / Model training switch says, and a
    browser that never flipped it is on GenAI: the experiment opens on the traces Overview, whatever
    its ``mlflow.experimentKind``. ``workflowType=machine_learning`` in the link flips it for the visit.
    """
    base = uri.rstrip("/") if is_server(uri) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def quiet_progress_bars() -> None:
    """MLflow draws a progress bar for every artifact it reads back (logging or loading a model does):
    noise in a run's output, in sweep logs and in reports. A user who wants them sets the variable to true."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def existing_store(given=None) -> str:
    """The store's URI (see :func:`tracking_uri`) for a reader (predict, draw): MLflow would create
    a missing SQLite file, empty, and then report the run as missing; this names the file instead."""
    uri = tracking_uri(given)
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise TrackingError(f"no MLflow store at {uri} ({db} does not exist); pass --tracking-uri of the "
                            f"store the model was logged to, or set MLFLOW_TRACKING_URI")
    if db is not None:  # not SQLite, or another application's database: MLflow would add its tables
        check_sqlite(db, uri)
    return uri


def connect(cfg_tracking):
    """Point MLflow at the store and make sure the experiment exists; returns (client, experiment_id).

    Fails fast with :class:`TrackingError` on an unreachable server or an unwritable store,
    before any data is built or any model trained.
    """
    uri = tracking_uri(cfg_tracking)
    if is_server(uri):
        # MLflow retries a failed request 7 times over minutes, with a 120 s timeout each: a run whose
        # server died would take ~12 minutes to say so. These keep short outages covered (~15 s of
        # retries) and end a run whose server is gone within about a minute. The environment wins.
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        _check_server(uri)
    db = sqlite_path(uri)
    if db is not None:
        _check_writable(db, uri)
    quiet_progress_bars()
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    # The first process to open a new database creates and migrates it; two at once both migrate
    # and one fails ("duplicate column name"), or both insert the default experiment. A lock file
    # makes the first use of a store one process at a time (beside a SQLite file; in the temp dir,
    # keyed by the URI, for a database server), and the experiment is created under it too.
    from filelock import Timeout

    lock = _store_lock(uri, db)
    try:
        with lock:
            if db is not None:  # built whole or not at all; not SQLite, or another application's: one line
                prepare_sqlite(db, uri)
            client = MlflowClient(uri)
            if db is not None:
                _use_wal(client, db)
            else:
                client.search_experiments(max_results=1)
            experiment_id = _experiment(client, str(cfg_tracking.experiment), db, uri)
    except Timeout:
        raise TrackingError(f"MLflow store {uri}: another process has held {lock.lock_file} for "
                            f"{lock.timeout:.0f} s while opening it; is it stuck?") from None
    except TrackingError:
        raise
    except Exception as e:  # the store's own error (locked by another program, a newer schema, a full disk ...)
        from glyphlab.failures import store_failure

        if (known := store_failure(e, uri)) is not None:
            raise known from e
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TrackingError(f"cannot open the MLflow store {uri}: {type(e).__name__}: {reason}"[:1000]) from e
    mark_dead_runs(client)
    return client, experiment_id


def _check_writable(db: Path, uri: str) -> None:
    """Raise :class:`TrackingError` unless the SQLite file ``db`` (or, when new, its folder) can be written."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        probe = db.parent / f".write-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise TrackingError(f"MLflow store {uri} is not writable: {e.strerror} ({db.parent})") from None
    try:  # the file itself: write-protected in a writable folder, SQLite would fail at the first write
        if db.exists() and not in_use_here(uri):  # (never behind the back of this process's own pool)
            os.close(os.open(db, os.O_RDWR))
    except OSError as e:
        raise TrackingError(f"MLflow store {uri} is not writable: {db} ({e.strerror}); make it writable, "
                            f"or set tracking.uri to another store") from None


def _store_lock(uri: str, db: Path | None):
    from filelock import FileLock

    if db is not None:
        path = db.with_name(db.name + ".lock")
    else:
        import hashlib
        import tempfile

        path = Path(tempfile.gettempdir()) / f"glyphlab-store-{hashlib.sha1(uri.encode()).hexdigest()[:16]}.lock"
    return FileLock(path, timeout=300)


# MLflow 3's UI opens an experiment by its kind: GenAI ones on the traces Overview, model-training
# ones on the Training runs table. Without the tag it guesses, and asks; glyphlab's runs train models.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _experiment(client, name: str, db: Path | None, uri: str) -> str:
    """The id of experiment ``name``, created (or restored) if need be, marked as model training."""
    for _ in range(5):  # processes on other machines (a tracking server) may still race to create it
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            if not any(key in exp.tags for key in EXPERIMENT_KIND):  # an older glyphlab's; a kind set by hand stays
                for key, value in EXPERIMENT_KIND.items():
                    client.set_experiment_tag(exp.experiment_id, key, value)
            return exp.experiment_id
        location = None
        if db is not None:  # artifacts beside the database, never in the current directory
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            location = (db.parent / "artifacts" / slug).as_uri()
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except Exception:
            time.sleep(0.2)
    raise TrackingError(f"cannot create MLflow experiment {name!r} in {uri}")


def _use_wal(client, db: Path) -> None:
    """Switch the SQLite store to write-ahead logging (a setting stored in the file itself).

    With WAL, readers never block the writer and parallel sweep jobs wait on each other's
    short writes instead of failing with 'database is locked'.
    """
    import sqlite3

    client.search_experiments(max_results=1)  # let MLflow create and migrate the database first
    for _ in range(20):
        try:
            with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:  # another job holds the lock right now
            time.sleep(0.25)


def is_server(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def _check_server(uri: str, timeout: float = 3.0) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            if r.status == 200:
                return
    except Exception as e:  # noqa: BLE001 - any failure means the same to the user
        raise TrackingError(f"MLflow tracking server {uri} is not reachable ({e}); "
                            f"start it or set tracking.uri") from None
    raise TrackingError(f"MLflow tracking server {uri} answered /health with status {r.status}")


def store_unreachable(uri: str) -> bool:
    try:
        _check_server(uri, timeout=3.0)
        return False
    except TrackingError:
        return True


@contextlib.contextmanager
def quick_requests():
    """MLflow's HTTP settings for one try without retries (read by MLflow at each request)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="1")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
