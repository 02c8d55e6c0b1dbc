"""The torch family: ``model.net`` (an ``nn.Module``) trained by a Lightning Trainer (``trainer``) as a
:class:`~glyphlab.models.lit.GlyphClassifier`, logged as its ``state_dict`` plus its constructor arguments.

torch is imported inside the methods: the run sets torch's thread policy before the first import.
"""
from __future__ import annotations

import math
from pathlib import Path

from glyphlab.errors import ConfigError, check_at_least, refused
from glyphlab.models import Family, Fitted, check_scheduler, n_positions


class TorchFamily(Family):
    name = "torch"
    requirements = ("mlflow", "numpy", "pandas", "pillow", "torch")
    online_augmentation = True
    uses_torch = True

    def check_config(self, cfg) -> None:
        check_at_least(cfg.trainer.max_epochs, 1, "trainer.max_epochs")
        check_at_least(cfg.model.batch_size, 1, "model.batch_size")
        check_at_least(cfg.model.get("min_epoch_steps", 0), 0, "model.min_epoch_steps")
        check_at_least(cfg.model.get("patience_val_images") or 0, 0, "model.patience_val_images")
        check_scheduler(cfg.model.get("scheduler"))
        check_at_least(cfg.model.get("members", 1), 1, "model.members")
        check_member_data(cfg)

    def fit(self, cfg, glyphs, x_train, y_train, val, weights, workdir) -> Fitted:
        import torch

        from glyphlab import augment
        from glyphlab.models import training
        from glyphlab.models.lit import GlyphClassifier, predict_proba

        torch.manual_seed(cfg.seed)
        net = self.checked_net(cfg, glyphs)
        if cfg.model.get("init_from"):
            self.load_logged_weights(net, cfg, glyphs, workdir)
        module = GlyphClassifier(net, self.checked_optimizer(cfg),
                                 class_weights=None if weights is None else torch.from_numpy(weights),
                                 augmenter=augment.build_augmenter(cfg.augmentation)
                                 if cfg.augmentation.mode == "online" else None,
                                 scheduler=cfg.model.get("scheduler"), plateau=training.plateau_config(cfg, len(val)))
        train_batches, val_batches, passes = self.batches(cfg, glyphs, x_train, y_train, val)
        metrics, summary = training.train(cfg, module, train_batches, val_batches, len(val), n_positions(glyphs),
                                          workdir)
        metrics.update({"train/passes_per_epoch": passes, "train/steps_per_epoch": len(train_batches)})
        net = module.net.cpu()
        return Fitted(net, sum(p.numel() for p in net.parameters()), lambda images: predict_proba(net, images),
                      metrics, summary)

    def checked_net(self, cfg, glyphs):
        """``model.net`` built for the data and run once on a stand-in batch: a value torch or the net
        refuses (``channels=[0, 8]``) is one line naming its key now, not an error in the middle of fit."""
        import torch

        try:
            net = self.build_net(cfg, glyphs)
            net.eval()
            with torch.no_grad():
                net(torch.zeros(2, 1, *glyphs.images.shape[1:]))
            net.train()
        except Exception as e:  # noqa: BLE001
            raise refused("model.net", cfg.model.net, e) from None
        return net

    @staticmethod
    def checked_optimizer(cfg):
        """``model.optimizer``, a partial, tried now on a stand-in parameter rather than in the middle of fit."""
        import torch
        from hydra.utils import instantiate

        optimizer = instantiate(cfg.model.optimizer)
        try:
            optimizer([torch.zeros(1, requires_grad=True)])
        except Exception as e:  # noqa: BLE001
            raise refused("model.optimizer", cfg.model.optimizer, e) from None
        return optimizer

    @staticmethod
    def batches(cfg, glyphs, x_train, y_train, val):
        """The training and validation streams, and how many passes over the train split make an epoch.

        The budget is counted in optimizer steps, not passes: a small set passes over its data several
        times per epoch, so 8 epochs of 364 images are ~400 steps rather than 24, and early stopping's
        patience and the cosine schedule (over all planned steps) mean the same on every set."""
        import torch

        from glyphlab.models.lit import TensorBatches

        per_pass = math.ceil(len(x_train) / cfg.model.batch_size)
        passes = max(1, round(cfg.model.get("min_epoch_steps", 0) / per_pass))
        train_batches = TensorBatches(torch.from_numpy(x_train), torch.from_numpy(y_train), cfg.model.batch_size,
                                      shuffle=True, seed=cfg.seed, passes=passes)
        val_batches = TensorBatches(torch.from_numpy(glyphs.images[val]), torch.from_numpy(glyphs.labels[val]),
                                    512, shuffle=False)
        return train_batches, val_batches, passes

    def load_logged_weights(self, net, cfg, glyphs, workdir) -> None:
        """``model.init_from``'s weights into ``net`` (:mod:`glyphlab.models.pretrained`). A logged single
        net starts every member of a ``model.members`` ensemble; otherwise the run's ``model.net`` and
        ``model.members`` must build the logged net, else one line says which keys differ."""
        import torch

        from glyphlab.models import pretrained

        uri = cfg.model.init_from
        meta, files = pretrained.fetch(uri, workdir)
        pretrained.check_fits(meta, glyphs, uri, self.name)
        state = torch.load(files["weights"], map_location="cpu", weights_only=True)
        if hasattr(net, "nets") and not any(k.startswith("nets.") for k in state):
            state = {f"nets.{i}.{k}": v for i in range(len(net.nets)) for k, v in state.items()}
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            logged, mine = _net_keys(meta["net"]), _net_keys(self.net_kwargs(cfg, glyphs))
            differ = ", ".join(f"{k} {logged.get(k)} (this run: {mine.get(k)})" for k in sorted({*logged, *mine})
                               if logged.get(k) != mine.get(k)) or str(e).strip().splitlines()[0]
            raise ConfigError(f"model.init_from {uri} is another net than this run's model.net: {differ}; "
                              f"set those keys (model.net.*, model.members) as the logged model has them") from None

    @staticmethod
    def net_kwargs(cfg, glyphs) -> dict:
        """``model.net`` with the data's sizes: the constructor arguments a logged net is rebuilt from."""
        from omegaconf import OmegaConf

        kwargs = {**OmegaConf.to_container(cfg.model.net, resolve=True), "image_size": glyphs.image_size,
                  "n_classes": glyphs.n_classes, "n_positions": n_positions(glyphs)}
        members = cfg.model.get("members", 1)
        if members == 1:
            return kwargs
        # model.members: K nets of model.net in one module, read by their mean probability (models/ensemble.py)
        return {"_target_": "glyphlab.models.ensemble.Ensemble", "member": kwargs.pop("_target_"),
                "members": members, **kwargs}

    def build_net(self, cfg, glyphs):
        from hydra.utils import instantiate

        return instantiate(self.net_kwargs(cfg, glyphs))

    def save(self, model, cfg, glyphs, folder) -> tuple[dict, dict]:
        import torch

        kwargs = self.net_kwargs(cfg, glyphs)
        torch.save(model.state_dict(), Path(folder) / "weights.pt")
        return {"weights": str(Path(folder) / "weights.pt")}, {"net": {"target": kwargs.pop("_target_"),
                                                                      "kwargs": kwargs}}

    def load(self, artifacts: dict, meta: dict):
        import importlib

        import torch

        kwargs = dict(meta["net"]["kwargs"])
        if "member" in kwargs:  # an ensemble of model.members nets
            kwargs["member"] = net_class(kwargs["member"])
        module, _, name = net_class(meta["net"]["target"]).rpartition(".")
        net = getattr(importlib.import_module(module), name)(**kwargs)
        net.load_state_dict(torch.load(artifacts["weights"], map_location="cpu", weights_only=True))
        net.eval()

        def predict_proba(images):
            with torch.inference_mode():
                x = torch.from_numpy(images).unsqueeze(1).float() / 255.0     # [N, 1, S, S] in 0..1
                return torch.softmax(net(x), dim=-1).numpy()
        return predict_proba


