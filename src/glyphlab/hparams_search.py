"""Optuna sweeps (``-m hparams_search=optuna``): the sweeper's loop and the job's side of a trial.

The sweeper (Hydra plugin ``hydra_plugins.glyphlab_optuna_sweeper``) asks Optuna for trials,
turns each into a Hydra job whose overrides are the trial's values plus ``optuna_trial=<number>``,
and tells Optuna what the job returned (the validation accuracy). The study's storage is named
in ``<sweep dir>/optuna_study.yaml``, so a job in any process (joblib, submitit) can open its trial:
:class:`OptunaPruning` reports ``val/accuracy`` after every epoch and ends training early when the
pruner says the trial will not catch up; the sweeper then records the trial as PRUNED.

Storage: ``hydra.sweeper.storage`` (e.g. ``sqlite:///optuna.db``: the study resumes when a sweep with
the same ``study_name`` runs again), else a journal file in the sweep folder (one sweep, any process).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# The sweep process's lines read like Hydra's own ([HYDRA] ...); the job's (pruning) are glyphlab's.
log = logging.getLogger("hydra_plugins.glyphlab_optuna_sweeper")
job_log = logging.getLogger(__name__)

STUDY_FILE = "optuna_study.yaml"
JOURNAL = "optuna.journal"
PRUNED_ATTR = "pruned_at_epoch"


# --- the sweeper's side ------------------------------------------------------------------------------

def distribution(override) -> Any:
    """An Optuna distribution for a sweep override (``choice``, ``interval``, ``range``); None for one value."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    if override.is_range_sweep() and not value.shuffle:
        values = list(override.sweep_iterator())
        if values and all(isinstance(v, int) for v in values) and len(values) > 1:
            step = values[1] - values[0]
            if step > 0 and values == list(range(values[0], values[-1] + 1, step)):
                return IntDistribution(values[0], values[-1], step=step)
    if override.is_choice_sweep() or override.is_range_sweep():
        # encoded: a list choice like [256,128] becomes the string a Hydra override takes back
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    raise ValueError(f"{override.input_line}: the Optuna sweeper takes choice(), interval(), range() or one value")


def search_space(params: DictConfig | None, arguments: list[str]) -> tuple[dict, list[str]]:
    """(key → distribution, overrides every trial gets). A key given one value on the command line
    is fixed: it leaves the search space."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    space, fixed = {}, {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        dist = None if override.is_delete() else distribution(override)
        if dist is None:
            space.pop(key, None)
            fixed[key] = override.input_line
        else:
            fixed.pop(key, None)
            space[key] = dist
    return space, list(fixed.values())


def open_storage(study: dict):
    """The Optuna storage a study file names: its URL, or the sweep's journal file."""
    if study.get("storage"):
        return study["storage"]
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(study["journal"]))


def run_study(launcher, config: DictConfig, arguments: list[str], *, direction: str, study_name: str | None,
              storage: str | None, n_trials: int, n_jobs: int, sampler: Any, pruner: Any,
              params: DictConfig | None) -> list:
    import optuna

    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    # Optuna keeps no pruner in the storage: the jobs build the sweep's own from this file.
    pruner_node = OmegaConf.select(config, "hydra.sweeper.pruner")
    study_spec = {"study_name": study_name or "glyphlab", "storage": storage,
                  "journal": None if storage else str((sweep_dir / JOURNAL).resolve()),
                  "pruner": OmegaConf.to_container(pruner_node, resolve=True) if pruner_node is not None else None}
    OmegaConf.save(OmegaConf.create(study_spec), sweep_dir / STUDY_FILE)
    space, fixed = search_space(params, arguments)
    study = optuna.create_study(study_name=study_spec["study_name"], storage=open_storage(study_spec),
                                sampler=built(sampler), pruner=built(pruner) or optuna.pruners.NopPruner(),
                                direction=direction, load_if_exists=True)
    done_before = len(study.get_trials(deepcopy=False))
    log.info(f"Optuna study {study.study_name} ({done_before} trials before this sweep), storage "
             f"{storage or study_spec['journal']}: {n_trials} trials of {', '.join(space) or 'nothing'}")
    returns, job_idx = [], 0
    while job_idx < n_trials:
        trials = [study.ask(space) for _ in range(min(n_jobs, n_trials - job_idx))]
        overrides = [(*fixed, *(f"{k}={v}" for k, v in t.params.items()), f"optuna_trial={t.number}")
                     for t in trials]
        batch = launcher.launch(overrides, initial_job_idx=job_idx)
        job_idx += len(batch)
        for trial, ret in zip(trials, batch):
            tell(study, trial.number, ret)
        returns.append(batch)
    write_results(study, sweep_dir, done_before)
    return returns


