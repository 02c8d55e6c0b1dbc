"""Smoke tests of the benchmark suite: every piece runs on tiny sizes. No timing is asserted."""
from __future__ import annotations

import pytest

from glyphlab import bench


def _ok(rows, section):
    assert rows and all(r.section == section and r.value for r in rows)


def test_judge_says_met_or_by_how_much():
    assert bench.judge("lightning_cnn", 0.95) == ("≥ 0.9×", "met")
    assert bench.judge("cfg_job_s", 1.5)[1] == "**missed** by 50%"
    assert bench.judge("e2e_accuracy", 0.97)[1].startswith("**missed** by 1")


def test_train_loader_flops_fastpaths_run_tiny():
    _ok(bench.bench_train(models=("mlp",), n_images=64, epochs=2, repeats=1), "train")
    _ok(bench.bench_loader(models=("mlp",), n_images=64, epochs=2, repeats=1), "loader")
    cfg = bench.compose(["model=cnn"])
    assert bench.training_flops_per_image(cfg, batch_size=4) > 1e6
    assert bench.matmul_peak(sizes=(64,), min_seconds=0.01)[0] > 0
    _ok(bench.bench_flops(steps=1, repeats=1, lightning_rate=100.0, widths=((),)), "flops")
    _ok(bench.bench_fastpaths(steps=1, repeats=1, with_compile=False), "fastpaths")


def test_synth_and_augment_run_tiny():
    _ok(bench.bench_synth(samples_per_class=2, repeats=1, cache_overrides=["data.samples_per_class=2"]), "synth")
    _ok(bench.bench_augment(steps=1, repeats=1, min_seconds=0.01), "augment")


def test_marked_run_stamps_phases_and_sklearn_imports_no_lightning(tmp_path):
    marks = bench.marked_run(["model=sklearn_mlp", "data.samples_per_class=24", "data.image_size=16",
                              "model.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    phases = [marks[k] for k in ("python_up", "run_start", "data_ready", "fit_start", "first_step")]
    assert phases == sorted(phases)
    assert "pytorch_lightning" not in marks["modules"] and "lightning" not in marks["modules"]


def test_benchmarks_md_keeps_other_sections_and_notes(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    m = dict(cores=2, cpu="cpu", system="Linux", python="3", torch="2", threads=2, load=0.1, date="now",
             dont_write_bytecode=False)
    bench.write_benchmarks(path, [bench.Row("synth", "a", "1"), bench.Row("e2e", "b", "2")], m, ["synth", "e2e"])
    path.write_text(path.read_text() + "hand-written note\n")
    text = bench.write_benchmarks(path, [bench.Row("synth", "a", "3")], m, ["synth"])
    rows = bench.read_rows(text)
    assert [(r.section, r.value) for r in rows] == [("synth", "3"), ("e2e", "2")]
    assert text.endswith("hand-written note\n") and text.count(bench.BEGIN) == 1


def test_only_rejects_unknown_sections():
    with pytest.raises(SystemExit):
        bench.main(["--only", "bogus", "--no-write"])
