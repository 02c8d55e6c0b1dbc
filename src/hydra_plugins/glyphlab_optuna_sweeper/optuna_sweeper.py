"""glyphlab's Optuna sweeper for Hydra: ``hydra/sweeper=glyphlab_optuna`` (what ``hparams_search=optuna`` selects).

Why not hydra-optuna-sweeper: 1.3 pins optuna<3 and cannot prune; this one asks and tells a current
Optuna (≥ 4) and lets each job report its per-epoch ``val/accuracy`` to its trial, so that Optuna's
pruner stops unpromising trials early. Hydra's sweep syntax is kept: ``choice(...)``, ``interval(a, b)``,
``tag(log, interval(a, b))``, ``range(...)``, one value to fix a key.

This module is imported by Hydra's plugin scan at every start, so it holds only the config and a
thin class; the work (and the Optuna import) is in :mod:`glyphlab.hparams_search`.
"""
# (No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.)
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.glyphlab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    direction: str = "maximize"          # of the value the job returns
    study_name: Optional[str] = None
    storage: Optional[str] = None        # e.g. sqlite:///optuna.db: resumable; null: a journal file in the sweep folder
    n_trials: int = 20                   # trials this sweep adds to the study
    n_jobs: int = 1                      # trials asked and launched at once (a parallel launcher runs them together)
    sampler: Dict[str, Any] = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    pruner: Optional[Dict[str, Any]] = field(default_factory=lambda: {"_target_": "optuna.pruners.NopPruner"})
    params: Optional[Dict[str, str]] = None   # key → Hydra sweep syntax


ConfigStore.instance().store(group="hydra/sweeper", name="glyphlab_optuna", node=OptunaSweeperConf,
                             provider="glyphlab")


class OptunaSweeper(Sweeper):
    """Asks Optuna for ``n_jobs`` trials at a time, launches them as Hydra jobs, tells Optuna their values."""

    def __init__(self, direction: str, study_name: Optional[str], storage: Optional[str], n_trials: int,
                 n_jobs: int, sampler: Any, pruner: Any, params: Optional[DictConfig]) -> None:
        self.settings = dict(direction=direction, study_name=study_name, storage=storage, n_trials=n_trials,
                             n_jobs=n_jobs, sampler=sampler, pruner=pruner, params=params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)

    def sweep(self, arguments: List[str]) -> Any:
        from glyphlab.hparams_search import run_study

        return run_study(self.launcher, self.config, arguments, **self.settings)
