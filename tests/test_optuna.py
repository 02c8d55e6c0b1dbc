"""glyphlab's Optuna sweeper (hydra_plugins.glyphlab_optuna_sweeper, Optuna >= 4): Hydra's sweep syntax,
pruning from the per-epoch val/accuracy, and a study that resumes from its storage.

(The children / parent / best-params grouping of an Optuna sweep is tested in test_sweeps.py.)
"""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from helpers import all_runs, cli

TINY_TRIAL = ["data.samples_per_class=12", "data.image_size=16", "trainer.max_epochs=2", "++model.max_epochs=2",
              "trainer.enable_progress_bar=false", "tracking.log_model=false"]


def test_sweep_syntax_becomes_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from glyphlab.hparams_search import search_space

    params = OmegaConf.create({"model.optimizer.lr": "tag(log, interval(0.0003, 0.01))",
                               "model.net.dropout": "interval(0.0, 0.5)",
                               "model.net.hidden_sizes": "choice([128], [256, 128])",
                               "model.batch_size": "range(32, 129, 32)",
                               "model.net.hidden": "choice(64, 128)"})
    space, fixed = search_space(params, ["model=mlp", "model.net.hidden=96", "~model.scheduler"])
    assert space == {"model.optimizer.lr": FloatDistribution(0.0003, 0.01, log=True),
                     "model.net.dropout": FloatDistribution(0.0, 0.5),
                     "model.net.hidden_sizes": CategoricalDistribution(["[128]", "[256,128]"]),
                     "model.batch_size": IntDistribution(32, 128, step=32)}
    # one value on the command line fixes a searched key: it leaves the space, every trial gets it
    assert fixed == ["model=mlp", "model.net.hidden=96", "~model.scheduler"]


@pytest.mark.slow
def test_pruned_trial_stops_early_and_the_study_resumes(store, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = ["-m", "hparams_search=optuna", *TINY_TRIAL, "hydra.sweeper.n_trials=1",
              f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=resumed"]
    # A pruner that prunes whatever it sees (accuracy never reaches 1.01): the torch trial 0 stops after epoch 0.
    p = cli(*common, "model=mlp", f"hydra.sweep.dir={tmp_path / 'a'}",
            "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "+hydra.sweeper.pruner.lower=1.01",
            "hydra.sweeper.pruner.n_warmup_steps=0", "~hydra.sweeper.pruner.n_startup_trials")
    assert p.returncode == 0, p.stderr[-3000:]
    # The same study again (same storage and study name), a cheaper model, no pruning: it goes on with trial 1.
    p2 = cli(*common, "model=sklearn_mlp", f"hydra.sweep.dir={tmp_path / 'b'}", "hydra.sweeper.pruner=null")
    assert p2.returncode == 0, p2.stderr[-3000:]

    import optuna

    study = optuna.load_study(study_name="resumed", storage=storage)
    pruned, complete = study.trials
    assert pruned.state == optuna.trial.TrialState.PRUNED and list(pruned.intermediate_values) == [0]
    assert complete.state == optuna.trial.TrialState.COMPLETE
    results = OmegaConf.load(tmp_path / "b" / "optimization_results.yaml")
    assert results.n_trials == 2 and results.best_trial == 1 and results.best_value == pytest.approx(complete.value)
    assert OmegaConf.load(tmp_path / "a" / "optimization_results.yaml").best_value is None  # nothing completed

    client, runs = all_runs(store)
    children = {r.data.params["optuna_trial"]: r for r in runs if r.data.tags.get("glyphlab.sweep") != "parent"}
    assert set(children) == {"0", "1"} and all(r.info.status == "FINISHED" for r in children.values())
    assert children["0"].data.tags["optuna.pruned_at_epoch"] == "0"
    assert "optuna.pruned_at_epoch" not in children["1"].data.tags
    assert len(client.get_metric_history(children["0"].info.run_id, "val/accuracy")) == 1  # of 2 epochs

    # The job's run.log holds glyphlab's lines (the pruning, the summary); Lightning's tips are gone.
    log = (tmp_path / "a" / "0" / "run.log").read_text(encoding="utf-8")
    assert "[glyphlab.hparams_search][INFO] - glyphlab: Optuna trial 0 pruned after epoch 0" in log
    assert f"MLflow run {children['0'].info.run_id}" in log and "test/accuracy" in log
    assert "Tip:" not in log and "Tip:" not in p.stdout + p.stderr
