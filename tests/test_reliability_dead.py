"""Processes that die too hard to end their runs (SIGKILL, out of memory, a power cut)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from helpers import ROOT, all_runs, wait_for

from glyphlab import compare
from glyphlab.tracking import HOST_TAG, PID_START_TAG, PID_TAG, mark_dead_runs, process_tags

pytestmark = pytest.mark.slow  # processes killed mid-run and mid-sweep


def test_a_sigkilled_run_is_marked_killed_by_the_next_glyphlab_process(store, tmp_path):
    # An sklearn run that would train for a long time (no early stop), killed once it has logged an epoch.
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "model=sklearn_mlp", "data.samples_per_class=12",
                             "data.image_size=16", "model.max_epochs=100000", "model.patience=100000",
                             f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        run = wait_for(lambda: next((r for r in all_runs(store)[1] if "val/accuracy" in r.data.metrics), None),
                       "a run with a logged epoch", proc=proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run.data.tags[PID_TAG] == str(proc.pid) and run.data.tags[HOST_TAG] and run.data.tags[PID_START_TAG]
    client, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["RUNNING"]  # nobody could end it

    # The next glyphlab process that opens the store (here the report) ends it, with a note.
    code = compare.main(["--experiment", "glyphlab", "--study", str(tmp_path / "report"), "--tracking-uri", store])
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED" and run.info.end_time
    assert f"process {proc.pid} on {run.data.tags[HOST_TAG]} ended without ending this run" in run.data.tags["error"]
    assert run.data.tags["mlflow.note.content"] == run.data.tags["error"]
    assert code == 2  # and the report says there is nothing finished to compare


def test_only_runs_whose_own_process_is_gone_are_marked(store):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment = client.create_experiment("e")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    me = process_tags()
    cases = {
        "alive": me,
        "pid reused": {**me, PID_START_TAG: me[PID_START_TAG].split(":")[0] + ":1"},  # same pid, older process
        "gone": {**me, **process_tags(gone.pid), PID_TAG: str(gone.pid)},
        "other host": {**me, HOST_TAG: me[HOST_TAG] + "-elsewhere", PID_TAG: str(gone.pid)},
        "no pid": {},
    }
    ids = {name: client.create_run(experiment, run_name=name, tags=tags).info.run_id for name, tags in cases.items()}
    marked = mark_dead_runs(client)
    assert sorted(marked) == sorted([ids["pid reused"], ids["gone"]])
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"alive": "RUNNING", "pid reused": "KILLED", "gone": "KILLED", "other host": "RUNNING",
                      "no pid": "RUNNING"}
    assert mark_dead_runs(client) == []


def test_a_joblib_worker_killed_mid_sweep_costs_only_its_jobs(store, tmp_path):
    # Jobs #0 and #1 train for a long time, #2 and #3 briefly; two run at a time.
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=joblib",
                             "hydra.launcher.n_jobs=2", "model=sklearn_mlp", "model.max_epochs=100000,3", "seed=0,1",
                             "model.patience=100000", "data.samples_per_class=12", "data.image_size=16",
                             "tracking.log_model=false", f"hydra.sweep.dir={sweep_dir}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def both_training():
            runs = [r for r in all_runs(store)[1] if "val/accuracy" in r.data.metrics]
            return runs if len(runs) == 2 else None

        training = wait_for(both_training, "jobs #0 and #1 training", proc=proc)
        victim = next(r for r in training if r.data.tags["seed"] == "0")
        os.kill(int(victim.data.tags[PID_TAG]), signal.SIGKILL)  # job #0's worker process
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("glyphlab: 2 of 4 sweep jobs failed; died with their process"), last
    assert "#0 (model.max_epochs=100000 seed=0)" in last
    assert "Traceback" not in err

    client, runs = all_runs(store)
    parent = next(r for r in runs if r.data.tags.get("glyphlab.sweep") == "parent")
    children = {(r.data.params["model.max_epochs"], r.data.tags["seed"]): r for r in runs if r is not parent}
    # The two that were running when the pool went down (loky stops every worker), then the two not yet started.
    assert {k: r.info.status for k, r in children.items()} == {
        ("100000", "0"): "KILLED", ("100000", "1"): "KILLED", ("3", "0"): "FINISHED", ("3", "1"): "FINISHED"}
    assert "ended without ending this run" in children[("100000", "0")].data.tags["error"]
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep/n_jobs"] == 4 and parent.data.metrics["sweep/n_failed"] == 2
