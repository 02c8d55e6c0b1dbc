"""The record each job of a sweep leaves in the sweep folder, wherever it runs (the sweep's process,
a joblib worker, a Slurm node): written when it starts, completed when it ends. The sweep counts
its jobs from them, the joblib launcher names the jobs that died, the progress lines read them.
"""
from __future__ import annotations

import os
from pathlib import Path

JOBS_DIR = ".glyphlab-jobs"


def read_jobs(sweep_dir) -> dict[int, dict]:
    """The job records of a sweep: ``{job number: {"overrides", "pid", "host", "result"?, "value"?}}``.

    A job writes its record when it starts and adds ``result`` ("ok", "failed", or "interrupted" by Ctrl-C /
    SIGTERM) when it ends; a record without a result is a job that died with its process (SIGKILL, out of
    memory, a crash).
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


def write_job(sweep_dir, num: int, record: dict) -> None:
    """Write job ``num``'s record (see :func:`read_jobs`)."""
    import json

    folder = Path(sweep_dir) / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{num}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # a reader never sees half a record
