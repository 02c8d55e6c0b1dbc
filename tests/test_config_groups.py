"""Every option of every config group composes (real Hydra composition) and what it names is built.

Nets are built and run on a batch, estimators and optimizers constructed, augmentations applied,
callbacks and Trainers instantiated; data builders that need no files are run on a few samples per
class, the others have their `_target_` imported and their keys bound to its signature. A new
option in conf/ is covered by being there.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import ROOT, compose


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))


def test_every_group_folder_is_covered_here():
    groups = {p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name not in ("hydra", "__pycache__")}
    assert groups == {"augmentation", "callbacks", "data", "eval_data", "experiment", "handwriting", "hparams_search",
                      "model", "tracking", "trainer"}, "a new config group needs its check (handwriting: test_handwriting.py)"


def small(spec: dict) -> dict:
    """A data option shrunk to a few samples per class at 16 px (keys it has only)."""
    out = dict(spec, image_size=16) if "image_size" in spec else dict(spec)
    for key, value in (("samples_per_class", 3), ("n_train", 20), ("n_val", 10), ("n_test", 10)):
        if key in out:
            out[key] = value
    return out


@pytest.mark.slow
@pytest.mark.parametrize("group,name", [("data", n) for n in options("data")] +
                         [("eval_data", n) for n in options("eval_data")])
def test_data_option_builds_or_binds(group, name, tmp_path):
    from hydra.utils import get_method

    from glyphlab import data

    cfg = compose([f"{group}={name}"])
    spec = OmegaConf.to_container(cfg[group], resolve=True)
    assert spec["name"] == name
    builder = data.builder_config(spec)
    signature = inspect.signature(get_method(builder.pop("_target_")))
    signature.bind(**builder)                                  # every key is an argument of the builder
    root = signature.parameters.get("root")
    needs_files = (root is not None and root.default is inspect.Parameter.empty) or "download" in signature.parameters
    if group == "data" and not needs_files:
        glyphs = data.load(small(spec), cache_dir=None)
        assert len(glyphs) > 0 and glyphs.image_size == small(spec).get("image_size", glyphs.image_size)


@pytest.mark.parametrize("name", options("model"))
def test_model_option_builds_its_model(name, tmp_path):
    from glyphlab import models
    from glyphlab.data import GlyphSet

    cfg = compose([f"model={name}"])
    family = models.family(cfg.model.adapter)
    family.check_config(cfg)
    glyphs = GlyphSet(np.zeros((6, 16, 16), np.uint8), np.arange(6) % 3, ["a", "b", "c"])
    if hasattr(family, "build_net"):
        import torch
        from hydra.utils import instantiate

        net = family.build_net(cfg, glyphs)
        assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 3)
        assert instantiate(cfg.model.optimizer)(net.parameters()).param_groups
    elif "estimator" in cfg.model:  # an sklearn estimator; another family is checked by its check_config alone
        from hydra.utils import instantiate

        assert hasattr(instantiate(cfg.model.estimator, _convert_="all"), "partial_fit")


@pytest.mark.parametrize("name", options("augmentation"))
def test_augmentation_option_builds_and_runs(name):
    import torch

    from glyphlab import augment

    cfg = compose([f"augmentation={name}"])
    augmenter = augment.build_augmenter(cfg.augmentation)
    if augmenter is None:
        assert name == "none"
        return
    x = torch.rand(4, 1, 16, 16)
    y = augmenter(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1


@pytest.mark.parametrize("name", options("callbacks"))
def test_callbacks_option_instantiates(name, tmp_path):
    import pytorch_lightning as pl

    from glyphlab.models.training import build_callbacks

    callbacks = build_callbacks(compose([f"callbacks={name}"]).callbacks, tmp_path)
    assert callbacks and all(isinstance(c, pl.Callback) for c in callbacks)


@pytest.mark.parametrize("name", options("trainer"))
def test_trainer_option_instantiates(name, tmp_path):
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    cfg = compose([f"trainer={name}", "trainer.accelerator=cpu"])   # this machine may have no GPU
    if cfg.trainer.get("strategy") == "ddp":
        cfg = compose([f"trainer={name}", "trainer.accelerator=cpu", "trainer.devices=1"])
    from glyphlab.models.training import resolve_precision

    precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)   # `auto` is glyphlab's, as in a run
    trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(tmp_path), enable_progress_bar=False,
                          precision=precision)
    assert isinstance(trainer, pl.Trainer) and trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("name", options("tracking"))
def test_tracking_option_names_a_store(name, monkeypatch):
    from glyphlab.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = compose([f"tracking={name}"])
    assert "://" in tracking_uri(cfg.tracking) and cfg.tracking.experiment


@pytest.mark.parametrize("name", [n for n in options("experiment") if n != "read_real"])  # single run: test_read_real.py
def test_experiment_preset_composes_every_value_of_its_grid(name):
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    grid = cfg.hydra.sweeper.params
    assert grid, f"+experiment={name} sweeps nothing"
    for key, values in grid.items():
        for value in str(values).split(","):
            composed = compose([f"+experiment={name}", f"{key}={value.strip()}"])
            if key == "model":
                assert composed.model.name == value.strip()


@pytest.mark.parametrize("name", options("hparams_search"))
def test_hparams_search_keys_exist_in_their_model(name):
    cfg = compose([f"hparams_search={name}"])
    for model, space in cfg.search_space.items():
        composed = compose([f"model={model}"])
        for key in space:
            assert OmegaConf.select(composed, key) is not None, f"{name}: {model} has no {key}"


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "conf" / "hydra" / "launcher").glob("*.yaml")))
def test_launcher_option_names_an_importable_launcher(name):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import MissingConfigException
    from hydra.utils import get_class

    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
    except MissingConfigException as e:  # the launcher's Hydra plugin is an optional install
        pytest.skip(f"hydra/launcher={name}: its plugin is not installed ({str(e).splitlines()[0]})")
    assert get_class(cfg.hydra.launcher._target_)


@pytest.mark.parametrize("overrides,expected", [
    (["data=digits"], "rotate"),                              # the data option's own pick
    (["data=digits", "augmentation=none"], "none"),           # the command line wins
    (["data=digits", "+experiment=read_real"], "heavy"),      # so does a preset
    (["data=runes"], "none"),                                 # the others keep the global default
])
def test_a_data_option_may_choose_its_augmentation(overrides, expected):
    assert compose(overrides).augmentation.name == expected