def built(node):
    """A sampler or pruner: Hydra builds the sweeper's ``_target_`` nodes itself; a plain node is built here."""
    from hydra.utils import instantiate

    return instantiate(node) if isinstance(node, (dict, DictConfig)) else node


def tell(study, number: int, ret) -> None:
    """Record a finished job: PRUNED when its run stopped on the pruner's word, FAIL when it failed."""
    from optuna.trial import TrialState

    try:
        value = float(ret.return_value)  # a job that raised re-raises here
    except Exception as e:  # noqa: BLE001 - the job's error was logged by the job itself
        log.warning(f"trial {number} failed: {type(e).__name__}: {e}")
        value = math.nan
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if PRUNED_ATTR in trial.user_attrs:
        study.tell(number, state=TrialState.PRUNED)
    elif math.isnan(value):
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, value)


def write_results(study, sweep_dir: Path, done_before: int) -> None:
    """``optimization_results.yaml`` (the sweep callback puts its best params on the parent run)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)[done_before:]
    counts = {s.name: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.FAIL)}
    results: dict = {"name": "optuna", "study_name": study.study_name, "n_trials": len(study.trials),
                     "this_sweep": counts}
    try:
        best = study.best_trial
        results.update(best_params=best.params, best_value=best.value, best_trial=best.number)
        log.info(f"Best of {len(study.trials)} trials: {best.value:.4f} (trial {best.number}) with {best.params}")
    except ValueError:  # no trial completed (all pruned or failed)
        results.update(best_params={}, best_value=None)
        log.info("No trial completed: no best parameters")
    log.info("This sweep: " + ", ".join(f"{n} {s.lower()}" for s, n in counts.items()))
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")


# --- the job's side ----------------------------------------------------------------------------------

def open_trial(sweep_dir: str | Path, number: int):
    """The running trial ``number`` of the sweep's study (from any process that sees the sweep folder)."""
    import optuna

    spec = OmegaConf.to_container(OmegaConf.load(Path(sweep_dir) / STUDY_FILE))
    storage = optuna.storages.get_storage(open_storage(spec))
    pruner = built(spec["pruner"]) if spec.get("pruner") else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=spec["study_name"], storage=storage, pruner=pruner)
    study_id = storage.get_study_id_from_name(spec["study_name"])
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


try:
    from pytorch_lightning import Callback
except ImportError:  # the sweeper's process of an sklearn-only install: no torch job to prune
    Callback = object


class OptunaPruning(Callback):
    """Lightning callback: report ``monitor`` to the job's Optuna trial after every validation epoch and
    stop training when the pruner prunes the trial (the run then ends normally, tagged ``optuna.pruned_at_epoch``).

    ``trial`` None (a run outside an Optuna sweep): does nothing.
    """

    def __init__(self, trial: int | None = None, sweep_dir: str | None = None, monitor: str = "val/accuracy"):
        self.number, self.sweep_dir, self.monitor = trial, sweep_dir, monitor
        self._trial = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.number is None or trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        if self._trial is None:
            self._trial = open_trial(self.sweep_dir, int(self.number))
        epoch = trainer.current_epoch
        self._trial.report(float(trainer.callback_metrics[self.monitor]), step=epoch)
        if self._trial.should_prune():
            import mlflow

            self._trial.set_user_attr(PRUNED_ATTR, epoch)
            if mlflow.active_run() is not None:
                mlflow.set_tag("optuna.pruned_at_epoch", epoch)
            job_log.info(f"glyphlab: Optuna trial {self.number} pruned after epoch {epoch}: "
                     f"{self.monitor} {float(trainer.callback_metrics[self.monitor]):.4f}")
            trainer.should_stop = True
