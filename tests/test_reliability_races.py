"""Sweeps that meet: two at once on a fresh store, two in one sweep folder, a sweep without its parent run."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import ROOT, TINY_SKLEARN_SWEEP, all_runs, cli

pytestmark = pytest.mark.slow  # sweeps started together in processes of their own


def test_two_sweeps_started_together_on_a_fresh_store_keep_their_own_parents(tmp_path):
    # A store that does not exist yet (no migrated template copy) and Hydra's default sweep folder:
    # both sweeps create the database and both start within the same second.
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, GLYPHLAB_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    procs = [subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", *TINY_SKLEARN_SWEEP], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]

    _, runs = all_runs(uri)
    parents = [r for r in runs if r.data.tags.get("glyphlab.sweep") == "parent"]
    assert len(parents) == 2 and len(runs) == 6
    sweep_dirs = {p.data.tags["sweep_dir"] for p in parents}
    assert len(sweep_dirs) == 2  # each sweep its own folder, hence its own job folders
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.data.tags["seed"] for r in children) == ["0", "1"]
        assert all(r.info.status == "FINISHED" for r in children)
        assert parent.info.status == "FINISHED"
        assert parent.data.metrics["sweep/n_children"] == 2 and parent.data.metrics["sweep/n_failed"] == 0
    for sweep_dir in sweep_dirs:
        assert sorted(p.name for p in (tmp_path / sweep_dir).iterdir() if p.is_dir() and p.name[0] != ".") == ["0", "1"]


def test_a_sweep_folder_held_by_a_running_sweep_is_refused(store, tmp_path):
    from glyphlab.tracking import hold_sweep_dir

    sweep_dir = tmp_path / "sweep"
    # Another process holds the folder, as a running sweep does for as long as it lives.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from glyphlab.tracking import hold_sweep_dir; lock = hold_sweep_dir(Path(sys.argv[1])); "
                               "print('held', flush=True); time.sleep(300)", str(sweep_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        p = cli("-m", *TINY_SKLEARN_SWEEP, f"hydra.sweep.dir={sweep_dir}")
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("glyphlab: error:") and f"hydra.sweep.dir {sweep_dir} is in use by another sweep" in last
    assert "Traceback" not in p.stderr
    _, runs = all_runs(store)
    assert runs == []  # no parent, no job
    hold_sweep_dir(sweep_dir).release()  # the holder is gone: the folder is free again (the OS dropped its lock)


def test_a_sweep_whose_parent_run_cannot_be_created_fails_before_its_jobs(store, tmp_path):
    (tmp_path / "plain").write_text("x")
    uri = f"sqlite:///{tmp_path / 'plain' / 'mlflow.db'}"  # a file where the store's folder should be
    p = cli("-m", *TINY_SKLEARN_SWEEP, f"hydra.sweep.dir={tmp_path / 'sweep'}",
            env={"MLFLOW_TRACKING_URI": uri})
    assert p.returncode == 2, p.stderr[-3000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("glyphlab: error: the sweep's MLflow parent run could not be created") and uri in last
    assert "#0 :" not in p.stdout + p.stderr  # Hydra launched no job
    assert "Traceback" not in p.stderr
