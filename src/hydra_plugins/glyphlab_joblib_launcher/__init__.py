"""``hydra/launcher=joblib`` for glyphlab: Hydra's joblib launcher, surviving the death of a worker.

When one of joblib's (loky's) worker processes dies (kill -9, the out-of-memory killer, a
segfault), loky stops the whole pool and the plain launcher aborts the sweep with a traceback: the
jobs that were running stay RUNNING in MLflow and the jobs not yet started never run. This one
reports the jobs that were running as failed (NaN, glyphlab's mark of a failed job; their runs are
ended KILLED by the sweep's callback), and runs the jobs not yet started on a fresh pool.
Which jobs had started it learns from the job records glyphlab's sweep callback writes
(``glyphlab.tracking.read_jobs``). Hydra loads launchers only from the ``hydra_plugins`` package,
hence this module's place; it takes over the plugin's ``joblib`` option (same options, see below).
"""

import logging
import time
from pathlib import Path
from typing import Dict, Sequence, Tuple

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

log = logging.getLogger(__name__)


def _numbered(idx: int, *args) -> Tuple[int, JobReturn]:
    from hydra_plugins.hydra_joblib_launcher import _core

    return idx, _core.execute_job(idx, *args)


class SurvivingJoblibLauncher(JoblibLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.hydra_joblib_launcher import _core  # joblib: imported only when launching
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import BrokenProcessPool

        from glyphlab.tracking import job_names, read_jobs, write_job

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        joblib_cfg = dict(self.joblib, backend="loky")  # as the plain launcher: threads do not work with Hydra
        _core.process_joblib_cfg(joblib_cfg)
        log.info(f"Joblib.Parallel({','.join(f'{k}={v}' for k, v in joblib_cfg.items())}) is launching "
                 f"{len(job_overrides)} jobs")
        log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")

        pending = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}
        returns: Dict[int, JobReturn] = {}
        stalls = 0  # pools lost in a row with no job started: a worker that dies before any job runs
        while pending:
            try:  # a snapshot of pending: Parallel dispatches lazily while finished jobs leave pending
                for idx, ret in Parallel(**joblib_cfg, return_as="generator_unordered")(
                        delayed(_numbered)(idx, overrides, self.hydra_context, self.config, self.task_function,
                                           Singleton.get_state()) for idx, overrides in list(pending.items())):
                    returns[idx] = ret
                    del pending[idx]
            except BrokenProcessPool as e:  # a worker died; loky has stopped the others with it
                records = read_jobs(sweep_dir)
                lost = {idx: records[idx] for idx in pending if idx in records}
                stalls = 0 if lost else stalls + 1
                if stalls:  # the new pool broke before a job started: give loky a moment to clean up
                    time.sleep(stalls)
                if stalls >= 3:  # it would go on dying (or no records are written): give the rest up
                    lost = {idx: {"overrides": pending[idx]} for idx in pending}
                    for idx, record in lost.items():  # recorded without a result: counted as died
                        write_job(sweep_dir, idx, {**record, "pid": None, "host": None})
                for idx, record in lost.items():
                    # "value": it finished just before the pool went down; NaN: it died, or had failed
                    returns[idx] = JobReturn(overrides=pending.pop(idx), status=JobStatus.COMPLETED,
                                             _return_value=record.get("value", float("nan")))
                log.warning(f"worker process died ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                            f"lost job(s) {job_names(lost, records or lost)}"
                            + (f"; running the {len(pending)} job(s) not yet started" if pending else ""))
        return [returns[initial_job_idx + i] for i in range(len(job_overrides))]


@dataclass
class SurvivingJoblibLauncherConf(JobLibLauncherConf):
    _target_: str = "hydra_plugins.glyphlab_joblib_launcher.SurvivingJoblibLauncher"


# Replaces the plugin's own `joblib` node (registered when its module was imported above): the user
# still types hydra/launcher=joblib, with joblib.Parallel's options as before.
ConfigStore.instance().store(group="hydra/launcher", name="joblib", node=SurvivingJoblibLauncherConf,
                             provider="glyphlab")
