"""Training a torch net with PyTorch Lightning over in-memory tensors.

The whole data set lives in memory as uint8 tensors; batches are taken by index
(:class:`TensorBatches`) instead of per-sample ``__getitem__`` + collate, and are
turned into floats (and augmented, online mode) on the training device.
"""
from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only
import torch
from torch import nn
from torch.nn import functional as F

from glyphlab import phases
from glyphlab.errors import ConfigError, refused
from glyphlab.models import check_scheduler


class TensorBatches:
    """Batches ``(images[idx], labels[idx])`` of whole tensors, reshuffled every pass.

    images uint8 ``[N, H, W]``, labels int64 ``[N]`` or ``[N, P]``. The shuffle order comes
    from a generator seeded once, so a run is reproducible and every epoch differs. One epoch
    is ``passes`` whole passes over the tensors (a small set's epoch is then long enough to be
    worth a validation, see ``model.min_epoch_steps``).

    Under DDP a shuffled (training) stream is shared out: every rank draws the same order and takes
    every world-size-th sample of each batch, so together the ranks step on one batch of
    ``batch_size`` as a single process would. An ordered (validation) stream is not: each rank sees
    all of it, and its val metrics are the whole split's.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 passes: int = 1):
        self.images, self.labels, self.batch_size, self.shuffle = images, labels, batch_size, shuffle
        self.passes = passes
        self.generator = torch.Generator().manual_seed(seed)

    def _share(self) -> tuple[int, int]:
        """(rank, world size) this stream is shared out over: (0, 1) unless shuffled under DDP."""
        if self.shuffle and torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __len__(self):
        world = self._share()[1]
        step = math.ceil(self.batch_size / world) * world
        return self.passes * math.ceil(math.ceil(len(self.images) / world) * world / step)

    def __iter__(self):
        n = len(self.images)
        rank, world = self._share()
        step = math.ceil(self.batch_size / world) * world   # a global batch, whole shares for every rank
        for _ in range(self.passes):
            order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            if world > 1:  # pad with the order's start to whole shares, as DistributedSampler does
                pad = -n % world
                order = torch.cat([order, order.repeat(world)[:pad]])
            for start in range(0, len(order), step):
                idx = order[start:start + step][rank::world]
                # index_select, not images[idx]: advanced indexing of a uint8 [N, H, W] tensor is ~18x
                # slower on CPU (make bench, loader section)
                yield self.images.index_select(0, idx), self.labels.index_select(0, idx)


def logged_metrics(n_positions: int = 1) -> list[str]:
    """The metrics :class:`GlyphClassifier` logs each epoch: what a callback or the plateau schedule may monitor."""
    return ["train/loss", "val/loss", "val/accuracy"] + (["val/digit_accuracy"] if n_positions > 1 else [])


def check_monitors(cfg, n_positions: int = 1) -> None:
    """Every ``monitor`` of the callbacks and of ``model.plateau`` names a metric the model logs: one line
    now instead of Lightning's error after the first epoch."""
    known = logged_metrics(n_positions)
    nodes = [(f"callbacks.{name}", node) for name, node in (cfg.get("callbacks") or {}).items()]
    if cfg.model.get("scheduler") == "plateau":
        nodes.append(("model.plateau", cfg.model.get("plateau") or {}))
    for key, node in nodes:
        monitor = node.get("monitor") if hasattr(node, "get") else None
        if monitor is not None and monitor not in known:
            raise ConfigError(f"{key}.monitor must be a metric the model logs ({', '.join(known)}), got {monitor!r}")


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, H, W]`` → float ``[B, 1, H, W]`` in 0..1."""
    return images.unsqueeze(1).float().div_(255.0)


class GlyphClassifier(pl.LightningModule):
    """Cross-entropy training of ``net``; logs ``train/loss``, ``val/loss`` and ``val/accuracy`` per epoch.

    Position-wise labels (``[B, P]`` with logits ``[B, P, C]``) are handled by flattening the
    positions into the batch (the loss is the mean over every position's head), so one model
    class serves both cases; ``val/accuracy`` then counts whole sequences and
    ``val/digit_accuracy`` single positions.
    """

    def __init__(self, net: nn.Module, optimizer, class_weights: torch.Tensor | None = None,
                 augmenter: nn.Module | None = None, scheduler: str | None = None, plateau: dict | None = None):
        super().__init__()
        check_scheduler(scheduler)
        self.net, self.optimizer_factory, self.augmenter = net, optimizer, augmenter
        self.scheduler, self.plateau = scheduler, dict(plateau or {})
        self.monitor = self.plateau.pop("monitor", "val/accuracy")  # model.plateau.monitor (mode: model.plateau.mode)
        if scheduler == "plateau":  # a key or value ReduceLROnPlateau refuses: one line now, not in the middle of fit
            try:
                self._plateau_schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
            except Exception as e:  # noqa: BLE001
                raise refused("model.plateau", self.plateau, e) from None
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss(self, logits, labels):
        n_classes = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, n_classes), labels.reshape(-1), weight=self.class_weights)

    def on_train_batch_start(self, batch, batch_idx):
        phases.mark("first_step")   # a no-op unless the start-up benchmark asks for it

    def training_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The logits a training step learns from: ``[B, C]``, or ``[K, B, C]`` for K ensemble members."""
        member_logits = getattr(self.net, "member_logits", None)   # model.members > 1: models/ensemble.py
        if member_logits is not None:
            # every member learns from its own loss, each on its own draw of the online augmentation (as
            # separate runs would) and, with model.member_data=own, its own images ([B, K, H, W])
            views = ([to_input(images[:, k]) for k in range(images.shape[1])] if images.ndim == 4
                     else [to_input(images)] * len(self.net.nets))
            return member_logits([self.augmenter(v) for v in views] if self.augmenter is not None else views)
        x = to_input(images)
        if self.augmenter is not None:  # online augmentation: fresh per-sample transforms, train split only
            x = self.augmenter(x)
        return self(x)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        logits = self.training_logits(images)
        if logits.ndim > labels.ndim + 1:  # ensemble members: the loss is their mean
            labels = labels.expand(len(logits), *labels.shape)
        loss = self._loss(logits, labels)
        # sync_dist: under DDP the epoch's loss is averaged over every rank's share (a no-op in one process)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(to_input(images))
        right = (logits.argmax(-1) == labels).reshape(len(labels), -1)   # bool [B, P], P = 1 for single labels
        self.log("val/loss", self._loss(logits, labels), on_epoch=True, batch_size=len(labels))
        # Whole samples: a sequence counts only when every position is right (as test/accuracy).
        self.log("val/accuracy", right.all(1).float().mean(), on_epoch=True, prog_bar=True, batch_size=len(labels))
        if right.shape[1] > 1:
            self.log("val/digit_accuracy", right.float().mean(), on_epoch=True, batch_size=len(labels))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler is None:
            return optimizer
        if self.scheduler == "plateau":
            # plateau: the learning rate is cut (× factor) when val/accuracy has not improved for `patience`
            # epochs, so the schedule follows the run's real length: a set that keeps improving trains on at
            # the full rate, one that has stalled fine-tunes at a lower one before early stopping ends it
            # (a cosine over max_epochs would still be near its start when early stopping ends a run).
            # Stepped after each epoch's validation, on the metric early stopping and the best checkpoint watch.
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self._plateau_schedule(optimizer),
                                                             "monitor": self.monitor, "interval": "epoch"}}
        # cosine: the learning rate falls from its configured value to 0 over all of training, step
        # by step, so the last epochs fine-tune instead of bouncing around at the full rate.
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _plateau_schedule(self, optimizer):
        """``model.plateau`` (ReduceLROnPlateau's arguments: patience, factor, min_lr ...) on the rising val/accuracy."""
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **{"mode": "max", **self.plateau})


