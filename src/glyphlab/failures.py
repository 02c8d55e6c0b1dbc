"""The machine's failures that a run cannot go on from, as one line each: memory running out, and an
MLflow store (its SQLite file or its artifacts folder) that cannot take a write (write-protected, a full
disk). :func:`explain` turns such an error into a :class:`~glyphlab.errors.GlyphlabError`; the run is
ended with it (tracking.runs.start_run) and ``experiment.main`` prints it instead of a traceback.
"""
from __future__ import annotations

import errno
import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

from glyphlab import phases
from glyphlab.errors import ConfigError, GlyphlabError, TrackingError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
DENIED = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST)
# torch's CPU allocator and CUDA say so in a RuntimeError (torch.OutOfMemoryError is one); numpy raises MemoryError
MEMORY_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory", "unable to allocate")
SQLITE_WORDS = {"readonly database": ("is write-protected", "make it writable"),
                "database or disk is full": ("is on a full disk", "free some space"),
                "disk i/o error": ("cannot be written (disk I/O error)", "check its disk")}
# what the run was doing, by its last phases.mark
DOING = {"run_start": "loading the data", "data_ready": "preparing the training data", "fit_start": "training",
         "first_step": "training", "fit_end": "evaluating"}


def explain(error: BaseException, uri: str, artifact_uri: str | None = None,
            batch_key: str = "model.batch_size") -> GlyphlabError | None:
    """``error`` as one line when it is memory running out or a store that cannot be written; else None.

    ``uri``: the tracking URI; ``artifact_uri``: the run's artifact location (when a run exists);
    ``batch_key``: the config key of the batch size, named in the out-of-memory hint.
    """
    if isinstance(error, GlyphlabError):  # already one line (a cache that cannot be written says so itself)
        return out_of_memory(error, batch_key)
    return out_of_memory(error, batch_key) or store_failure(error, uri, artifact_uri)


def out_of_memory(error: BaseException, batch_key: str = "model.batch_size") -> ConfigError | None:
    for e in _chain(error):
        text = str(e).strip()
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or (
                isinstance(e, RuntimeError) and any(w in text.lower() for w in MEMORY_WORDS)):
            detail = text.splitlines()[0][:200] if text else type(e).__name__
            doing = DOING.get(phases.current, "running")
            return ConfigError(f"out of memory while {doing} ({detail}); try a smaller {batch_key} or "
                               f"data.image_size (or fewer data.samples_per_class)")
    return None


def store_failure(error: BaseException, uri: str, artifact_uri: str | None = None) -> TrackingError | None:
    db = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
    artifacts = _local_path(artifact_uri)
    for e in _chain(error):
        text = str(e).lower()
        for words, (what, fix) in SQLITE_WORDS.items():
            if words in text:
                return TrackingError(f"MLflow store {uri} cannot be written: {db or 'its database'} {what}; "
                                     f"{fix}, or set tracking.uri to another store")
        if not isinstance(e, OSError) or e.errno not in DISK_FULL + DENIED:
            continue
        path = e.filename or artifacts
        in_store = path is None or _inside(path, [artifacts, db and db.parent]) or _raised_by_mlflow(e)
        if e.errno in DISK_FULL:
            where = f"MLflow store {uri}: " if in_store else ""
            what = f"to write {path}" if path is not None else "under it"
            kind = TrackingError if in_store else GlyphlabError
            return kind(f"{where}no space left on the device {what}; free some space"
                        + (", or set tracking.uri to another store" if in_store else ""))
        if in_store:
            return TrackingError(f"MLflow store {uri} cannot be written: {path} ({e.strerror or 'not writable'}); "
                                 f"fix its permissions, or set tracking.uri to another store")
    return None


def quiet_store_errors() -> None:
    """MLflow logs every SQLite error with its traceback before raising it; the raised error is the one
    reported (as one line, by :func:`explain`), so the log record is dropped."""
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _DropDatabaseErrors) for f in logger.filters):
        logger.addFilter(_DropDatabaseErrors())


class _DropDatabaseErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


def _chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _local_path(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(str(uri))
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def _inside(path, folders) -> bool:
    path = Path(path).absolute()
    folders = [Path(folder).absolute() for folder in folders if folder is not None]
    return any(path == folder or folder in path.parents for folder in folders)


def _raised_by_mlflow(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if "/mlflow/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False
