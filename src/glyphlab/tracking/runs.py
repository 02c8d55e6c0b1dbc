"""One MLflow run per experiment: its tags and params, and how it ends (FINISHED, FAILED with the
error tagged, KILLED), also when the tracking server stops answering mid-run."""
from __future__ import annotations

import contextlib
import gc
import os
import re
import signal
import subprocess
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from glyphlab import project_root
from glyphlab.errors import Interrupted, TrackingError, keep_interrupts_that_land_in_finalizers
from glyphlab.tracking.liveness import process_tags
from glyphlab.tracking.store import connect, is_server, quick_requests, store_unreachable, tracking_uri
from glyphlab.tracking.sweep import sweep_parent_id

SYSTEM_METRICS_INTERVAL_S = 2  # tracking.system_metrics: a sample every 2 s (MLflow's default 10 s misses short runs)


def flatten(cfg: dict, prefix: str = "") -> dict:
    """Nested config → ``{"model.optimizer.lr": 0.003, ...}`` with lists as strings."""
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if isinstance(value, (int, float, bool, str, type(None))) else str(value)
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_name(cfg) -> str:
    if cfg.tracking.get("run_name"):
        return str(cfg.tracking.run_name)
    return f"{cfg.model.name}-{cfg.data.name}-{cfg.augmentation.name}-s{cfg.seed}"


@contextlib.contextmanager
def start_run(cfg: DictConfig):
    """An active MLflow run for one experiment, ended FINISHED, FAILED (error tagged) or KILLED.

    SIGTERM (and Ctrl-C, when Python's own handler is in force) raise :class:`~glyphlab.errors.Interrupted`
    from the store's opening (a new store's creation takes seconds) to the run's end, so a killed job
    still ends its run as KILLED instead of leaving it RUNNING,
    and the interrupt carries its signal and, once the run is ended, the run's id (experiment.main's line).
    """
    import mlflow

    from glyphlab.failures import explain, quiet_store_errors

    quiet_store_errors()
    uri = tracking_uri(cfg.tracking)
    batch_key = "model.batch_size" if "batch_size" in cfg.model else "model.estimator.batch_size"
    # From here on: also while the store is opened, a new one's creation taking seconds (no run yet).
    previous = _signals_as_interrupt()
    try:
        run = _new_run(cfg, uri)
    except BaseException:
        _put_back(previous)
        raise
    try:
        if cfg.tracking.get("system_metrics"):  # psutil's samples; short runs need more than MLflow's one per 10 s
            os.environ.setdefault("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", str(SYSTEM_METRICS_INTERVAL_S))
        try:
            active = mlflow.start_run(run_id=run.info.run_id,
                                      log_system_metrics=cfg.tracking.get("system_metrics") or None)
        except Exception as e:  # not active: ended FAILED through the client instead
            _terminate_failed(run.info.run_id, uri, e, explain(e, uri, run.info.artifact_uri))
            raise
        try:
            container = OmegaConf.to_container(cfg, resolve=True)
            mlflow.log_params(flatten(container))
            mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
            yield active
        except (KeyboardInterrupt, SystemExit) as e:
            release_interrupted_calls(e)
            ended = _end_active_run("KILLED", "interrupted", uri)
            if isinstance(e, Interrupted) and ended:
                e.run_id = run.info.run_id
            raise
        except BaseException as e:
            release_interrupted_calls(e)
            if _server_lost(e, uri):
                ended = _end_active_run("FAILED", f"the tracking server stopped answering: {_reason(e)}", uri,
                                        lost=True)
                raise TrackingError(_server_lost_message(uri, e, run.info.run_id, ended)) from e
            known = explain(e, uri, run.info.artifact_uri, batch_key)  # out of memory, a store that cannot be written
            _end_failed(e, known, run.info.run_id, uri, lambda err: explain(err, uri, run.info.artifact_uri))
            raise
        else:
            try:
                mlflow.end_run("FINISHED")
            except Exception as e:
                if (known := explain(e, uri, run.info.artifact_uri)) is None:
                    raise
                raise type(known)(f"{known}; MLflow run {run.info.run_id} could not be ended FINISHED") from e
    finally:
        _put_back(previous)


def _new_run(cfg: DictConfig, uri: str):
    """The experiment's new MLflow run (its tags set), in the store it is connected to first."""
    from glyphlab.failures import explain

    client, experiment_id = connect(cfg.tracking)
    tags = {"model": cfg.model.name, "data": cfg.data.name, "augmentation": cfg.augmentation.name,
            "seed": str(cfg.seed)}
    if cfg.get("eval_data"):
        tags["eval_data"] = cfg.eval_data.name
    if commit := git_commit():
        tags["mlflow.source.git.commit"] = commit
    if parent := sweep_parent_id():
        tags["mlflow.parentRunId"] = parent
    tags.update(process_tags())
    try:
        return client.create_run(experiment_id, run_name=run_name(cfg), tags=tags)
    except Exception as e:  # a write-protected or full store: one line (glyphlab.failures)
        if (known := explain(e, uri)) is None:
            raise
        raise known from e