class EpochMetricsToMlflow(pl.Callback):
    """Logs the epoch's ``train/*`` and ``val/*`` metrics and the learning rate it ended with
    (``train/lr``, the first parameter group's) to the active MLflow run, step = epoch."""

    def on_train_epoch_end(self, trainer, module):
        import mlflow

        if trainer.sanity_checking or not trainer.is_global_zero:  # DDP: rank 0 holds the run
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith(("train/", "val/")) and v.numel() == 1}
        if trainer.optimizers:
            metrics["train/lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        if metrics:
            mlflow.log_metrics(metrics, step=trainer.current_epoch)


class ExtraMetricsToMlflow(pl.loggers.Logger):
    """The Trainer's logger: hands what other callbacks log through Lightning (e.g. LearningRateMonitor's
    ``lr-AdamW``, step = optimizer steps) to the active MLflow run. glyphlab's own ``train/*`` and
    ``val/*`` metrics are left to :class:`EpochMetricsToMlflow` (step = epoch), so none is logged twice."""

    @property
    def name(self):
        return "mlflow"

    @property
    def version(self):
        return None

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        pass  # the run's config is already its MLflow params

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        import mlflow

        extra = {k: float(v) for k, v in metrics.items() if k != "epoch" and not k.startswith(("train/", "val/"))}
        if extra and mlflow.active_run() is not None:
            mlflow.log_metrics(extra, step=step)


class CheckpointOnInterrupt(pl.Callback):
    """Saves ``path`` when training stops on an exception (Ctrl-C, SIGTERM, a crash), to resume with
    ``ckpt_path=``. Not Lightning's ``OnExceptionCheckpoint``: with that one in the callbacks,
    ``fit(ckpt_path=None)`` silently resumes from a checkpoint left in the same folder by an
    earlier run; a glyphlab run resumes only when ``ckpt_path`` says so."""

    def __init__(self, path):
        self.path = str(path)

    def on_exception(self, trainer, module, exception):
        trainer.save_checkpoint(self.path)


class WeightAverage(pl.Callback):
    """The uniform mean of the weights at the end of every training epoch from ``start`` on (stochastic
    weight averaging, Izmailov et al. 2018; SWAD, Cha et al. 2021, for data unlike the training set),
    kept instead of the best validation epoch (:func:`glyphlab.models.training.keep_best`), with the
    BatchNorm statistics recomputed for the mean weights on a pass over the training batches.

    Not Lightning's ``WeightAveraging``: that one validates the averaged weights, so early stopping and the
    plateau schedule would watch the average instead of the weights being trained. Its sums go into
    every checkpoint, so a resumed run averages the same epochs an unbroken one does.
    """

    def __init__(self, start: int = 2):
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise ValueError(f"start must be an epoch index >= 0, got {start!r}")
        self.start, self.n, self.sums = start, 0, {}

    def on_train_epoch_end(self, trainer, module):
        if trainer.sanity_checking or trainer.current_epoch < self.start:
            return
        for name, value in module.state_dict().items():
            if value.is_floating_point():
                value = value.detach().to("cpu", torch.float64)
                self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.n += 1

    def state_dict(self):
        return {"start": self.start, "n": self.n, "sums": self.sums}

    def load_state_dict(self, state):
        self.start, self.n, self.sums = state["start"], state["n"], state["sums"]

    @torch.no_grad()
    def load_mean(self, module, batches) -> None:
        """Put the mean weights into ``module`` and recompute its BatchNorm statistics over ``batches``
        (one pass over the training batches, augmented as in training)."""
        state = module.state_dict()
        for name, total in self.sums.items():
            state[name].copy_(total / self.n)
        norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None          # a plain mean over the pass, not a running one
        module.train()
        for images, _ in batches:   # in float32, as the kept net reads images (predict_proba)
            module.training_logits(images.to(module.device))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        module.eval()


@torch.no_grad()
def predict_proba(net: nn.Module, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class probabilities, float32 ``[N, C]`` (or ``[N, P, C]``), for uint8 images ``[N, H, W]``."""
    net.eval()
    device = next(net.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = to_input(torch.from_numpy(images[start:start + batch_size]).to(device))
        out.append(torch.softmax(net(x), dim=-1).cpu())
    return torch.cat(out).numpy()
