"""What a sweep shows while it runs and when it ends: a line per finished job, then the comparison.

    [3/18] cnn runes seed=1 → 0.996 (14 s)

The lines come from the job records in the sweep folder (:mod:`glyphlab.tracking.jobs`), which every
job writes wherever it runs: in the sweep's own process (the basic launcher), in joblib's workers, in
submitit or Ray processes. The sweep process reads them (:class:`Progress`), so it numbers the jobs in
the order they finish, whatever the launcher. At the end of the sweep, :func:`report` prints the
comparison table of ``glyphlab compare`` for the sweep's children and logs ``report.md`` and
``accuracy.png`` (and ``confusion_matrices.png``) on the parent run.
"""
from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from pathlib import Path

from omegaconf import DictConfig

POLL_S = 0.5  # how often the sweep process looks for jobs that finished in other processes

log = logging.getLogger("glyphlab.sweep")


def sweep_logger() -> logging.Logger:
    """The sweep process's own logger: bare lines on the console, whatever logging its jobs set up.

    Jobs of the basic launcher run in the sweep's process and configure the ``glyphlab`` logger for
    themselves (their run.log); the sweep's lines must not land in whichever job's log came last.
    """
    from glyphlab.logs import ConsoleHandler

    if not any(isinstance(h, ConsoleHandler) for h in log.handlers):
        log.addHandler(ConsoleHandler())
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def swept_values(config: DictConfig) -> dict[str, int] | None:
    """How many values each key of the sweep's overrides takes (a preset's ``hydra.sweeper.params``,
    then the command line's, which win), as Hydra's basic sweeper reads them; None when they cannot
    be read without Hydra's config loader (a glob over a config group)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        counts = {}
        for o in OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task]):
            n = len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
            counts[o.get_key_element().lstrip("+~")] = n
    except Exception:  # noqa: BLE001
        return None
    return counts


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep will run: the product of the swept values (Hydra's basic sweeper), the
    number of trials (Optuna), None when it cannot tell (another sweeper, a sweep it cannot parse)."""
    sweeper = config.hydra.sweeper
    if "optuna" in str(sweeper.get("_target_", "")).lower():
        return int(sweeper.n_trials) if sweeper.get("n_trials") else None
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    counts = swept_values(config)
    return math.prod(counts.values()) if counts is not None else None


def fixed_keys(config: DictConfig) -> set[str]:
    """The override keys every job of the sweep has with the same value: left out of its line."""
    counts = swept_values(config) or {}
    return {key for key, n in counts.items() if n == 1} | {"model", "data"}  # these two lead the line


def job_outcome(started: float) -> dict:
    """What a job's record adds when it ends (in the job's process): when it ended, how long it took
    and, when the job got an MLflow run of its own, the run's id and test accuracy."""
    import mlflow

    outcome = {"ended": time.time(), "seconds": round(time.time() - started, 1)}
    try:
        run = mlflow.last_active_run()
    except Exception:  # noqa: BLE001 - the store went away: the line has no accuracy
        return outcome
    # The last run of this process may be an earlier job's (one that failed before its run existed
    # runs after it in the same process under the basic launcher and in a reused joblib worker).
    if run is not None and run.info.start_time >= (started - 1) * 1000:
        outcome["run_id"] = run.info.run_id
        if "test/accuracy" in run.data.metrics:
            outcome["test_accuracy"] = run.data.metrics["test/accuracy"]
    return outcome


class Progress:
    """Writes ``[n/total] model data overrides → accuracy (time)`` once per finished job, in the sweep's
    process: from a thread that watches the job records, and at once from :meth:`poll` (called when
    a job ends in this very process, so its line comes before the next job's output)."""

    def __init__(self, sweep_dir, total: int | None, fixed_keys):
        self.sweep_dir, self.total, self.fixed = Path(sweep_dir), total, set(fixed_keys)
        self.shown: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="glyphlab-sweep-progress", daemon=True)

    def start(self) -> "Progress":
        sweep_logger()
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - progress lines never stop a sweep
                pass

    def poll(self, final: bool = False) -> None:
        """Show the jobs that finished since the last look; ``final``: also those that never will
        (records without a result: the job died with its process)."""
        from glyphlab.tracking.jobs import read_jobs

        with self._lock:
            for num, job in sorted(read_jobs(self.sweep_dir).items(), key=lambda j: j[1].get("ended", 0)):
                if num not in self.shown and ("result" in job or final):
                    self.shown.add(num)
                    log.info(self.line(job))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.poll(final=True)

    def line(self, job: dict) -> str:
        total = max(self.total or 0, len(self.shown))
        count = f"[{len(self.shown)}/{total}]" if total else f"[{len(self.shown)}]"
        named = [job[k] for k in ("model", "data") if job.get(k)]
        shown = [o for o in job.get("overrides", []) if o.split("=", 1)[0].lstrip("+~") not in self.fixed]
        if "result" not in job:
            outcome = "died with its process"
        elif job["result"] == "interrupted":
            outcome = "interrupted"
        elif job["result"] != "ok":
            outcome = "failed"
        elif "test_accuracy" in job:
            outcome = f"{job['test_accuracy']:.3f}"
        else:
            outcome = "done"
        took = f" ({job['seconds']:.0f} s)" if "seconds" in job else ""
        return f"{count} {' '.join(named + shown)} → {outcome}{took}"


def report(client, parent_id: str, config: DictConfig) -> None:
    """Print the sweep's comparison table (``glyphlab compare --parent``) and log report.md,
    accuracy.png and confusion_matrices.png on the parent run. Never fails the sweep."""
    from glyphlab.compare import find_runs
    from glyphlab.report import write_report

    try:
        runs, chosen = find_runs(client, parent=parent_id)
        if not any(r.info.status == "FINISHED" for r in runs):
            log.warning("glyphlab: no sweep job finished: no comparison table")
            return
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"sweep_{parent_id[:8]}"
            text = write_report(client, runs, chosen, out, f"glyphlab compare --parent {parent_id}")
            for name in ("report.md", "accuracy.png", "confusion_matrices.png"):
                if (out / name).exists():
                    client.log_artifact(parent_id, str(out / name))
    except Exception as e:  # noqa: BLE001 - the jobs ran and are logged; the report is a bonus
        log.warning(f"glyphlab: the sweep's comparison report failed: {type(e).__name__}: {e}")
        return
    log.info(f"\n{text}\n(report.md and accuracy.png on the sweep's parent run {parent_id}; "
             f"again any time: glyphlab compare --parent {parent_id})")
