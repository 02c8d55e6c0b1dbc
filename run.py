"""glyphlab's entry point in a checkout: `python run.py model=cnn data=runes` (see README.md).

The same as the installed `glyphlab` command, reading the configs beside this file: its @hydra.main
app is glyphlab.cli.run_hydra (the comment also lets Hydra's bash completion recognise this file).
"""
from pathlib import Path

from glyphlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(conf=str(Path(__file__).resolve().parent / "conf")))
