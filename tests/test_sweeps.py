"""Sweeps: one MLflow parent run per multirun with its children; Optuna; presets; threads per job.

The joblib launcher's grouping (jobs in other processes) is tested against a tracking server in
test_server.py.
"""
from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf

from helpers import ROOT, TINY_ANY, cli, compose, parent_and_children


def sweep(tmp_path, *args):
    p = cli("-m", *args, *TINY_ANY, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def by_job(children):
    return {(r.data.tags["model"], r.data.tags["seed"]): r for r in children}


@pytest.mark.slow
def test_basic_launcher_groups_four_children(store, tmp_path):
    sweep(tmp_path, "model=sklearn_mlp,cnn", "seed=0,1")
    client, parent, children = parent_and_children(store)
    jobs = by_job(children)
    assert set(jobs) == {("sklearn_mlp", "0"), ("sklearn_mlp", "1"), ("cnn", "0"), ("cnn", "1")}
    assert all(r.data.tags["data"] == "runes" and r.data.tags["augmentation"] == "none" for r in children)
    tags = parent.data.tags
    assert tags["launcher"] == "BasicLauncher" and tags["sweeper"] == "BasicSweeper"
    assert "model=sklearn_mlp,cnn seed=0,1" in tags["overrides"]
    assert parent.info.run_name.startswith("sweep model=sklearn_mlp,cnn seed=0,1")
    # Repeats: the seed drives the split (a different test set) and the initialisation.
    for model in ("sklearn_mlp", "cnn"):
        a, b = jobs[(model, "0")], jobs[(model, "1")]
        assert a.data.params["seed"] == "0" and b.data.params["seed"] == "1"
        assert a.data.metrics["val/final_accuracy"] != b.data.metrics["val/final_accuracy"] or \
            a.data.metrics["test/accuracy"] != b.data.metrics["test/accuracy"]


@pytest.mark.slow
def test_optuna_trials_are_children_and_best_params_on_parent(store, tmp_path):
    sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2", "model=sklearn_mlp")
    client, parent, children = parent_and_children(store)
    assert len(children) == 2 and parent.data.tags["sweeper"] == "OptunaSweeper"
    best = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    searched = {"model.estimator.learning_rate_init", "model.estimator.hidden_layer_sizes", "model.estimator.alpha"}
    assert set(best.best_params) == searched
    assert {k for k in parent.data.params} == {f"best.{k}" for k in searched}
    assert parent.data.metrics["best/val_accuracy"] == pytest.approx(
        max(r.data.metrics["val/final_accuracy"] for r in children))
    # every trial ran with its own sampled values
    assert len({r.data.params["model.estimator.alpha"] for r in children}) == 2


@pytest.mark.parametrize("model", ["cnn", "mlp", "sklearn_mlp"])
def test_optuna_search_space_follows_the_model(model):
    cfg = compose(["hparams_search=optuna", f"model={model}"], hydra=True)
    params = cfg.hydra.sweeper.params
    assert cfg.hydra.sweeper.direction == "maximize" and len(params) == 3
    for key in params:  # every searched key exists in the chosen model's config
        assert OmegaConf.select(cfg, key, default="absent") != "absent", key
    assert any("log" in v for v in params.values())


def test_mlp_vs_cnn_preset():
    cfg = compose(["+experiment=mlp_vs_cnn"], hydra=True)
    assert dict(cfg.hydra.sweeper.params) == {"model": "sklearn_mlp,mlp,cnn", "augmentation": "none,rotate",
                                              "seed": "0,1,2"}
    assert cfg.data.name == "runes" and cfg.tracking.experiment == "mlp_vs_cnn"


# Study presets sweep; read_real is a single-run recipe (tests/test_read_real.py).
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml") if p.stem != "read_real")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_with_every_value_it_sweeps(preset):
    cfg = compose([f"+experiment={preset}"], hydra=True)
    assert cfg.tracking.experiment != "glyphlab", "a study logs into its own MLflow experiment"
    params = dict(cfg.hydra.sweeper.params)
    assert params
    for key, values in params.items():
        for value in values.split(","):
            chosen = compose([f"+experiment={preset}", f"{key}={value}"], hydra=True)
            got = chosen[key].name if isinstance(chosen[key], DictConfig) else chosen[key]
            assert str(got) == value, (preset, key, value)


def test_limit_threads():
    import torch

    from glyphlab.errors import ConfigError
    from glyphlab.steps import limit_threads

    before = torch.get_num_threads()
    try:
        assert limit_threads(1) == 1 == torch.get_num_threads()
        assert limit_threads(None) == 1  # outside a joblib sweep: left as it is
        with pytest.raises(ConfigError, match="threads must be at least 1"):
            limit_threads(0)
    finally:
        torch.set_num_threads(before)
