"""MLflow: where the store is, one run per experiment, and one parent run per sweep.

Default store: ``sqlite:///<repo>/mlruns/mlflow.db`` with artifacts in ``<repo>/mlruns/``,
whatever Hydra's working directory. ``tracking.uri`` or ``MLFLOW_TRACKING_URI`` point
elsewhere (another SQLite file, a tracking server). A sweep's parent run id is handed to
its jobs through a file in the sweep directory, so jobs in other processes or on other
machines (joblib, submitit, ray) find it without an in-process active-run stack.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from glyphlab import project_root
from glyphlab.errors import TrackingError  # noqa: F401 - re-exported: its old home

PARENT_FILE = ".mlflow_parent_run_id"
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
    return uri


def connect(cfg_tracking):
    """Point MLflow at the store and make sure the experiment exists; returns (client, experiment_id).

    Fails fast with :class:`TrackingError` on an unreachable server or an unwritable store,
    before any data is built or any model trained.
    """
    uri = tracking_uri(cfg_tracking)
    if _is_server(uri):
        # MLflow retries a failed request 7 times over minutes, with a 120 s timeout each: a run whose
        # server died would take ~12 minutes to say so. These keep short outages covered (~15 s of
        # retries) and end a run whose server is gone within about a minute. The environment wins.
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        _check_server(uri)
    db = sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            probe = db.parent / f".write-probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as e:
            raise TrackingError(f"MLflow store {uri} is not writable: {e.strerror} ({db.parent})") from None
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
    except Exception as e:  # the store's own error (locked by another program, a newer schema, ...)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TrackingError(f"cannot open the MLflow store {uri}: {type(e).__name__}: {reason}"[:1000]) from e
    mark_dead_runs(client)
    return client, experiment_id


def _store_lock(uri: str, db: Path | None):
    from filelock import FileLock

    if db is not None:
        path = db.with_name(db.name + ".lock")
    else:
        import hashlib
        import tempfile

        path = Path(tempfile.gettempdir()) / f"glyphlab-store-{hashlib.sha1(uri.encode()).hexdigest()[:16]}.lock"
    return FileLock(path, timeout=300)


def _experiment(client, name: str, db: Path | None, uri: str) -> str:
    """The id of experiment ``name``, created (or restored) if need be."""
    for _ in range(5):  # processes on other machines (a tracking server) may still race to create it
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        location = None
        if db is not None:  # artifacts beside the database, never in the current directory
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            location = (db.parent / "artifacts" / slug).as_uri()
        try:
            return client.create_experiment(name, artifact_location=location)
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


# Who is running a run: a process that dies too hard to end it (SIGKILL, out of memory, a power
# cut) leaves it RUNNING, and the next glyphlab process on the same host ends it (mark_dead_runs).
HOST_TAG, PID_TAG, PID_START_TAG = "glyphlab.host", "glyphlab.pid", "glyphlab.pid_start"


def process_tags(pid: int | None = None) -> dict:
    """Tags naming the process that runs a run: host, pid and the pid's start time (pids are reused)."""
    pid = os.getpid() if pid is None else pid
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)}
    if start := _process_start(pid):
        tags[PID_START_TAG] = start
    return tags


