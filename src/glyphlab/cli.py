"""The ``glyphlab`` command (``pip install .``; ``python run.py`` and ``python -m glyphlab`` are the same).

    glyphlab model=cnn data=runes                  # one experiment (Hydra overrides, as run.py)
    glyphlab -m model=sklearn_mlp,cnn seed=0,1     # a sweep
    glyphlab compare --experiment glyphlab         # a report from MLflow (also: python -m glyphlab.compare)
    glyphlab predict --model runs:/<id>/model a.png
    glyphlab draw --model runs:/<id>/model
    glyphlab fonts ㄱㄴㄷ                           # which installed fonts cover which characters (data=script)

The configs come from the checkout's ``conf/`` when glyphlab runs from one, else from the copy
installed inside the package (``pkg://glyphlab.conf``, the same files: pyproject maps the package
onto ``conf/``). This module imports nothing heavy, so ``--help`` and ``--cfg`` stay fast.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path

# glyphlab <command> → the module whose main(argv) runs it
COMMANDS = {"compare": "glyphlab.compare", "predict": "glyphlab.predict", "draw": "glyphlab.draw",
            "fonts": "glyphlab.data.script"}
PACKAGED_CONF = "pkg://glyphlab.conf"


def config_path() -> str:
    """The checkout's conf/ when this glyphlab is the checkout's source (editable install), else the packaged one."""
    checkout_conf = Path(__file__).resolve().parents[2] / "conf"
    return str(checkout_conf) if (checkout_conf / "config.yaml").is_file() else PACKAGED_CONF


def _job(cfg) -> float:
    """Hydra's task function: one experiment (each job of a sweep)."""
    from glyphlab import experiment  # imported here so --cfg/--help stay fast

    return experiment.main(cfg)


def run_hydra(conf: str | None = None) -> None:
    """One experiment or a sweep: Hydra reads the overrides from ``sys.argv``."""
    import hydra

    hydra.main(version_base="1.3", config_path=conf or config_path(), config_name="config")(_job)()


def main(argv: list[str] | None = None, conf: str | None = None) -> int | None:
    """``glyphlab [compare|predict|draw|fonts] ARGS``; anything else is an experiment's Hydra command line.

    ``conf``: the config folder (run.py passes the one beside it).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[args[0]])
        return module.main(args[1:])
    if args and args[0].isidentifier():  # a bare word is no Hydra override (key=value, ~key): a mistyped command
        print(f"glyphlab: error: unknown command {args[0]!r}; expected one of {', '.join(COMMANDS)}, or "
              f"overrides key=value (glyphlab --help)", file=sys.stderr)
        return 2
    if argv is not None:  # Hydra parses sys.argv itself
        sys.argv = [sys.argv[0], *args]
    try:
        run_hydra(conf)
    except KeyboardInterrupt as e:  # a sweep that Ctrl-C or SIGTERM stopped (a single run exits in experiment.main)
        from glyphlab.errors import Interrupted

        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        interrupt = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
        if not getattr(interrupt, "reported", False):  # stopped outside a job: between jobs, while composing
            print(f"glyphlab: {interrupt}", file=sys.stderr)
        return 128 + interrupt.signum
    return None


def entry() -> None:
    """The console script: exit with the subcommand's status."""
    sys.exit(main())
