"""``hydra/launcher=ray``: every job of a sweep is a Ray task, on this machine or on a Ray cluster.

Written on Ray's own API rather than taken from ``hydra-ray-launcher``: that plugin (1.2.2) pins
``cloudpickle<3``, which holds joblib (≥ 1.6 needs cloudpickle ≥ 3, and scikit-learn and the joblib
launcher need joblib) back to 1.5, and pulls ``ray[default]`` and boto3 for its AWS launcher. This
one needs plain ``ray`` (the ``ray`` extra) and does what the plugin's local launcher does: load each
job's config, run it with Hydra's ``run_job`` in a task that reserves ``ray.remote`` resources, and
wait for them all.

Config (conf/hydra/launcher/ray.yaml): ``ray.init`` is passed to ``ray.init`` (``address: null``
starts a Ray for the sweep, or joins the one ``ray start`` runs here; ``auto``, ``host:port`` or
``ray://host:10001`` join a cluster), ``ray.remote`` to ``ray.remote`` for every job (``num_cpus``:
the cores a job reserves, and the torch/BLAS threads glyphlab gives it). A Ray this launcher started
is shut down when the sweep's jobs are done.
"""
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def _run_job(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: Dict[Any, Any]) -> JobReturn:
    """One job, inside its Ray task (a worker process that may have run other jobs before)."""
    import ray
    from hydra.core.hydra_config import HydraConfig

    setup_globals()
    Singleton.set_state(singleton_state)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = ray.get_runtime_context().get_task_id()
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


class RayLauncher(Launcher):
    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray  # here, not at the top: Hydra imports every plugin module at start-up

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        started = not ray.is_initialized()
        if started:
            ray.init(**OmegaConf.to_container(self.ray_cfg.init, resolve=True))
        log.info(f"Ray launcher: {len(job_overrides)} jobs on {ray.cluster_resources().get('CPU', 0):g} CPUs, "
                 f"sweep output dir {sweep_dir}")
        try:
            task = ray.remote(**OmegaConf.to_container(self.ray_cfg.remote, resolve=True))(_run_job)
            pending = []
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.num = idx
                pending.append(task.remote(self.hydra_context, sweep_config, self.task_function,
                                           Singleton.get_state()))
            return ray.get(pending)
        finally:
            if started:
                ray.shutdown()