def _process_start(pid: int) -> str | None:
    """``<boot id>:<start time in clock ticks since boot>`` of a live process (Linux), else None.

    Together with the pid it names one process for good: a reused pid has a later start time, and
    after a reboot the boot id differs.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name before ')' may hold spaces
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    if fields[0] in "ZX":  # a zombie: dead, only not yet reaped by its parent
        return "dead"
    return f"{boot}:{fields[19]}"  # field 22 of proc(5)


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = _process_start(pid)
    return now != "dead" and (start is None or now in (start, None))


def mark_dead_runs(client) -> list[str]:
    """End as KILLED, with a note, the RUNNING runs of this host whose process is gone; returns their ids.

    Called by every glyphlab process that opens a store (runs, sweeps, compare), so a run whose
    process was killed too hard to end it stays RUNNING only until then.
    """
    from datetime import datetime, timezone

    host = socket.gethostname()
    try:
        experiment_ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        running = client.search_runs(experiment_ids, f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = "
                                     f"'{host}'", max_results=1000) if experiment_ids else []
    except Exception:  # noqa: BLE001 - housekeeping: a store that cannot be searched so is left as it is
        return []
    marked = []
    for run in running:
        tags = run.data.tags
        try:
            pid = int(tags[PID_TAG])
        except (KeyError, ValueError):
            continue
        if _alive(pid, tags.get(PID_START_TAG)):
            continue
        note = (f"process {pid} on {host} ended without ending this run (killed by SIGKILL, out of memory, "
                f"a crash or a power cut); marked KILLED by glyphlab process {os.getpid()} at "
                f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
        try:
            if client.get_run(run.info.run_id).info.status != "RUNNING":  # another process was quicker
                continue
            client.set_tag(run.info.run_id, "error", note)
            if not tags.get("mlflow.note.content"):
                client.set_tag(run.info.run_id, "mlflow.note.content", note)
            client.set_terminated(run.info.run_id, "KILLED")
            marked.append(run.info.run_id)
        except Exception:  # noqa: BLE001 - deleted meanwhile, or a read-only store: leave it for the next one
            continue
    if marked:
        logging.getLogger(__name__).warning(f"glyphlab: marked {len(marked)} run(s) KILLED whose process on {host} "
                                            f"is gone: {' '.join(marked)}")
    return marked


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


def sweep_parent_id() -> str | None:
    """The parent run of the sweep this job belongs to (None outside a multirun)."""
    if os.environ.get("GLYPHLAB_PARENT_RUN_ID"):
        return os.environ["GLYPHLAB_PARENT_RUN_ID"]
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return path.read_text().strip() if path.exists() else None


def run_name(cfg) -> str:
    if cfg.tracking.get("run_name"):
        return str(cfg.tracking.run_name)
    return f"{cfg.model.name}-{cfg.data.name}-{cfg.augmentation.name}-s{cfg.seed}"


@contextlib.contextmanager
def start_run(cfg: DictConfig):
    """An active MLflow run for one experiment, ended FINISHED, FAILED (error tagged) or KILLED.

    SIGTERM is turned into KeyboardInterrupt for the run's duration so a killed job
    still ends its run as KILLED instead of leaving it RUNNING.
    """
    import mlflow

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
    run = client.create_run(experiment_id, run_name=run_name(cfg), tags=tags)
    previous = _sigterm_as_interrupt()
    uri = tracking_uri(cfg.tracking)
    try:
        active = mlflow.start_run(run_id=run.info.run_id)
        try:
            container = OmegaConf.to_container(cfg, resolve=True)
            mlflow.log_params(flatten(container))
            mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
            yield active
        except (KeyboardInterrupt, SystemExit):
            _end_active_run("KILLED", "interrupted", uri)
            raise
        except BaseException as e:
            if _server_lost(e, uri):
                ended = _end_active_run("FAILED", f"the tracking server stopped answering: {_reason(e)}", uri,
                                        lost=True)
                raise TrackingError(_server_lost_message(uri, e, run.info.run_id, ended)) from e
            _end_active_run("FAILED", f"{type(e).__name__}: {e}"[:5000], uri)
            raise
        else:
            mlflow.end_run("FINISHED")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _end_active_run(status: str, error: str, uri: str, lost: bool = False) -> bool:
    """Tag the active run's error and end it; False when its tracking server did not take it.

    After the server failed (``lost``), or when it no longer answers, each call gets one quick try
    instead of another round of retries: a run the server did not take is ended later, by
    mark_dead_runs in the next glyphlab process on this host that opens the store.
    """
    import mlflow

    if lost or (_is_server(uri) and _store_unreachable(uri)):
        with _quick_requests():
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


def _is_server(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def _store_unreachable(uri: str) -> bool:
    try:
        _check_server(uri, timeout=3.0)
        return False
    except TrackingError:
        return True


@contextlib.contextmanager
def _quick_requests():
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


def _server_lost(error: BaseException, uri: str) -> bool:
    """Whether ``error`` is the tracking server failing to answer (after MLflow's own retries)."""
    if not _is_server(uri):
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


def _sigterm_as_interrupt():
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def hold_sweep_dir(sweep_dir: Path):
    """Claim ``sweep_dir`` for this sweep until the process ends (the OS drops the lock even on kill -9).

    Two sweeps in one folder would share its job folders and its parent-run file: the jobs of both
    would be linked to one parent. Returns the held lock; raises TrackingError when another running
    sweep holds it.
    """
    from filelock import FileLock, Timeout

    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(sweep_dir / ".glyphlab-sweep.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise TrackingError(f"hydra.sweep.dir {sweep_dir} is in use by another sweep that is still running; "
                            "give each sweep its own hydra.sweep.dir (the default one is)") from None
    return lock


JOBS_DIR = ".glyphlab-jobs"


def read_jobs(sweep_dir) -> dict[int, dict]:
    """The job records of a sweep: ``{job number: {"overrides", "pid", "host", "result"?, "value"?}}``.

    A job writes its record when it starts and adds ``result`` ("ok" or "failed") when it ends; a
    record without a result is a job that died with its process (SIGKILL, out of memory, a crash).
    """
    import json

    jobs = {}
    for path in sorted(Path(sweep_dir, JOBS_DIR).glob("*.json")):
        try:
            jobs[int(path.stem)] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return jobs


def job_names(jobs: dict[int, dict], among: dict[int, dict] | None = None) -> str:
    """``#1 (seed=1), #2 (seed=2)``: each job by its number and the overrides that set it apart from
    the other jobs of the sweep (``among``, default ``jobs``)."""
    among = list((among or jobs).values())
    common = set.intersection(*(set(j.get("overrides", [])) for j in among)) if len(among) > 1 else set()
    return ", ".join(f"#{n} ({' '.join(o for o in job.get('overrides', []) if o not in common)})"
                     for n, job in sorted(jobs.items()))


def _write_job(config: DictConfig, record: dict) -> None:
    write_job(config.hydra.sweep.dir, config.hydra.job.num, record)


def write_job(sweep_dir, num: int, record: dict) -> None:
    """Write job ``num``'s record (see :func:`read_jobs`)."""
    import json

    folder = Path(sweep_dir) / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{num}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # a reader never sees half a record


def _in_multirun(config: DictConfig) -> bool:
    from hydra.types import RunMode

    return OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN


class SweepCallback(Callback):
    """Hydra callback: one MLflow parent run per multirun, its children linked by ``mlflow.parentRunId``.

    Every job leaves a record in the sweep dir (:func:`read_jobs`), so jobs that failed before
    their MLflow run existed, or died with their process, are counted too. At the end it records
    how many jobs there were and how many failed or died, the best Optuna parameters when there
    are any, and ends the parent FINISHED (FAILED when a job failed).
    """

    def __init__(self):
        self.parent_id = None
        self.client = None
        self._dir_lock = None
        self._finished = False

    def __getstate__(self):  # Hydra hands its callbacks to joblib's workers: the lock stays here
        return {**self.__dict__, "client": None, "_dir_lock": None}

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # Hydra turns an exception raised here into a warning and runs the jobs anyway, unlinked and
        # uncounted (and exits 0 when they all fail): a sweep without its parent run stops here.
        try:
            self._start(config)
        except Exception as e:  # noqa: BLE001 - whatever it is, the sweep cannot be recorded
            self._fail(config, e, "the sweep's MLflow parent run could not be created, no job was started")

    def _start(self, config: DictConfig) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._dir_lock = hold_sweep_dir(sweep_dir)
        client, experiment_id = connect(config.tracking)
        overrides = list(config.hydra.overrides.task)
        run = client.create_run(experiment_id, run_name=f"sweep {' '.join(overrides)}"[:250],
                                tags={"glyphlab.sweep": "parent", "overrides": " ".join(overrides),
                                      "sweeper": config.hydra.sweeper._target_.rsplit(".", 1)[-1],
                                      "launcher": config.hydra.launcher._target_.rsplit(".", 1)[-1],
                                      "sweep_dir": str(config.hydra.sweep.dir), **process_tags()})
        self.client, self.parent_id = client, run.info.run_id
        # Jobs in other processes (joblib) or on other machines sharing the sweep dir (Slurm) read it
        # here; jobs that cannot see the sweep dir get GLYPHLAB_PARENT_RUN_ID in their environment.
        (sweep_dir / PARENT_FILE).write_text(self.parent_id)
        shutil.rmtree(sweep_dir / JOBS_DIR, ignore_errors=True)  # an earlier sweep's records in this folder
        atexit.register(self._finish, config, True)  # the sweep crashed before on_multirun_end

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if _in_multirun(config):  # runs in the job's own process (a joblib worker, a Slurm node)
            self._job = {"overrides": list(config.hydra.overrides.task), "pid": os.getpid(),
                         "host": socket.gethostname()}
            _write_job(config, self._job)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        import math

        from hydra.core.utils import JobStatus

        if not _in_multirun(config):
            return
        value = job_return._return_value
        # A failed job returns NaN (experiment.main) so the sweep goes on; Hydra calls it COMPLETED.
        ok = job_return.status == JobStatus.COMPLETED and not (isinstance(value, float) and math.isnan(value))
        record = {**getattr(self, "_job", {}), "result": "ok" if ok else "failed"}
        if ok and isinstance(value, (int, float)):
            record["value"] = float(value)
        _write_job(config, record)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self._finish(config, False)

    def _finish(self, config: DictConfig, crashed: bool) -> None:
        if self.parent_id is None or self._finished:
            return
        self._finished = True
        jobs = read_jobs(config.hydra.sweep.dir)
        died = {n: j for n, j in jobs.items() if "result" not in j}
        n_failed_jobs = sum(j.get("result") == "failed" for j in jobs.values()) + len(died)
        try:
            mark_dead_runs(self.client)  # the runs of jobs that died with their process
            children = self.client.search_runs(
                [self.client.get_run(self.parent_id).info.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}'", max_results=10000)
            # Records count the jobs that never got a run; runs count jobs whose records the sweep
            # cannot see (a launcher on other machines without the shared sweep dir).
            n_jobs = max(len(jobs), len(children))
            n_failed = max(n_failed_jobs, sum(r.info.status != "FINISHED" for r in children))
            self._log_counts(len(children), n_jobs, n_failed, len(died))
            results = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
            if results.exists():  # written by the Optuna sweeper
                best = OmegaConf.load(results)
                for key, value in (best.get("best_params") or {}).items():
                    self.client.log_param(self.parent_id, f"best.{key}", value)
                if best.get("best_value") is not None:
                    self.client.log_metric(self.parent_id, "best/val_accuracy", float(best.best_value))
            self._end("FAILED" if n_failed or crashed else "FINISHED")
        except Exception as e:  # noqa: BLE001 - the store went away during the sweep
            with _quick_requests():  # one more try, not another round of retries
                self._end("FAILED")
            self._fail(config, e, f"the sweep's MLflow parent run {self.parent_id} could not be completed",
                       exit_now=not crashed)
            return
        if n_failed:
            line = f"glyphlab: {n_failed} of {n_jobs} sweep jobs failed"
            if died:
                line += f"; died with their process (killed, out of memory or crashed): {job_names(died, jobs)}"
            print(f"{line}; see the parent run {self.parent_id} in MLflow", file=sys.stderr)
            # The other jobs ran to the end and are logged; the exit status still tells a script
            # (or CI) that the sweep is incomplete.
            if not crashed:
                raise SystemExit(1)

    def _log_counts(self, n_children, n_jobs, n_failed, n_died) -> None:
        for key, value in (("sweep/n_children", n_children), ("sweep/n_jobs", n_jobs),
                           ("sweep/n_failed", n_failed), ("sweep/n_died", n_died)):
            self.client.log_metric(self.parent_id, key, value)

    @staticmethod
    def _fail(config, error: Exception, what: str, exit_now: bool = True) -> None:
        """One line on stderr (the traceback too with debug=true), exit 2: Hydra would only warn."""
        if config.get("debug") or os.environ.get("HYDRA_FULL_ERROR") == "1":
            import traceback

            traceback.print_exception(error)
        reason = str(error) if isinstance(error, TrackingError) else f"{type(error).__name__}: {error}"
        uri = "" if isinstance(error, TrackingError) else f" ({tracking_uri(config.tracking)})"
        print(f"glyphlab: error: {what}{uri}: {reason.splitlines()[0] if reason else type(error).__name__}",
              file=sys.stderr)
        if exit_now:
            raise SystemExit(2) from None

    def _end(self, status: str) -> None:
        if self.parent_id is None:
            return
        try:
            if self.client.get_run(self.parent_id).info.status == "RUNNING":
                self.client.set_terminated(self.parent_id, status)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
