"""``verbose`` (config.yaml): what a run prints besides glyphlab's own lines and the progress bar.

By default the lines and warnings that libraries give and a user cannot act on are held back: MLflow's
and alembic's database creation and migration, Lightning's accelerator and precision lines, and the
few library-internal deprecation warnings listed here. ``verbose=true`` lets them all through. Applied
by :class:`QuietLibraries`, a Hydra callback (config.yaml's ``hydra.callbacks``), in the sweep's process
and in every job's.
"""
from __future__ import annotations

import logging
import re
import warnings

from hydra.experimental.callback import Callback

# MLflow's "Creating initial MLflow database tables…", "Updating database tables" and alembic's migration
# lines while a new store is made (glyphlab's own lines say so).
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic")
# Lightning's rank-zero lines (under both of its package names).
LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")
# Library warnings raised inside library code that no config key changes, by message: any other warning
# (glyphlab's own, a library's about the user's config) still shows.
LIBRARY_WARNINGS = (
    # torch deprecates LeafSpec; Lightning's own _pytree still builds one at every fit
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
)


class DropAcceleratorLines(logging.Filter):
    """Lightning's "GPU available: …", "TPU available: …", "HPU available: …" and "Using bfloat16 Automatic
    Mixed Precision (AMP)": what the trainer config already says. "GPU available but not used" (a warning
    a user can act on) still shows."""

    PATTERN = re.compile(r"(GPU|TPU|HPU|IPU) available: |Using .*Automatic Mixed Precision|LOCAL_RANK: \d+ - ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.PATTERN.match(str(record.msg).lstrip())


def quiet_libraries(verbose: bool = False) -> None:
    """Hold back the library lines and warnings above (``verbose=False``), or let them all through."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, DropAcceleratorLines)]:
            logger.removeFilter(f)
        if not verbose:
            logger.addFilter(DropAcceleratorLines())
    for message, category in LIBRARY_WARNINGS:
        pattern = re.compile(message, re.I)
        warnings.filters[:] = [f for f in warnings.filters if not (f[0] == "ignore" and f[1] == pattern)]
        if not verbose:
            warnings.filterwarnings("ignore", message=message, category=category)


class QuietLibraries(Callback):
    """``verbose`` (config.yaml) applied before anything runs: in the sweep's process (its parent run
    creates the store) and in every job's, whichever launcher's process runs it."""

    def on_run_start(self, config, **kwargs) -> None:
        quiet_libraries(bool(config.get("verbose")))

    def on_multirun_start(self, config, **kwargs) -> None:
        quiet_libraries(bool(config.get("verbose")))

    def on_job_start(self, config, **kwargs) -> None:
        quiet_libraries(bool(config.get("verbose")))
