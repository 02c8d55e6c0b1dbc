"""The comparison report, from a temp MLflow store filled with MlflowClient-made runs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from glyphlab import compare
from glyphlab.report import runs_table, summarize

ACCURACY = {("sklearn_mlp", "none"): [0.70, 0.74], ("sklearn_mlp", "rotate"): [0.78, 0.80],
            ("cnn", "none"): [0.90, 0.92], ("cnn", "rotate"): [0.95, 0.97]}


def make_sweep(client, experiment_id, tmp_path, accuracy=ACCURACY, data="runes", failed=True):
    """A parent run with one finished child per (model, augmentation, seed), plus a failed child."""
    parent = client.create_run(experiment_id, run_name="sweep", tags={"glyphlab.sweep": "parent",
                                                                      "overrides": "model=sklearn_mlp,cnn"}).info.run_id
    png = tmp_path / "confusion_matrix.png"
    for (model, augmentation), values in accuracy.items():
        for seed, acc in enumerate(values):
            tags = {"model": model, "data": data, "augmentation": augmentation, "seed": str(seed),
                    "mlflow.parentRunId": parent}
            run_id = client.create_run(experiment_id, run_name=f"{model}-{seed}", tags=tags).info.run_id
            for key, value in {"test/accuracy": acc, "test/macro_f1": acc - 0.01, "time/fit_s": 2.0 + seed,
                               "model/n_params": 1000 if model == "cnn" else 5000}.items():
                client.log_metric(run_id, key, value)
            client.log_param(run_id, "seed", seed)
            client.log_param(run_id, "trainer.max_epochs", 3 if (model, augmentation) == ("cnn", "rotate") else 12)
            if model == "cnn":  # a model's own setting: differs between groups only, so not reported
                client.log_param(run_id, "model.net.hidden", 128)
            shade = int(255 * acc)
            Image.fromarray(np.full((20, 20, 3), shade, dtype=np.uint8)).save(png)
            client.log_artifact(run_id, str(png))
            client.set_terminated(run_id, "FINISHED")
    if failed:
        run_id = client.create_run(experiment_id, tags={"model": "cnn", "data": data, "augmentation": "none",
                                                        "seed": "9", "mlflow.parentRunId": parent}).info.run_id
        client.set_terminated(run_id, "FAILED")
    client.set_terminated(parent, "FINISHED")
    return parent


@pytest.fixture
def filled(store, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment_id = client.create_experiment("study", artifact_location=(tmp_path / "artifacts").as_uri())
    return client, experiment_id


def test_report_from_latest_sweep(filled, tmp_path, capsys):
    client, experiment_id = filled
    old = make_sweep(client, experiment_id, tmp_path, {("mlp", "none"): [0.5]}, data="latin", failed=False)
    make_sweep(client, experiment_id, tmp_path)
    out = tmp_path / "report"

    assert compare.main(["--study", str(out)]) == 0

    report = (out / "report.md").read_text()
    printed = capsys.readouterr().out
    # the newest sweep only: 8 finished children in 4 groups, the failed one left out and counted
    assert "latin" not in report and old not in report
    assert "8 finished MLflow runs" in report and "1 FAILED" in report
    rows = [line for line in report.splitlines() if line.startswith("| runes")]
    assert len(rows) == 4
    assert rows[0].startswith("| runes | cnn | none | 2 | 0.910 ± 0.014 |")
    assert rows[1].startswith("| runes | cnn | rotate | 2 | 0.960 ± 0.014 |")
    assert "| runes | sklearn_mlp | none | 2 | 0.720 ± 0.028 |" in report
    assert "5,000" in report and "2.5" in report  # parameters and mean fit time
    assert "eval accuracy" not in report  # no run has eval/accuracy
    assert rows[0] in printed
    for png in ("accuracy.png", "confusion_matrices.png"):
        assert (out / png).stat().st_size > 1000 and f"]({png})" in report
    assert "cnn on runes, augmentation=rotate, seed 1: test accuracy 0.970" in report
    # what a reader of the table must know: one group was trained differently
    settings = report.split("## Settings that differ between runs")[1].split("##")[0]
    assert "- `trainer.max_epochs`: 12 (runes/cnn/none, runes/sklearn_mlp/none, runes/sklearn_mlp/rotate); " \
           "3 (runes/cnn/rotate)" in settings
    assert "`seed`" not in settings and "model.net.hidden" not in settings


def test_select_by_experiment_tag_and_parent(filled, tmp_path):
    client, experiment_id = filled
    parent = make_sweep(client, experiment_id, tmp_path)
    make_sweep(client, experiment_id, tmp_path, {("mlp", "none"): [0.5, 0.7]}, data="latin", failed=False)

    runs, chosen = compare.find_runs(client, experiment="study")
    assert len(runs) == 9 + 2  # every child of both sweeps, never a parent
    runs, chosen = compare.find_runs(client, tags={"data": "runes", "model": "cnn"})
    assert len(runs) == 5 and "tag `model=cnn`" in chosen
    runs, chosen = compare.find_runs(client, parent=parent)
    assert len(runs) == 9 and parent in chosen

    summary = summarize(runs_table(compare.find_runs(client, experiment="study")[0]))
    assert list(summary["data"]) == ["latin", "runes", "runes", "runes", "runes"]
    latin = summary.iloc[0]
    assert latin["n"] == 2 and latin["test/accuracy mean"] == pytest.approx(0.6)


def test_eval_accuracy_column_and_default_folder(filled, tmp_path, monkeypatch):
    client, experiment_id = filled
    make_sweep(client, experiment_id, tmp_path, {("cnn", "none"): [0.9]}, failed=False)
    run = compare.find_runs(client)[0][0]
    client.log_metric(run.info.run_id, "eval/accuracy", 0.42)
    monkeypatch.setattr(compare, "project_root", lambda: tmp_path)

    assert compare.main(["--experiment", "study"]) == 0

    report = (tmp_path / "experiments" / "study" / "report.md").read_text()
    assert "eval accuracy" in report and "0.420" in report


def test_nothing_to_compare_is_one_line(store, tmp_path, capsys):
    assert compare.main(["--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no MLflow store" in capsys.readouterr().err
    from mlflow.tracking import MlflowClient

    MlflowClient(store).create_experiment("empty", artifact_location=(tmp_path / "a").as_uri())
    assert compare.main([]) == 2
    assert "no sweep" in capsys.readouterr().err
    assert compare.main(["--experiment", "nope"]) == 2
    assert "no MLflow experiment named 'nope'" in capsys.readouterr().err


def test_a_parent_that_is_no_run_and_a_study_that_is_no_folder_are_one_line(filled, tmp_path, capsys):
    client, experiment_id = filled
    make_sweep(client, experiment_id, tmp_path)
    assert compare.main(["--parent", "0123456789abcdef", "--study", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "glyphlab.compare: error: --parent 0123456789abcdef: no MLflow run with that id in this store; expected "
        "the run id of a sweep's parent run (its summary prints it)"]
    (tmp_path / "a_file").write_text("")
    assert compare.main(["--study", str(tmp_path / "a_file")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"glyphlab.compare: error: --study {tmp_path / 'a_file'}: cannot make the report folder (File exists); "
        f"expected a folder that exists or can be created"]
    assert not (tmp_path / "r").exists()


def test_by_a_config_key_splits_groups(filled, tmp_path):
    client, experiment_id = filled
    make_sweep(client, experiment_id, tmp_path, {("cnn", "none"): [0.50, 0.52]}, failed=False)
    second = make_sweep(client, experiment_id, tmp_path, {("cnn", "none"): [0.80, 0.84]}, failed=False)
    for run in compare.find_runs(client, parent=second)[0]:
        client.log_param(run.info.run_id, "data.normalize", "box")

    assert compare.main(["--experiment", "study", "--study", str(tmp_path / "mixed")]) == 0
    mixed = (tmp_path / "mixed" / "report.md").read_text()
    assert "| runes | cnn | none | 4 |" in mixed
    assert "- `data.normalize`: 2 different values, also within groups" in mixed

    assert compare.main(["--experiment", "study", "--by", "data.normalize", "--study", str(tmp_path / "by")]) == 0
    report = (tmp_path / "by" / "report.md").read_text()
    assert "| data | model | augmentation | data.normalize | runs |" in report
    assert "| runes | cnn | none | (unset) | 2 | 0.510 ± 0.014 |" in report
    assert "| runes | cnn | none | box | 2 | 0.820 ± 0.028 |" in report
    assert "data.normalize`" not in report.split("## Settings that differ between runs")[-1] or \
        "## Settings that differ" not in report
    assert "data × model × augmentation × data.normalize group" in report
    assert (tmp_path / "by" / "accuracy.png").stat().st_size > 1000


def test_accuracy_bars_share_a_place_only_among_the_groups_it_has(tmp_path, monkeypatch):
    """--by a key that follows the model (one colour per place): one full-width bar centred on its tick;
    a place with two colours splits its slot."""
    import matplotlib.axes
    import pandas as pd

    from glyphlab.report import METRICS, plot_accuracy

    drawn = []
    real_bar = matplotlib.axes.Axes.bar

    def bar(self, x, height, width, *args, **kwargs):
        drawn.append((kwargs["label"], list(np.round(np.atleast_1d(x), 3)), list(np.round(np.atleast_1d(width), 3))))
        return real_bar(self, x, height, width, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "bar", bar)
    rows = [("latin", "cnn", "none", "a"), ("latin", "mlp", "none", "b"), ("greek", "cnn", "none", "a"),
            ("greek", "cnn", "rotate", "a")]
    summary = pd.DataFrame(rows, columns=["data", "model", "augmentation", "study"])
    for metric, _, _ in METRICS:
        summary[f"{metric} mean"] = [0.9, 0.8, 0.95, 0.97] if metric == "test/accuracy" else np.nan
        summary[f"{metric} std"] = 0.01 if metric == "test/accuracy" else np.nan
    summary.attrs["by"] = ["study"]
    plot_accuracy(summary, tmp_path / "accuracy.png")

    # places: latin · cnn (0), latin · mlp (1), greek · cnn (2: two colours)
    assert sorted(drawn) == [("augmentation=none · study=a", [0.0, 1.8], [0.8, 0.4]),
                             ("augmentation=none · study=b", [1.0], [0.8]),
                             ("augmentation=rotate · study=a", [2.2], [0.4])]
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
