"""Smoke tests of the benchmark suite (benchmarks/ at the checkout's root): every piece runs on tiny
sizes. No timing is asserted."""
from __future__ import annotations

import sys

import pytest
import torch

from helpers import ROOT

sys.path.insert(0, str(ROOT))   # benchmarks/ is not installed: it lives beside run.py

from benchmarks import (augment, common, fastpaths, flops, loader, precision, report, sklearn_threads,  # noqa: E402
                        startup, synth, train)
from benchmarks.__main__ import main  # noqa: E402


def _ok(rows, section):
    assert rows and all(r.section == section and r.value for r in rows)


def test_judge_says_met_or_by_how_much():
    assert common.judge("lightning_cnn", 0.95) == ("≥ 0.9×", "met")
    assert common.judge("cfg_job_s", 1.5)[1] == "**missed** by 50%"
    assert common.judge("e2e_accuracy", 0.97)[1].startswith("**missed** by 1")


@pytest.mark.slow
def test_train_loader_flops_fastpaths_run_tiny():
    _ok(train.bench_train(models=("mlp",), n_images=64, epochs=2, repeats=1), "train")
    _ok(loader.bench_loader(models=("mlp",), n_images=64, epochs=2, repeats=1), "loader")
    cfg = common.compose(["model=cnn"])
    assert flops.training_flops_per_image(cfg, batch_size=4) > 1e6
    assert flops.matmul_peak(sizes=(64,), min_seconds=0.01)[0] > 0
    _ok(flops.bench_flops(steps=1, repeats=1, lightning_rate=100.0, widths=((),),
                          lightning_rates={"cnn on runes": {"32-true": 100.0, "bf16-mixed": 150.0,
                                                            "32-true/cpu": 60.0, "bf16-mixed/cpu": 90.0}}), "flops")
    assert flops.matmul_peak(sizes=(64,), min_seconds=0.01, dtype=torch.bfloat16)[0] > 0
    _ok(fastpaths.bench_fastpaths(steps=1, repeats=1, with_compile=False), "fastpaths")


@pytest.mark.slow
def test_precision_section_runs_tiny_and_hands_its_rates_to_flops():
    rates = {}
    rows = precision.bench_precision(n_images=256, epochs=2, repeats=1, shared=rates)
    _ok(rows, "precision")
    assert set(rates) == {"cnn on runes", "read_real on greek"}
    assert all(set(r) == {"32-true", "bf16-mixed", "32-true/cpu", "bf16-mixed/cpu"} and min(r.values()) > 0
               for r in rates.values())


def test_synth_and_augment_run_tiny():
    _ok(synth.bench_synth(samples_per_class=2, repeats=1, cache_overrides=["data.samples_per_class=2"]), "synth")
    _ok(augment.bench_augment(steps=1, repeats=1, min_seconds=0.01), "augment")


def test_augment_rates_per_option_and_for_the_elastic_stage():
    state = torch.random.get_rng_state()
    rates = augment.benchmark_augment(image_size=16, batch=8, min_seconds=0.01)
    options = {p.stem for p in augment.CONF_DIR.glob("*.yaml")}
    assert set(rates) == options - {"none"} and all(r > 0 for r in rates.values())
    rates = augment.benchmark_elastic(image_size=16, batch=8, repeats=2)
    assert set(rates) == {"kornia", "glyphlab"} and all(r > 0 for r in rates.values())
    assert torch.equal(torch.random.get_rng_state(), state)


def test_sklearn_threads_runs_tiny(store):
    rows = sklearn_threads.bench_sklearn_threads(epochs=1, repeats=1,
                                                 overrides=["data.samples_per_class=12", "data.image_size=16"])
    _ok(rows, "sklearn_threads")
    assert len(rows) == 2 and all("1: " in r.detail and "2: " in r.detail for r in rows)


@pytest.mark.slow
def test_marked_run_stamps_phases_and_sklearn_imports_no_lightning(tmp_path):
    marks = startup.marked_run(["model=sklearn_mlp", "data.samples_per_class=24", "data.image_size=16",
                                "model.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    phases = [marks[k] for k in ("python_up", "run_start", "data_ready", "fit_start", "first_step")]
    assert phases == sorted(phases) and marks["exit"] >= phases[-1]
    assert "sklearn" in marks["modules"]
    assert "pytorch_lightning" not in marks["modules"] and "lightning" not in marks["modules"]


def test_benchmarks_md_keeps_other_sections_and_notes(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    m = dict(cores=2, cpu="cpu", system="Linux", python="3", torch="2", threads=2, load=0.1, date="now",
             dont_write_bytecode=False)
    report.write_benchmarks(path, [common.Row("synth", "a", "1"), common.Row("e2e", "b", "2")], m, ["synth", "e2e"])
    path.write_text(path.read_text().replace(report.BEGIN, "<!-- bench:begin (an older wording) -->")
                    + "hand-written note\n")
    text = report.write_benchmarks(path, [common.Row("synth", "a", "3")], m, ["synth"])
    rows = report.read_rows(text)
    assert [(r.section, r.value) for r in rows] == [("synth", "3"), ("e2e", "2")]
    assert text.endswith("hand-written note\n") and text.count(report.BEGIN) == 1 and "older wording" not in text


def test_only_rejects_unknown_sections():
    with pytest.raises(SystemExit):
        main(["--only", "bogus", "--no-write"])


def test_glyphlab_never_imports_the_benchmarks():
    for path in (ROOT / "src" / "glyphlab").rglob("*.py"):
        assert "benchmarks" not in {line.split()[1].split(".")[0] for line in path.read_text().splitlines()
                                   if line.startswith(("import ", "from "))}, path
