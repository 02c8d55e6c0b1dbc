"""glyphlab: run and compare handwritten-character recognition experiments.

One run, top to bottom, is :func:`glyphlab.experiment.run`. This package's import is
kept light (no torch, Lightning or MLflow) so composing a config stays fast.
"""
from pathlib import Path

__version__ = "0.1.0"


def project_root() -> Path:
    """The checkout holding run.py (where mlruns/ lives); the working directory otherwise."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "run.py").exists() else Path.cwd()
