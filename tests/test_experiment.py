"""Whole runs: real Hydra composition, real training on tiny data, a real MLflow store in a temp dir."""

import numpy as np
import pytest

from helpers import TINY, TINY_SKLEARN, all_runs, cli, compose

STANDARD_METRICS = {"test/accuracy", "test/macro_f1", "time/fit_s", "model/n_params", "data/n_train"}
STANDARD_ARTIFACTS = {"confusion_matrix.png", "confusion_matrix.csv", "config.yaml", "train_samples.png"}


def run_in_process(overrides):
    from glyphlab.experiment import run

    return run(compose(overrides))


def check_standard_run(client, run, model):
    m, t, p = run.data.metrics, run.data.tags, run.data.params
    assert STANDARD_METRICS <= set(m), set(m)
    assert 0.0 <= m["test/accuracy"] <= 1.0
    assert any(k.startswith("test/class_accuracy/") for k in m)
    assert (t["model"], t["data"], t["augmentation"]) == (model, "runes", "none")
    assert p["data.image_size"] == "16" and p["model.name"] == model and p["seed"] == "0"
    assert run.info.status == "FINISHED"
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert STANDARD_ARTIFACTS <= arts, arts
    assert len(client.get_metric_history(run.info.run_id, "val/accuracy")) >= 2
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) >= 2
    csv = client.download_artifacts(run.info.run_id, "confusion_matrix.csv")
    rows = open(csv, encoding="utf-8").read().splitlines()
    assert rows[0].split(",")[1:] == list("ᚠᚢᚦᚫᚱᚲᚷᚹᚺᚾᛁᛃᛇᛈᛉᛋᛏᛒᛖᛗᛚᛜᛞᛟ")
    counts = np.array([[int(v) for v in r.split(",")[1:]] for r in rows[1:]])
    assert counts.sum() == m["data/n_test"]


@pytest.mark.slow
@pytest.mark.parametrize("model,overrides", [("sklearn_mlp", TINY_SKLEARN), ("cnn", TINY)])
def test_single_run_logs_everything_and_the_same_seed_repeats_it(store, model, overrides):
    val_accuracy = run_in_process([f"model={model}", *overrides])
    client, runs = all_runs(store)
    assert len(runs) == 1
    check_standard_run(client, runs[0], model)
    assert val_accuracy == pytest.approx(runs[0].data.metrics["val/final_accuracy"])

    # The same config again (its model is not logged: that comes after training and testing): the same result.
    run_in_process([f"model={model}", *overrides, "tracking.log_model=false"])
    client, runs = all_runs(store)
    a, b = (r.data.metrics for r in runs)
    assert a["test/accuracy"] == b["test/accuracy"] and a["val/final_accuracy"] == b["val/final_accuracy"]
    cms = [open(client.download_artifacts(r.info.run_id, "confusion_matrix.csv")).read() for r in runs]
    assert cms[0] == cms[1]


@pytest.mark.slow
def test_cli_run_prints_summary_and_logs(store, tmp_path):
    p = cli("model=mlp", *TINY, f"hydra.run.dir={tmp_path / 'out'}")
    assert p.returncode == 0, p.stderr[-3000:]
    client, runs = all_runs(store)
    assert len(runs) == 1
    check_standard_run(client, runs[0], "mlp")
    assert f"MLflow run {runs[0].info.run_id}" in p.stdout
    assert f"mlflow ui --backend-store-uri {store}" in p.stdout
    assert "Validating input example" not in p.stdout + p.stderr  # MLflow's note on every logged model: noise


@pytest.mark.slow
def test_eval_data_run_logs_eval_metrics_and_samples(store):
    # Trained on one synthetic rune set, tested a second time on another (other seed, other drawings).
    run_in_process(["model=sklearn_mlp", *TINY_SKLEARN, "eval_data=runes", "eval_data.seed=7",
                    "eval_data.samples_per_class=6"])
    client, runs = all_runs(store)
    m = runs[0].data.metrics
    assert m["eval/n_samples"] == 24 * 6 and 0.0 <= m["eval/accuracy"] <= 1.0
    arts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"eval_confusion_matrix.png", "eval_confusion_matrix.csv", "eval_samples.png"} <= arts, arts


def test_eval_samples_show_the_worst_read_classes_first(tmp_path):
    from glyphlab import evaluate

    rng = np.random.default_rng(0)
    train = rng.integers(0, 255, (30, 16, 16), dtype=np.uint8)
    true = np.repeat([0, 1, 2], 5)
    pred = true.copy()
    pred[10:15] = 1          # every "c" read as "b"
    pred[0:2] = 2            # two of five "a" read as "c"
    worst = evaluate.save_eval_samples(train, np.arange(30) % 3, train[:15], true, pred, ["a", "b", "c"],
                                       tmp_path / "e.png", n_classes=2, per_side=4)
    assert worst == [2, 0]
    assert (tmp_path / "e.png").stat().st_size > 1000


@pytest.mark.slow
def test_failing_run_ends_failed_with_error_and_one_line(store, tmp_path):
    p = cli("model=sklearn_mlp", *TINY_SKLEARN, "data.root=/nonexistent/drawings", f"hydra.run.dir={tmp_path}")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    last = [line for line in p.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("glyphlab: error:") and "/nonexistent/drawings" in last
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "/nonexistent/drawings" in runs[0].data.tags["error"]


def test_default_store_is_repo_mlruns_whatever_the_cwd(monkeypatch, tmp_path):
    from glyphlab import project_root
    from glyphlab.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = compose()
    assert tracking_uri(cfg.tracking) == f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"
    assert tracking_uri(compose(["tracking.uri=http://127.0.0.1:5000"]).tracking) == "http://127.0.0.1:5000"


def test_errors_are_kinds_of_one_base_and_say_what_was_expected():
    from glyphlab import errors, experiment

    for kind in (errors.ConfigError, errors.DataError, errors.TrackingError):
        assert issubclass(kind, errors.GlyphlabError)
    with pytest.raises(errors.ConfigError, match="split.val \\+ split.test must be below 1, got 1.0"):
        errors.check_split(0.5, 0.5)
    with pytest.raises(errors.ConfigError, match="data.image_size must be an integer from 8 to 512, got 4"):
        experiment.check_config(compose(["data.image_size=4"]))
