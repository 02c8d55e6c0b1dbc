"""MLflow 3 conventions (#16 item 3): experiments marked as model training (the UI opens on Training
runs), each run's data sets as MLflow inputs (the runs table's Dataset column), system metrics on
request, and the summary's model URI is the logged model's ``models:/m-…``."""
from __future__ import annotations

import re

import mlflow
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import TINY_SKLEARN, cli, compose

KIND = "mlflow.experimentKind"
TINY_EVAL = ["eval_data=runes", "eval_data.samples_per_class=6", "eval_data.image_size=16"]


@pytest.mark.slow
def test_a_run_logs_its_data_sets_system_metrics_and_an_mlflow3_model(store, tmp_path):
    from mlflow.tracking import MlflowClient

    from glyphlab.data import cache_key

    args = ["model=sklearn_mlp", *TINY_SKLEARN, *TINY_EVAL, "tracking.system_metrics=true"]
    # a sample every 0.2 s, so this short run has some (the default is one per 2 s)
    p = cli(*args, f"hydra.run.dir={tmp_path / 'out'}", env={"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.2"})
    assert p.returncode == 0, p.stderr[-3000:]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("glyphlab")
    assert experiment.tags[KIND] == "custom_model_development"
    [run] = client.search_runs([experiment.experiment_id])

    # the data sets: named by the data option, the cache key as digest, training and evaluation
    cfg = compose(args)
    expected = {("runes", cache_key(OmegaConf.to_container(cfg.data, resolve=True)), "training"),
                ("runes", cache_key(OmegaConf.to_container(cfg.eval_data, resolve=True)), "evaluation")}
    logged = {(d.dataset.name, d.dataset.digest, {t.key: t.value for t in d.tags}["mlflow.data.context"])
              for d in run.inputs.dataset_inputs}
    assert logged == expected
    assert len({digest for _, digest, _ in expected}) == 2  # the eval set is another set, with another key

    assert any(key.startswith("system/cpu_utilization_percentage") for key in run.data.metrics), run.data.metrics

    # the summary names the model as MLflow 3 does, and that URI is the run's logged model and loads
    uri = re.search(r"^model (models:/m-[0-9a-f]+)\s", p.stdout, flags=re.M).group(1)
    model = client.get_logged_model(uri.removeprefix("models:/"))
    assert model.source_run_id == run.info.run_id and model.name == "model"
    assert f"draw on it: glyphlab draw --model {uri}" in p.stdout
    from glyphlab import predict

    image = tmp_path / "glyph.png"
    from PIL import Image

    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(image)
    assert predict.main(["--model", uri, str(image), "--json"]) == 0


@pytest.mark.slow
def test_experiments_are_marked_model_training_unless_marked_otherwise(store):
    from mlflow.tracking import MlflowClient

    from glyphlab.tracking import connect

    client = MlflowClient(store)
    old = client.create_experiment("made_before")               # by an older glyphlab: no kind
    genai = client.create_experiment("hand_set", tags={KIND: "genai_development"})
    for name in ("made_before", "hand_set", "new_one"):
        connect(compose([f"tracking.experiment={name}"]).tracking)
    assert client.get_experiment(old).tags[KIND] == "custom_model_development"
    assert client.get_experiment(genai).tags[KIND] == "genai_development"
    assert client.get_experiment_by_name("new_one").tags[KIND] == "custom_model_development"


@pytest.mark.parametrize("on", [False, True])
def test_system_metrics_follow_tracking_system_metrics(store, on, monkeypatch):
    """MLflow starts its monitor for the run only when asked (default: off)."""
    from mlflow.tracking import fluent

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "2")  # glyphlab sets it for the run: undone after

    from glyphlab.tracking import start_run

    cfg = compose(["tracking.system_metrics=true"] if on else [])
    assert cfg.tracking.system_metrics is on
    with start_run(cfg) as run:
        assert (run.info.run_id in fluent.run_id_to_system_metrics_monitor) is on
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
