"""A first run prints glyphlab's lines, the progress bar and the summary; ``verbose=true`` adds the library
lines held back (MLflow's database setup, Lightning's accelerator lines)."""
from __future__ import annotations

import logging
import re
import warnings

import pytest

from helpers import cli

# `python run.py model=cnn data=runes`, small, into a new store (its creation is what MLflow talks about)
FIRST_RUN = ["model=cnn", "data=runes", "data.samples_per_class=24", "data.image_size=16", "trainer.max_epochs=2"]
HELD_BACK = ["Creating initial MLflow database tables", "Updating database tables", "GPU available",
             "TPU available", "HPU available", "Automatic Mixed Precision", "is deprecated"]


def first_run(tmp_path, *extra):
    p = cli(*FIRST_RUN, *extra, f"hydra.run.dir={tmp_path / 'out'}",
            env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
                 "GLYPHLAB_CACHE": str(tmp_path / "cache")})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "test/accuracy" in p.stdout  # the summary
    return [line.strip() for line in re.split(r"[\r\n]+", p.stdout + "\n" + p.stderr) if line.strip()]


@pytest.mark.slow
def test_a_first_run_prints_no_library_lines_unless_verbose(tmp_path):
    lines = first_run(tmp_path / "quiet")
    noise = [line for line in lines if any(s in line for s in HELD_BACK)
             or re.match(r"\[?\d{4}[-/]\d\d[-/]\d\d", line)  # a library's logging record: time-stamped
             or re.search(r"Warning\b|warn\(", line)]
    assert not noise, "\n".join(noise)

    verbose = "\n".join(first_run(tmp_path / "verbose", "verbose=true"))
    for held in ("Updating database tables", "GPU available", "TPU available"):
        assert held in verbose, verbose[-3000:]


def test_quiet_libraries_filters_by_message_and_verbose_undoes_it():
    from glyphlab.verbosity import LIBRARY_WARNINGS, QUIET_LOGGERS, DropAcceleratorLines, quiet_libraries

    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with warnings.catch_warnings():
        try:
            quiet_libraries(verbose=False)
            quiet_libraries(verbose=False)  # twice: still one filter each
            assert all(logging.getLogger(name).level == logging.WARNING for name in QUIET_LOGGERS)
            assert sum(isinstance(f, DropAcceleratorLines) for f in lightning.filters) == 1
            drop = DropAcceleratorLines()
            record = logging.LogRecord("x", logging.INFO, "", 0, "GPU available: False, used: False", None, None)
            warned = logging.LogRecord("x", logging.WARNING, "", 0, "GPU available but not used.", None, None)
            assert not drop.filter(record) and drop.filter(warned)
            with warnings.catch_warnings(record=True) as seen:
                warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use …", FutureWarning)
                warnings.warn("something else is deprecated", FutureWarning)  # any other warning still shows
            assert [str(w.message) for w in seen] == ["something else is deprecated"]
            assert len(LIBRARY_WARNINGS) >= 1
        finally:
            quiet_libraries(verbose=True)
        assert all(logging.getLogger(name).level == logging.NOTSET for name in QUIET_LOGGERS)
        assert not any(isinstance(f, DropAcceleratorLines) for f in lightning.filters)
