"""Read the real sets again with test-time views, from the logged models of visible.sh runs (no training).

    python experiments/synth_to_real/tta_screen.py <store>/mlflow.db <study> > tta_views.tsv
    python experiments/synth_to_real/tta_screen.py <store>/mlflow.db <study> script_fonts   # #28's data=script runs

For every FINISHED run of ``params.study = <study>`` in experiment synth_to_real (or the one named; visible.sh with
``tracking.log_model=true``): its logged model (read as the pyfunc reads it, without its views), the real set it was
tested on (eval_data, composed by Hydra as the run composed it, so the same images), and the eval accuracy read through
each view set of ``VIEW_SETS`` by ``glyphlab.models.tta.with_views`` — the reader ``model.tta`` gives the run and its
logged model. Prints ``study set seed views accuracy run's-own-eval-accuracy``; the line of the run's own views
(``none`` for a run without them) must equal the run's own.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KATAKANA = "アイウエオカキクコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン"
SETS = {"latin": ["data=latin", "data.charset=lower", "eval_data=omniglot"],
        "greek": ["data=greek", "eval_data=omniglot", "eval_data.alphabet=Greek"],
        "kana": ["data=kana", f"data.charset='{KATAKANA}'", "eval_data=omniglot",
                 "eval_data.alphabet='Japanese_(katakana)'"],
        "digits_synth": ["data=digits_synth", "eval_data=digits"],
        # data=script (experiments/script_fonts): the run's own charset and Omniglot alphabet
        "script": lambda params: ["data=script", f"data.charset={params['data.charset']}", "eval_data=omniglot",
                                  f"eval_data.alphabet={params['eval_data.alphabet']}"]}
VIEW_SETS = {"none": None,
             "rot7": {"rotations": [-7, 7]}, "rot5": {"rotations": [-5, 5]}, "rot10": {"rotations": [-10, 10]},
             "scale": {"scales": [0.9, 1.1]},
             "rot7+scale": {"rotations": [-7, 7], "scales": [0.9, 1.1]}}


def logged_reader(run_id: str):
    """The run's logged model as its family loads it for the pyfunc (``Family.load``), *without* the views the pyfunc
    adds (uint8 images as the run's eval_data holds them → probabilities), and its glyph_model.json."""
    import mlflow
    import yaml

    from glyphlab.models import family_of_logged

    folder = next(Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model")).rglob("MLmodel")).parent
    spec = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))["flavors"]["python_function"]["artifacts"]
    artifacts = {name: str(folder / entry["path"]) for name, entry in spec.items()}
    meta = json.loads(Path(artifacts["meta"]).read_text(encoding="utf-8"))
    return family_of_logged(meta).load(artifacts, meta), meta


def real_set(params: dict):
    """The run's eval_data as it loaded it (images normalised as the run's)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from glyphlab import data

    extra = [f"eval_data.root={params['eval_data.root']}"] if params.get("eval_data.root") not in (None, "None") else []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        sets = SETS[params["data.name"]]
        sets = sets(params) if callable(sets) else sets
        cfg = compose("config", overrides=[*sets, *extra, "+experiment=read_real"])
    return data.load(OmegaConf.to_container(cfg.eval_data, resolve=True), cache_dir=cfg.cache_dir)


def main(db: str, study: str, experiment_name: str = "synth_to_real") -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from glyphlab.models.tta import with_views

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], f"params.study = '{study}'", max_results=1000)
    for run in sorted(runs, key=lambda r: r.info.start_time):
        if run.info.status != "FINISHED":
            continue
        params = run.data.params
        reader, meta = logged_reader(run.info.run_id)
        real = real_set(params)
        index = {c: i for i, c in enumerate(meta["classes"])}
        truth = np.array([index[real.classes[label]] for label in real.labels])
        own = run.data.metrics.get("eval/accuracy", float("nan"))
        name = params["eval_data.alphabet"] if params["data.name"] == "script" else params["data.name"]
        for views, tta in VIEW_SETS.items():
            read = with_views(reader, tta)(real.images).argmax(-1)
            print(f"{study}\t{name}\t{params['seed']}\t{views}\t{np.mean(read == truth):.4f}\t{own:.4f}",
                  flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
