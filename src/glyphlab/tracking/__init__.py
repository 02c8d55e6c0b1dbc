"""MLflow: where the store is, one run per experiment, and one parent run per sweep.

Default store: ``sqlite:///<repo>/mlruns/mlflow.db`` with artifacts in ``<repo>/mlruns/``,
whatever Hydra's working directory. ``tracking.uri`` or ``MLFLOW_TRACKING_URI`` point
elsewhere (another SQLite file, a tracking server). A sweep's parent run id is handed to
its jobs through a file in the sweep directory, so jobs in other processes or on other
machines (joblib, submitit, ray) find it without an in-process active-run stack.

``store`` opens the store, ``runs`` runs one experiment's run (``inputs``: its data sets as MLflow
inputs), ``sweep`` holds the sweep's parent run, ``jobs`` the records its jobs leave, ``progress``
the sweep's lines and report, ``liveness`` ends the runs of processes that died. The public names
of store, runs, sweep, jobs and liveness are importable from here (``glyphlab.tracking.SweepCallback``
is the Hydra callback's ``_target_``); its error, :class:`glyphlab.errors.TrackingError`, lives with the others.
"""
from glyphlab.tracking.jobs import JOBS_DIR, job_names, read_jobs, write_job
from glyphlab.tracking.liveness import HOST_TAG, PID_START_TAG, PID_TAG, mark_dead_runs, process_tags
from glyphlab.tracking.runs import flatten, git_commit, run_name, start_run
from glyphlab.tracking.store import (HTTP_DEFAULTS, connect, existing_store, quiet_progress_bars, sqlite_path,
                                     store_note, tracking_uri)
from glyphlab.tracking.sweep import PARENT_FILE, SweepCallback, hold_sweep_dir, sweep_parent_id

__all__ = ["HOST_TAG", "HTTP_DEFAULTS", "JOBS_DIR", "PARENT_FILE", "PID_START_TAG", "PID_TAG", "SweepCallback",
           "connect", "existing_store", "flatten", "git_commit", "hold_sweep_dir", "job_names",
           "mark_dead_runs", "process_tags", "quiet_progress_bars", "read_jobs", "run_name", "sqlite_path",
           "start_run", "store_note", "sweep_parent_id", "tracking_uri", "write_job"]
