"""A SQLite file as the MLflow store: checked before MLflow touches it, and created whole or not at all.

MLflow creates a new database in place: its tables, then a few seconds of migrations. A process
stopped in between (Ctrl-C, SIGTERM, a kill) used to leave a file every later run failed on
("table … already exists"). Here a new store is built in a temp file beside it and renamed into
place when complete, so the store's path only ever holds a whole store; a file left half-created
by an older glyphlab (or by plain MLflow) and holding no runs is rebuilt the same way. A file that
is not SQLite, or is another application's database, is refused with one line instead of being
given MLflow's ~50 tables and write-ahead logging.

:func:`prepare_sqlite` runs under the store's creation lock (:func:`glyphlab.tracking.store.connect`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

from glyphlab.errors import Interrupted, TrackingError, keep_interrupts_that_land_in_finalizers

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
CREATING = ".creating-"  # <db>.creating-<host>-<pid>: a store being built
# Seconds to hold a store's creation half-way (after its first tables, before the migrations): how
# the tests stop a creation at a known point. Unset in normal use.
PAUSE_ENV = "GLYPHLAB_TEST_STORE_CREATION_PAUSE_S"
# Tables (and a column of each) that only MLflow's schema has, from its very first tables on: a file
# with neither is another application's, even one with tables called experiments or runs.
MLFLOW_MARKS = (("experiments", "artifact_location"), ("runs", "run_uuid"))


def in_use_here(uri: str) -> bool:
    """Whether this process already holds MLflow's engine (pooled SQLite connections) for ``uri``. Then the
    file must not be opened and closed behind SQLite's back: closing any descriptor of a file drops every
    POSIX lock the process holds on it, the pool's included, and another process's writes can then corrupt
    it ("database disk image is malformed"). A store this process uses was checked when first opened."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except Exception:  # noqa: BLE001 - MLflow's internals moved: assume nothing is open
        return False
    return uri in getattr(SqlAlchemyStore, "_engine_map", {})


def prepare_sqlite(db: Path, uri: str) -> None:
    """Make ``db`` a whole MLflow store, or refuse it with :class:`TrackingError` (one line).

    Missing or empty (0 bytes, or SQLite without tables): built. Half-created (some of MLflow's
    tables and migrations, no experiment yet): rebuilt. Not SQLite, or another application's
    database: refused, the file untouched.
    """
    if in_use_here(uri):
        return
    _remove_stale_creations(db)
    state = _state(db, uri)
    if state == "ready":
        return
    if state == "half":
        log.warning("glyphlab: MLflow store %s was left half-created (its creation was stopped); rebuilding it", db)
    _create(db, uri)


def check(db: Path, uri: str) -> None:
    """For a reader (predict, draw, compare) of an existing file: :class:`TrackingError` (one line) when
    it is not SQLite or is another application's database, which MLflow would give its tables."""
    if db.is_file() and db.stat().st_size and not in_use_here(uri):
        _state(db, uri)


def _state(db: Path, uri: str) -> str:
    """'new', 'half' or 'ready'; raises for a file that is not an MLflow store."""
    try:
        if not db.exists() or db.stat().st_size == 0:
            return "new"
        with open(db, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise TrackingError(f"cannot open the MLflow store {uri}: {db}: {e.strerror}") from None
    if db.is_dir() or header != SQLITE_HEADER:
        raise TrackingError(f"cannot open the MLflow store {uri}: file is not a database ({db} is not SQLite: "
                            f"it starts with {header[:16]!r}); set tracking.uri to an MLflow store or a new file")
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            holds = {t for t in ("experiments", "runs")  # any row at all (a count would scan every run)
                     if t in tables and con.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()}
            version = (con.execute("SELECT version_num FROM alembic_version").fetchall()
                       if "alembic_version" in tables else [])
            mlflow_like = any(column in _columns(con, table) for table, column in MLFLOW_MARKS if table in tables)
    except sqlite3.Error as e:
        raise TrackingError(f"cannot open the MLflow store {uri}: SQLite cannot read {db} "
                            f"({type(e).__name__}: {e})") from None
    tables -= {"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}
    if not tables:
        return "new"
    if not mlflow_like:
        names = sorted(tables)
        shown = ", ".join(names[:5]) + (f" … (+{len(names) - 5})" if len(names) > 5 else "")
        raise TrackingError(f"MLflow store {uri}: {db} is another application's SQLite database ({len(names)} "
                            f"table(s): {shown}), not an MLflow store; it was left untouched. Set tracking.uri "
                            f"to an MLflow store or a new file")
    # MLflow adds its Default experiment once every migration has run: a store without any experiment
    # (and so without runs) that is not at the newest schema never finished its creation. Anything
    # else at an older version is MLflow's to migrate, or to refuse naming `mlflow db upgrade`.
    if holds or (version and version[0][0] == _head_revision()):
        return "ready"
    return "half"


def _columns(con, table: str) -> set[str]:
    return {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}


def _head_revision() -> str | None:
    try:
        from mlflow.store.db.utils import _get_latest_schema_revision

        return _get_latest_schema_revision()
    except Exception:  # noqa: BLE001 - MLflow's internals moved: decided by the content alone
        return None


def _create(db: Path, uri: str) -> None:
    """Build a new store in a temp file beside ``db`` and rename it into place. SIGTERM meanwhile
    raises :class:`Interrupted` (the run's one line, exit 143); the temp file never stays."""
    from mlflow.store.db.utils import _upgrade_db, create_sqlalchemy_engine_with_retry
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    tmp = db.with_name(f"{db.name}{CREATING}{_host()}-{os.getpid()}")
    started = time.perf_counter()
    log.info("glyphlab: creating the MLflow store %s (takes a few seconds, once)", db)
    with _sigterm_as_interrupt():
        try:
            _remove(tmp)
            engine = create_sqlalchemy_engine_with_retry(f"sqlite:///{tmp}")
            try:
                InitialBase.metadata.create_all(engine)
                if os.environ.get(PAUSE_ENV):
                    time.sleep(float(os.environ[PAUSE_ENV]))
                _upgrade_db(engine)
            finally:
                engine.dispose()
            for suffix in ("-journal", "-wal", "-shm"):  # of the file replaced: they would be replayed into the new one
                _remove(db.with_name(db.name + suffix))
            os.replace(tmp, db)
        except BaseException:
            _remove(tmp)
            raise
    _forget_engine(uri)
    log.info("glyphlab: created the MLflow store %s in %.1f s", db, time.perf_counter() - started)


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _forget_engine(uri: str) -> None:
    """An engine MLflow cached in this process for the file now replaced would keep using the old one."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        engine = getattr(SqlAlchemyStore, "_engine_map", {}).get(uri)
    except Exception:  # noqa: BLE001 - MLflow's internals moved: nothing cached to forget
        return
    if engine is not None:
        engine.dispose()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises :class:`Interrupted` inside (the main thread only: Python runs handlers there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    keep_interrupts_that_land_in_finalizers()

    def handler(signum, frame):
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _host() -> str:
    return "".join(ch if ch.isalnum() or ch == "-" else "_" for ch in socket.gethostname()) or "host"


def _remove_stale_creations(db: Path) -> None:
    """Temp files of creations that were stopped (a kill leaves one). Only the holder of the store's
    lock creates it, and :func:`prepare_sqlite` runs under that lock: any such file now is a dead one's."""
    try:
        leftovers = list(db.parent.glob(f"{db.name}{CREATING}*"))
    except OSError:
        return
    for path in leftovers:
        with contextlib.suppress(OSError):
            path.unlink()
