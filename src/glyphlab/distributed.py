"""Lightning DDP under Hydra: one MLflow run and one output folder per experiment, however many
processes train it.

``trainer=ddp`` uses Lightning's ``ddp`` strategy: rank 0 is this process, and Lightning starts
ranks 1..n-1 by running the same script again with ``LOCAL_RANK`` set (torchrun and multi-node
launches set ``RANK`` / ``NODE_RANK``, Slurm ``SLURM_PROCID``). It is the strategy Lightning
recommends, on CPU (gloo) as on GPUs, and nothing has to be pickled. ``ddp_spawn`` would avoid the
re-run by running only ``fit`` in fresh processes, but it pickles the module, the trainer and the
in-memory data over to them (here it fails at start with ``ValueError: bad value(s) in
fds_to_keep``), rank 0's epoch metrics would be logged from a process without the MLflow run, and
Lightning advises against it for its slower start.

Two things make the re-run script fit glyphlab:

- a process of rank ≥ 1 trains and nothing else (:func:`train_only`): the same data, the same
  Trainer, its share of every batch; rank 0 alone creates the MLflow run, logs, evaluates and
  saves the model.
- inside a multirun, Lightning would run the whole sweep again (``sys.argv`` holds ``-m`` and every
  swept value) into a new folder; :class:`DDPSweepJobs` makes it run this one job, in this job's
  folder, and starts the next job's training afresh.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write


def is_rank_zero() -> bool:
    """False in a process that a distributed launch started for a rank ≥ 1, from the variables the
    launcher set: ``LOCAL_RANK`` (Lightning's re-launch), ``NODE_RANK``, ``RANK`` (torchrun),
    ``SLURM_PROCID`` (a Slurm task)."""
    return all(int(os.environ.get(name) or 0) == 0 for name in ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID"))


def train_only(cfg: DictConfig) -> float:
    """Rank ≥ 1: build the training inputs exactly as rank 0 does and join its ``Trainer.fit``.

    No MLflow run is created and nothing is logged here (rank 0 does that); returns NaN.
    """
    from glyphlab import augment
    from glyphlab import data as datasets
    from glyphlab import models
    from glyphlab.data import extra
    from glyphlab.steps import limit_threads, member_views, seed_everything, training_class_weights

    family = models.family(cfg.model.adapter)
    limit_threads(cfg.get("threads"), with_torch=True)
    seed_everything(cfg.seed)
    glyphs = datasets.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=cfg.cache_dir)
    glyphs = extra.add_drawings(glyphs, cfg.data, cfg.split.val, cfg.split.test, cfg.seed)
    train, val, _ = datasets.split(glyphs, cfg.split.val, cfg.split.test, cfg.seed)
    # inflate returns online-mode data unchanged: the same arrays rank 0's augmented_train yields
    x_train, y_train = augment.inflate(glyphs.images[train], glyphs.labels[train], cfg.augmentation, cfg.seed)
    x_train = member_views(cfg, family, glyphs, train, x_train)
    with tempfile.TemporaryDirectory() as tmp:
        family.fit(cfg, glyphs, x_train, y_train, val, training_class_weights(cfg, y_train, glyphs.n_classes), Path(tmp))
    return float("nan")


class DDPSweepJobs(Callback):
    """Hydra callback: each multirun job that trains with DDP is a distributed training of its own.

    - Lightning starts rank k ≥ 1 as ``python run.py <sys.argv[1:]> hydra.run.dir=<hydra.run.dir>``;
      in a multirun that is the whole sweep again, into a new folder. For the job's duration
      ``sys.argv`` holds the job's own overrides and ``hydra.run.dir`` the job's folder: rank k is a
      plain run of this job that writes beside it (its ``train_ddp_process_k.log``).
    - After the job, its process group is closed and the variables Lightning set in this process
      (``LOCAL_RANK``, ``MASTER_PORT``, ...) are restored: left set, the next job would take its
      ranks for started elsewhere and wait on the last job's ranks, which are gone.

    For jobs that the basic launcher runs one after the other in this process; other launchers'
    workers are not started from ``run.py``, so Lightning cannot re-launch them.
    """

    ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

    def __init__(self):
        self._argv, self._env = None, None

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        if hydra.mode != RunMode.MULTIRUN:
            return
        self._argv, self._env = sys.argv, {name: os.environ.get(name) for name in self.ENV}
        sys.argv = [sys.argv[0], *hydra.overrides.task]
        with read_write(hydra.run):
            hydra.run.dir = hydra.runtime.output_dir

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if self._argv is None:
            return
        if "torch" in sys.modules and sys.modules["torch"].distributed.is_available() \
                and sys.modules["torch"].distributed.is_initialized():
            sys.modules["torch"].distributed.destroy_process_group()
        for name, value in self._env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.argv, self._argv, self._env = self._argv, None, None
