"""A sweep against a real MLflow tracking server, checked through the server's REST API.

The server runs on a free 127.0.0.1 port with its artifacts proxied (``--serve-artifacts``) into a
temp dir; its backend is a SQLite file, or a throw-away PostgreSQL cluster when PostgreSQL is
installed (Debian: ``apt-get install postgresql``; the test is skipped otherwise).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import TINY_SKLEARN_SWEEP, cli, free_port, healthy, new_store, wait_for

pytestmark = pytest.mark.slow  # MLflow tracking servers (SQLite, PostgreSQL) and sweeps against them


@contextlib.contextmanager
def mlflow_server(backend_uri: str, tmp: Path):
    """A running ``mlflow server`` on a free 127.0.0.1 port; yields its URL; stopped at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "mlflow-server.log"
    mlflow = Path(sys.executable).with_name("mlflow")
    with open(log, "w") as out:
        proc = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", backend_uri,
                                 "--serve-artifacts", "--artifacts-destination", str(tmp / "artifacts"),
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: healthy(url), f"mlflow server ({backend_uri})", proc=proc, log=log, interval=0.5)
        yield url
    finally:
        # the server and its worker processes share the session started above
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def rest(url: str, endpoint: str, body: dict | None = None, **query) -> dict:
    """GET (or POST ``body``) ``/api/2.0/mlflow/<endpoint>``; returns the JSON answer."""
    full = f"{url}/api/2.0/mlflow/{endpoint}"
    if query:
        full += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def check_sweep_on_server(url: str, tmp: Path, artifacts: Path, *launcher: str) -> list[dict]:
    """Run a 2-job sweep against ``url``; check parent, children, metrics and artifacts over REST.

    Returns the children's tags.
    """
    p = cli("-m", *launcher, *TINY_SKLEARN_SWEEP, f"tracking.uri={url}", "tracking.experiment=team",
            f"hydra.sweep.dir={tmp / 'sweep'}", env={"GLYPHLAB_CACHE": str(tmp / "cache")})
    assert p.returncode == 0, p.stderr[-3000:]

    experiment_id = rest(url, "experiments/get-by-name", experiment_name="team")["experiment"]["experiment_id"]
    runs = rest(url, "runs/search", {"experiment_ids": [experiment_id], "max_results": 100})["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    parents = [r for r, t in zip(runs, tags) if t.get("glyphlab.sweep") == "parent"]
    assert len(runs) == 3 and len(parents) == 1, tags
    parent_id = parents[0]["info"]["run_id"]
    children = [(r, t) for r, t in zip(runs, tags) if t.get("mlflow.parentRunId") == parent_id]
    assert sorted(t["seed"] for _, t in children) == ["0", "1"]
    assert all(t["model"] == "sklearn_mlp" and t["data"] == "runes" for _, t in children)
    parent_metrics = {m["key"]: m["value"] for m in parents[0]["data"]["metrics"]}
    assert parent_metrics["sweep/n_children"] == 2 and parent_metrics["sweep/n_failed"] == 0

    for run, _ in children:
        run_id = run["info"]["run_id"]
        assert run["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert 0 <= metrics["test/accuracy"] <= 1 and "time/fit_s" in metrics
        history = rest(url, "metrics/get-history", run_id=run_id, metric_key="val/accuracy")["metrics"]
        assert len(history) == 2  # one point per epoch
        files = {f["path"]: f for f in rest(url, "artifacts/list", run_id=run_id).get("files", [])}
        assert {"confusion_matrix.png", "confusion_matrix.csv", "config.yaml"} <= set(files), files
        assert int(files["confusion_matrix.png"]["file_size"]) > 1000
    # the artifacts went through the server into its --artifacts-destination
    stored = glob.glob(str(artifacts / "**" / "confusion_matrix.png"), recursive=True)
    assert len(stored) == 2 and all(open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for f in stored)
    assert tags[runs.index(parents[0])]["launcher"] == ("SurvivingJoblibLauncher" if launcher else "BasicLauncher")
    return [t for _, t in children]


def test_parallel_sweep_against_tracking_server_sqlite(tmp_path):
    """The joblib launcher's grouping: 2 jobs in 2 worker processes, linked to one parent."""
    with mlflow_server(new_store(tmp_path / "server.db"), tmp_path) as url:  # created empty: a copy
        children = check_sweep_on_server(url, tmp_path, tmp_path / "artifacts",
                                         "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert (tmp_path / "sweep" / ".mlflow_parent_run_id").read_text() == children[0]["mlflow.parentRunId"]
    # each of the 2 parallel jobs takes its share of the cores (cores // 2), at most the sklearn family's one thread
    assert {t["threads"] for t in children} == {"1"}


# --- PostgreSQL -------------------------------------------------------------------------------------

def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _skip_reason() -> str | None:
    if _postgres_bin() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install -e '.[postgres]')"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the cluster as"
    return None


@contextlib.contextmanager
def postgres_cluster():
    """A throw-away PostgreSQL cluster on a free 127.0.0.1 port with a database ``mlflow``; yields its URI.

    PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres``
    user (which Debian's package creates) in a temp dir it owns.
    """
    bin_dir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="glyphlab-pg-"))
    as_owner = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]

    def pg(tool, *args):
        subprocess.run([*as_owner, str(bin_dir / tool), *args], check=True, capture_output=True, timeout=120)

    port = free_port()
    data = root / "data"
    started = False
    try:
        pg("initdb", "-D", str(data), "-U", "glyphlab", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
        pg("pg_ctl", "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-t", "60", "start",
           "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
        started = True
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "glyphlab", "mlflow")
        # psycopg2 named explicitly: SQLAlchemy >= 2.1 maps a bare postgresql:// to psycopg 3
        yield f"postgresql+psycopg2://glyphlab@127.0.0.1:{port}/mlflow"
    finally:
        if started:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))
def test_sweep_against_tracking_server_postgres(tmp_path):
    with postgres_cluster() as backend, mlflow_server(backend, tmp_path) as url:
        check_sweep_on_server(url, tmp_path, tmp_path / "artifacts")
