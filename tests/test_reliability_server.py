"""A tracking server that dies during a run: one line naming it and the checkpoints, a quick non-zero exit."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, TINY, free_port, healthy, new_store, wait_for

from glyphlab.tracking import mark_dead_runs

pytestmark = pytest.mark.slow  # an MLflow server killed or frozen during a run


# MLflow's retries made small so the test is short; glyphlab's own defaults give up within about a minute.
FEW_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_server_that_dies_mid_run_gives_one_line_and_keeps_checkpoints(tmp_path, fault):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    backend = tmp_path / "server.db"
    new_store(backend)  # an empty store, copied: the server does not spend seconds creating one
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
                                   f"sqlite:///{backend}", "--serve-artifacts", "--artifacts-destination",
                                   str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                                   "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    out = tmp_path / "out"
    run = None
    try:
        wait_for(lambda: healthy(url), "mlflow server", proc=server)
        env = dict(os.environ, PYTHONUNBUFFERED="1", GLYPHLAB_CACHE=str(tmp_path / "cache"), **FEW_RETRIES)
        run = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "model=cnn", *TINY, "trainer.max_epochs=1000",
                                f"tracking.uri={url}", f"hydra.run.dir={out}"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (out / "checkpoints" / "last.ckpt").exists(), "the first epoch's checkpoint", proc=run)
        # killed: connections refused from now on; frozen: connections accepted and never answered.
        os.killpg(server.pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        _, err = run.communicate(timeout=240)
    finally:
        for proc in (run, server):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL) if proc is server else proc.kill()
                proc.wait()

    assert run.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    checkpoints = out / "checkpoints"
    assert last.startswith(f"glyphlab: error: MLflow tracking server {url} stopped answering during run "), last
    assert f"checkpoints kept in {checkpoints} (resume with ckpt_path={checkpoints / 'last.ckpt'})" in last
    assert "Traceback" not in err, err[-3000:]
    assert (checkpoints / "last.ckpt").exists() and (checkpoints / "interrupted.ckpt").exists()

    # The server's store: nobody could end the run there; the next glyphlab process on this host does.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{backend}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["RUNNING"] and runs[0].data.metrics["val/accuracy"] >= 0
    assert mark_dead_runs(client) == [runs[0].info.run_id]
    assert client.get_run(runs[0].info.run_id).info.status == "KILLED"
