"""The few-shot study: how many of your own drawings a model needs, with and without synthesis.

    python experiments/few_shot/extract.py $OMNIGLOT $STORE/folders        # the drawers' folders, once
    python experiments/few_shot/study.py base ALPHABET                      # the read_real model (seed 0), logged
    python experiments/few_shot/study.py zero                               # k = 0: that model on the held-out drawers
    python experiments/few_shot/study.py cell ROW ALPHABET K DRAW [override ...]   # one run, one line of results.tsv
    python experiments/few_shot/study.py report                             # README table + few_shot.png

ROW is ``synth`` (the read_real recipe on the synthetic set plus the k drawers' drawings, data.extra_root),
``finetune`` (the base read_real model fine-tuned on the k drawings alone, model.init_from) or ``real``
(the read_real recipe on the k drawings alone). Every run is tested on the draw's 10 held-out drawers
(eval_data=folder). ``synth`` takes the data option's ``data.extra_rewrites`` (``auto`` since session 25; the
synth rows of sessions 13-24 were made at 0, the default then: pass ``data.extra_rewrites=0`` to repeat them).
env: STORE (default /tmp/fewshot: MLflow store, folders, logs), OMNIGLOT (for base),
GLYPHLAB_SRC (a snapshot of the code, e.g. a git worktree, default this checkout). Results are appended
to experiments/few_shot/results.tsv.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODE = Path(os.environ.get("GLYPHLAB_SRC", HERE.parents[1]))
STORE = Path(os.environ.get("STORE", "/tmp/fewshot"))
RESULTS = Path(os.environ.get("RESULTS", HERE / "results.tsv"))
URI = f"sqlite:///{STORE / 'mlflow.db'}"
KATAKANA = "アイウエオカキクコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン"
SYNTHETIC = {"latin": ["data=latin", "data.charset=lower"], "greek": ["data=greek"],
             "katakana": ["data=kana", f"data.charset='{KATAKANA}'"]}
OMNIGLOT_EVAL = {"latin": ["eval_data.alphabet=Latin"], "greek": ["eval_data.alphabet=Greek"],
                 "katakana": ["eval_data.alphabet='Japanese_(katakana)'"]}
COMMON = ["+experiment=read_real", "trainer.enable_progress_bar=false", f"tracking.uri={URI}"]
# The drawings alone (finetune, real): a 26-image validation split would stretch both patiences ~4x
# (model.patience_val_images), so they are as written, and the budget is capped.
FOLDER_ONLY = ["model.patience_val_images=null", "trainer.max_epochs=30", "tracking.log_model=false"]
# data=kana draws at 48 px (its option's image_size); the drawings alone are read at the base model's size.
IMAGE_SIZE = {"latin": 32, "greek": 32, "katakana": 48}
COLUMNS = ["row", "alphabet", "k", "draw", "eval_accuracy", "fit_s", "extra_train", "n_train", "run_id"]


def folder(alphabet: str, draw: int, part: str) -> Path:
    return STORE / "folders" / alphabet / f"draw{draw}" / part


def run(args: list[str], log: Path) -> str:
    """``run.py ARGS`` on the code snapshot; returns its output (also in ``log``)."""
    env = dict(os.environ, PYTHONPATH=str(CODE / "src"), PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, str(CODE / "run.py"), *args], env=env, capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"failed ({log}): {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout + done.stderr


def base_uri(alphabet: str) -> str:
    """The logged read_real model of ``alphabet`` (the newest base run)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(URI)
    experiment = client.get_experiment_by_name("few_shot_base")
    runs = client.search_runs([experiment.experiment_id], f"params.`data.name` = '{SYNTHETIC[alphabet][0][5:]}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return f"runs:/{runs[0].info.run_id}/model"


def base(alphabet: str) -> None:
    """The read_real model of one alphabet, seed 0, tested on all 20 drawers (Omniglot), logged."""
    omniglot = os.environ["OMNIGLOT"]
    out = run([*SYNTHETIC[alphabet], "eval_data=omniglot", f"eval_data.root={omniglot}", *OMNIGLOT_EVAL[alphabet],
               *COMMON, "seed=0", "tracking.experiment=few_shot_base"], STORE / "logs" / f"base-{alphabet}.log")
    print(re.search(r"eval/accuracy [0-9.]+", out).group(0))


def cell(name: str, alphabet: str, k: int, draw: int, extra: list[str]) -> None:
    """One run of the table, appended to results.tsv. ``name``: a row, or ``row:variant`` for a variant
    of a row (its overrides in ``extra``), recorded under that name."""
    row = name.split(":")[0]
    train = folder(alphabet, draw, f"k{k}")
    args = ["eval_data=folder", f"eval_data.root={folder(alphabet, draw, 'heldout')}", *COMMON, f"seed={draw}",
            "tracking.experiment=few_shot", "tracking.log_model=false"]
    if row == "synth":  # synth:init — the same, starting from the base model's weights
        init = [f"model.init_from={base_uri(alphabet)}"] if name == "synth:init" else []
        drawings = [f"data.extra_root={train}"] if k > 0 else []   # k = 0: the read_real recipe alone
        args = [*SYNTHETIC[alphabet], *drawings, *init, *args]
    elif row in ("finetune", "real"):
        # a stratified split needs a val and a test image per class: k = 5 keeps 3 per class for training
        split = ["split.val=0.2", "split.test=0.2"] if k < 7 else []
        init = [f"model.init_from={base_uri(alphabet)}"] if row == "finetune" else []
        args = ["data=folder", f"data.root={train}", f"data.image_size={IMAGE_SIZE[alphabet]}", *split, *init,
                *args, *FOLDER_ONLY]
    else:
        raise SystemExit(f"unknown row {row}: synth, finetune or real")
    out = run([*args, *extra], STORE / "logs" / f"{name.replace(':', '-')}-{alphabet}-k{k}-d{draw}.log")
    record(name, alphabet, k, draw, out)


def record(row: str, alphabet: str, k: int, draw: int, out: str) -> None:
    from mlflow.tracking import MlflowClient

    run_id = re.search(r"MLflow run ([0-9a-f]+)", out).group(1)
    metrics = MlflowClient(URI).get_run(run_id).data.metrics
    values = [row, alphabet, k, draw, f"{metrics['eval/accuracy']:.4f}", f"{metrics['time/fit_s']:.0f}",
              int(metrics.get("data/extra_train", 0)), int(metrics["data/n_train_original"]), run_id]
    line = "\t".join(map(str, values))
    if not RESULTS.exists():
        RESULTS.write_text("\t".join(COLUMNS) + "\n")
    with RESULTS.open("a") as f:
        f.write(line + "\n")
    print(line)


def zero() -> None:
    """k = 0 for every draw: the base model (synthesis only) read on the held-out drawers, read as files
    by the logged pyfunc. Recorded as row synth (and finetune: the model it starts from)."""
    import mlflow
    import numpy as np
    import pandas as pd

    mlflow.set_tracking_uri(URI)
    for alphabet in SYNTHETIC:
        uri = base_uri(alphabet)
        model = mlflow.pyfunc.load_model(uri)
        for draw in range(3):
            files = sorted(folder(alphabet, draw, "heldout").glob("*/*.png"))
            proba = model.predict(pd.DataFrame({"image": [f.read_bytes() for f in files]}))
            read = proba.columns[np.argmax(proba.to_numpy(), axis=1)]
            accuracy = float(np.mean([r == f.parent.name for r, f in zip(read, files)]))
            for row in ("synth", "finetune"):
                with RESULTS.open("a") as f:
                    f.write("\t".join(map(str, [row, alphabet, 0, draw, f"{accuracy:.4f}", 0, 0, 0,
                                                uri.split("/")[1]])) + "\n")
            print(alphabet, draw, f"{accuracy:.4f}")


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["help"]
    if command == "base":
        base(rest[0])
    elif command == "zero":
        zero()
    elif command == "cell":
        cell(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4:])
    elif command == "report":
        from report import report

        report(RESULTS, HERE)
    else:
        print(__doc__)
