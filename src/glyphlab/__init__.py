"""glyphlab: run and compare handwritten-character recognition experiments.

One run, top to bottom, is :func:`glyphlab.experiment.run`. This package's import is
kept light (no torch, Lightning or MLflow) so composing a config stays fast.
"""
from __future__ import annotations

import os
from pathlib import Path

from glyphlab import logs

__version__ = "0.1.0"
logs.install_fallback()  # glyphlab's lines reach the console even where no logging is configured


def checkout() -> Path | None:
    """The checkout holding run.py when glyphlab runs from its source; None when installed (``pip install .``)."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "run.py").exists() else None


def project_root() -> Path:
    """The checkout holding run.py (where mlruns/ lives); the working directory otherwise."""
    return checkout() or Path.cwd()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
