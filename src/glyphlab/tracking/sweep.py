"""One MLflow parent run per Hydra multirun (:class:`SweepCallback`) and the sweep directory it
shares with its jobs: the parent run's id (a file, so jobs in other processes or on other machines
find it), the lock that keeps one sweep per folder, and each job's record (started, ok, failed)."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from glyphlab.errors import Interrupted, TrackingError
from glyphlab.tracking import progress
from glyphlab.tracking.jobs import JOBS_DIR, job_names, read_jobs, write_job
from glyphlab.tracking.liveness import mark_dead_runs, process_tags
from glyphlab.tracking.store import connect, quick_requests, tracking_uri

PARENT_FILE = ".mlflow_parent_run_id"


def interrupt_name(signum) -> str:
    """"interrupted by Ctrl-C (SIGINT)" / "interrupted by SIGTERM" (without a run)."""
    return str(Interrupted(int(signum))) if signum else "interrupted"


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


def job_interrupted(interrupt) -> None:
    """Complete this job's record as interrupted (Ctrl-C or SIGTERM in the job's own process): the sweep
    then ends its parent run KILLED and says so, instead of counting a job that died with its process."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    record = read_jobs(hydra.sweep.dir).get(hydra.job.num, {})
    write_job(hydra.sweep.dir, hydra.job.num,
              {**record, "result": "interrupted", "signal": interrupt.signum,
               **progress.job_outcome(record.get("started", time.time()))})


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


def _write_job(config: DictConfig, record: dict) -> None:
    write_job(config.hydra.sweep.dir, config.hydra.job.num, record)


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
        self._progress = None  # the line per finished job, shown by the sweep's own process

    def __getstate__(self):  # Hydra hands its callbacks to joblib's workers: the lock stays here
        return {**self.__dict__, "client": None, "_dir_lock": None, "_progress": None}

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
        self._progress = progress.Progress(sweep_dir, progress.sweep_size(config),
                                           progress.fixed_keys(config)).start()

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if _in_multirun(config):  # runs in the job's own process (a joblib worker, a Slurm node)
            self._job = {"overrides": list(config.hydra.overrides.task), "pid": os.getpid(),
                         "host": socket.gethostname(), "started": time.time(),
                         "model": OmegaConf.select(config, "model.name"), "data": OmegaConf.select(config, "data.name")}
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
        record.update(progress.job_outcome(record.get("started", time.time())))
        _write_job(config, record)
        if self._progress is not None:  # the job ran in the sweep's own process (basic launcher): its line now
            self._progress.poll()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self._finish(config, False)

    def _finish(self, config: DictConfig, crashed: bool) -> None:
        if self.parent_id is None or self._finished:
            return
        self._finished = True
        if self._progress is not None:
            self._progress.stop()  # the last lines, and the jobs that died
        jobs = read_jobs(config.hydra.sweep.dir)
        died = {n: j for n, j in jobs.items() if "result" not in j}
        interrupted = {n: j for n, j in jobs.items() if j.get("result") == "interrupted"}
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
            if not crashed:
                progress.report(self.client, self.parent_id, config)
            results = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
            if results.exists():  # written by the Optuna sweeper
                best = OmegaConf.load(results)
                for key, value in (best.get("best_params") or {}).items():
                    self.client.log_param(self.parent_id, f"best.{key}", value)
                if best.get("best_value") is not None:
                    self.client.log_metric(self.parent_id, "best/val_accuracy", float(best.best_value))
            self._end("KILLED" if interrupted else "FAILED" if n_failed or crashed else "FINISHED")
        except Exception as e:  # noqa: BLE001 - the store went away during the sweep
            with quick_requests():  # one more try, not another round of retries
                self._end("FAILED")
            self._fail(config, e, f"the sweep's MLflow parent run {self.parent_id} could not be completed",
                       exit_now=not crashed)
            return
        if interrupted:  # the job itself said which run ended KILLED; this says what became of the sweep
            total = self._progress.total if self._progress is not None and self._progress.total else n_jobs
            n_ok = sum(j.get("result") == "ok" for j in jobs.values())
            signum = next(iter(interrupted.values())).get("signal")
            print(f"glyphlab: sweep {interrupt_name(signum)} in job {', '.join(f'#{n}' for n in interrupted)} after {n_ok} of "
                  f"{total} jobs finished; the parent run {self.parent_id} ended KILLED", file=sys.stderr)
        elif n_failed:
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