def _terminate_failed(run_id: str, uri: str, error: BaseException, known) -> None:
    """End run ``run_id``, which never became active, FAILED; raises ``known`` (one line) when given."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).set_terminated(run_id, "FAILED")
        how = "ended FAILED"
    except Exception:  # noqa: BLE001 - the store that failed to start it may fail this too
        how = "could not be ended FAILED (it stays RUNNING until a glyphlab process on this host opens the store again)"
    if known is not None:
        raise type(known)(f"{known}; MLflow run {run_id} {how}") from error


def _put_back(previous: dict) -> None:
    for signum, handler in previous.items():
        if handler is not None:  # None: a handler not set from Python, which cannot be put back
            signal.signal(signum, handler)


def _end_failed(error: BaseException, known, run_id: str, uri: str, explain_end) -> None:
    """End the active run FAILED with ``error`` tagged; ``known``: its one-line form (glyphlab.failures),
    raised instead, saying whether the run could be ended. A store that cannot record the end (a full
    disk) leaves the run RUNNING; the next glyphlab process on this host that opens it ends it KILLED."""
    try:
        _end_active_run("FAILED", str(known) if known is not None else f"{type(error).__name__}: {error}"[:5000], uri)
    except Exception as end_error:  # noqa: BLE001 - mlflow.end_run has taken the run off its stack already
        known = known or explain_end(end_error)
        if known is None:
            return  # the run's own error goes on
        raise type(known)(f"{known}; MLflow run {run_id} could not be ended FAILED (it stays RUNNING until "
                          f"a glyphlab process on this host opens the store again)") from error
    if known is not None:
        raise type(known)(f"{known}; MLflow run {run_id} ended FAILED") from error


def _end_active_run(status: str, error: str, uri: str, lost: bool = False) -> bool:
    """Tag the active run's error and end it; False when its tracking server did not take it.

    After the server failed (``lost``), or when it no longer answers, each call gets one quick try
    instead of another round of retries: a run the server did not take is ended later, by
    mark_dead_runs in the next glyphlab process on this host that opens the store.
    """
    import mlflow

    if lost or (is_server(uri) and store_unreachable(uri)):
        with quick_requests():
            try:
                mlflow.set_tag("error", error)
            except Exception:  # noqa: BLE001 - the server is known to fail
                pass
            try:
                mlflow.end_run(status)  # pops the active run first, then asks the store: nothing tries again
                return True
            except Exception:  # noqa: BLE001
                return False
    try:
        mlflow.set_tag("error", error)
    except Exception:  # noqa: BLE001 - ending the run below matters more
        pass
    mlflow.end_run(status)
    return True


def release_interrupted_calls(error: BaseException) -> None:
    """Let go of what the calls ``error`` broke off still hold: the local variables of their finished frames.

    A signal handled while an MLflow call wrote to a SQLite store (Ctrl-C or SIGTERM landing between the
    INSERTs of ``log_metrics`` and their COMMIT) leaves that call's database connection in the middle of a
    write transaction; the exception's traceback keeps the connection alive, so the store stays locked and
    ending the run KILLED or FAILED waits out the busy timeout (20 s) and fails with "database is locked",
    leaving the run RUNNING. Clearing those frames' locals (the frames still running are left alone) lets
    the connection be collected, which rolls the broken-off transaction back. The traceback still shows
    every frame's file, line and function."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    gc.collect()


def _server_lost(error: BaseException, uri: str) -> bool:
    """Whether ``error`` is the tracking server failing to answer (after MLflow's own retries)."""
    if not is_server(uri):
        return False
    import requests

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, requests.exceptions.RequestException):
            return True
        if type(error).__name__ == "MlflowException" and str(error).startswith("API request to "):
            return True  # MLflow's wrapping of a connection error, timeout or too many 5xx answers
        error = error.__cause__ or error.__context__
    return False


def _reason(error: BaseException) -> str:
    """The gist of a requests/urllib3 error message: '[Errno 111] Connection refused', 'Read timed out', ..."""
    text = str(error)
    for pattern in (r"\[Errno -?\d+\][^'\")]*", r"Read timed out", r"timed out", r"too many \d+ error responses",
                    r"error code \d+",
                    r"Connection aborted", r"RemoteDisconnected[^'\")]*"):
        if match := re.search(pattern, text):
            return match.group(0).strip()
    return type(error).__name__


def _server_lost_message(uri: str, error: BaseException, run_id: str, ended: bool) -> str:
    where = "ended FAILED there" if ended else \
        "left RUNNING there until a glyphlab process on this host opens the store again (it then ends it KILLED)"
    message = f"MLflow tracking server {uri} stopped answering during run {run_id} ({_reason(error)}); the run is {where}"
    checkpoints = _checkpoint_dir()
    if checkpoints is not None:
        last = checkpoints / "last.ckpt"
        message += (f"; checkpoints kept in {checkpoints}" +
                    (f" (resume with ckpt_path={last})" if last.exists() else ""))
    return message


def _checkpoint_dir() -> Path | None:
    """The run's checkpoint folder (in its Hydra output dir), when training wrote one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    path = Path(HydraConfig.get().runtime.output_dir) / "checkpoints"
    return path if path.is_dir() and any(path.iterdir()) else None


def _signals_as_interrupt() -> dict:
    """Make SIGTERM, and SIGINT while Python's default handler has it, raise Interrupted; returns the
    handlers to put back. A SIGINT handler someone else installed (or SIG_IGN) is left alone, as are
    threads other than the main one (Python runs handlers there only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    keep_interrupts_that_land_in_finalizers()

    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler)
    return previous