# Net classes that moved, as models logged before the move name them in glyph_model.json.
MOVED_NETS = {"glyphlab.models.dense.MLP": "glyphlab.models.mlp.MLP"}


def net_class(target: str) -> str:
    """The importable path of a logged net's class (``target`` in glyph_model.json)."""
    return MOVED_NETS.get(target, target)


def _net_keys(net: dict) -> dict:
    """A net's constructor arguments, flat: ``members`` and ``net`` (the class) beside ``model.net``'s keys."""
    if "kwargs" in net:  # as glyph_model.json stores it: {"target": ..., "kwargs": {...}}
        net = {"_target_": net_class(net["target"]), **net["kwargs"]}
    net = dict(net)
    if net.get("_target_", "").endswith("ensemble.Ensemble"):
        net["_target_"] = net_class(net.pop("member"))
    else:
        net.setdefault("members", 1)
    return {("net" if k == "_target_" else k): v for k, v in net.items()}


MEMBER_DATA = ("shared", "own")


def check_member_data(cfg) -> None:
    """``model.member_data``: shared or own (what own does: :func:`glyphlab.steps.member_views`)."""
    value = cfg.model.get("member_data", "shared")
    if value not in MEMBER_DATA:
        raise ConfigError(f"model.member_data must be one of {', '.join(MEMBER_DATA)}, got {value!r}")
