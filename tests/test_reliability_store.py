"""A new SQLite store is created whole or not at all, a half-created one is rebuilt, and a file that is
not an MLflow store is refused with one line and left untouched: issue 26, items 4 and 7."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT, TINY_SKLEARN, all_runs, compose, main_exit

RUN = ["model=sklearn_mlp", *TINY_SKLEARN, "model.max_epochs=2", "tracking.log_model=false"]


def leftovers(folder, name="mlflow.db"):
    """Files beside the store other than the store itself and its lock."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(name) and p.name not in (name, name + ".lock"))


@pytest.mark.slow
@pytest.mark.parametrize("when", ["during_creation", "as_the_store_appears"])
def test_sigterm_while_a_new_store_is_created_is_one_line_143_and_the_next_run_works(tmp_path, when):
    """``during_creation``: held half-way by the test hook; ``as_the_store_appears``: the moment the
    file is there (the store being opened, the run not yet created)."""
    signum = signal.SIGTERM
    folder = tmp_path / "mlruns"
    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    env = dict(os.environ, GLYPHLAB_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1",
               GLYPHLAB_TEST_STORE_CREATION_PAUSE_S="120")  # holds the creation half-way: the signal lands there
    env.pop("MLFLOW_TRACKING_URI", None)
    if when == "as_the_store_appears":
        env.pop("GLYPHLAB_TEST_STORE_CREATION_PAUSE_S")
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *RUN, f"tracking.uri={uri}",
                             f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not (folder.exists() and leftovers(folder) + (
                ["db"] if db.exists() else [])):
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        if when == "during_creation":
            time.sleep(1.5)  # well inside the creation (MLflow's own takes seconds; the pause holds ours)
        else:
            while not db.exists() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.01)
        proc.send_signal(signum)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, output[-2000:]
    lines = [line for line in output.splitlines() if line.strip()]
    assert "glyphlab: interrupted by SIGTERM" in lines[-1], lines[-3:]  # "; MLflow run … ended KILLED" if it had one
    assert "Traceback" not in output
    if when == "during_creation":
        assert not db.exists() and leftovers(folder) == []  # nothing half-made where the store goes
    else:
        assert leftovers(folder) in ([], ["mlflow.db-shm", "mlflow.db-wal"])
        assert all(r.info.status == "KILLED" for r in all_runs(uri)[1])  # a run, if it got one, ended

    env.pop("GLYPHLAB_TEST_STORE_CREATION_PAUSE_S", None)
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), *RUN, f"tracking.uri={uri}",
                           f"hydra.run.dir={tmp_path / 'out2'}"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r.info.status for r in all_runs(uri)[1]][0] == "FINISHED"


def half_created(db, template) -> str:
    """A store stopped in the middle of MLflow's migrations, as one stopped after 4 s of a first run is
    left: MLflow's migrations commit one by one, so the newest ``create_table`` ran but the recorded
    version is the one before it (and the Default experiment, added last, is not there yet). MLflow
    then fails on every later run: "table … already exists". Returns that table's migration."""
    import shutil

    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, db)
    script = ScriptDirectory.from_config(_get_alembic_config(f"sqlite:///{db}"))
    creating = next(r for r in script.walk_revisions() if "create_table(" in open(r.path).read())
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM experiments")
        con.execute("UPDATE alembic_version SET version_num = ?", (creating.down_revision,))
    con.close()
    return creating.revision


@pytest.mark.slow
def test_a_store_left_half_created_is_rebuilt(tmp_path, monkeypatch, caplog, empty_store_file):
    db = tmp_path / "elsewhere" / "mlflow.db"
    half_created(db, empty_store_file)
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    from glyphlab.experiment import main

    main(compose([*RUN, f"tracking.uri=sqlite:///{db}"]))
    assert [r.info.status for r in all_runs(f"sqlite:///{db}")[1]] == ["FINISHED"]
    assert leftovers(db.parent) in ([], ["mlflow.db-shm", "mlflow.db-wal"])
    assert any("half-created" in r.getMessage() and str(db) in r.getMessage() for r in caplog.records)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def other_application(db, tables=("notes", "tags")) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as con:
        con.execute(f"CREATE TABLE {tables[0]} (id INTEGER PRIMARY KEY, text TEXT)")
        con.execute(f"CREATE TABLE {tables[1]} (note INTEGER, tag TEXT)")
        con.execute(f"INSERT INTO {tables[0]} (text) VALUES ('my notes, not MLflow')")
    con.close()


@pytest.mark.parametrize("content", ["other_application", "alike_names", "png", "zeros"])
def test_a_file_that_is_not_an_mlflow_store_is_refused_in_one_line_and_left_untouched(tmp_path, capsys, content,
                                                                                        monkeypatch):
    db = tmp_path / "notes.db"
    if content == "other_application":
        other_application(db)
    elif content == "alike_names":  # another tool's tables called experiments and runs
        other_application(db, ("experiments", "runs"))
    elif content == "png":
        db.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    else:
        db.write_bytes(bytes(4096))
    before = digest(db)
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    code, last = main_exit([*RUN, f"tracking.uri=sqlite:///{db}"], capsys)
    assert code == 2 and last.startswith("glyphlab: error: ") and str(db) in last, last
    if content == "other_application":
        assert "another application's SQLite database (2 table(s): notes, tags)" in last
    elif content == "alike_names":
        assert "another application's SQLite database (2 table(s): experiments, runs)" in last
    else:
        assert "not a database" in last
    assert digest(db) == before and leftovers(tmp_path, "notes.db") == []  # no WAL, no MLflow tables
    if content in ("other_application", "alike_names"):
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        con.close()


@pytest.mark.slow
def test_ctrl_c_while_a_new_store_is_created_is_one_line_130_and_the_next_run_works(tmp_path, monkeypatch, capsys):
    """In this process (as `python run.py` runs it): Ctrl-C once the store's creation has begun."""
    from glyphlab.experiment import main

    folder = tmp_path / "mlruns"
    db = folder / "mlflow.db"
    monkeypatch.setenv("GLYPHLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GLYPHLAB_TEST_STORE_CREATION_PAUSE_S", "120")
    # First a creation killed outright (SIGKILL: nothing can clean up) leaves its temp file.
    folder.mkdir()
    killed = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; "
                               "from glyphlab.tracking.sqlite_store import prepare_sqlite; "
                               "prepare_sqlite(Path(sys.argv[1]), 'sqlite:///' + sys.argv[1])", str(db)], cwd=ROOT)
    deadline = time.time() + 120
    while not leftovers(folder) and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    killed.kill()
    killed.wait()
    dead = leftovers(folder)
    assert dead and not db.exists()
    started = threading.Event()

    def ctrl_c_once_creating():
        deadline = time.time() + 120
        while time.time() < deadline and not (db.exists() or set(leftovers(folder)) - set(dead)):
            time.sleep(0.02)
        time.sleep(0.5)
        started.set()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_creating, daemon=True).start()
    code, last = main_exit([*RUN, f"tracking.uri=sqlite:///{db}"], capsys)
    assert started.is_set() and code == 130 and last == "glyphlab: interrupted by Ctrl-C (SIGINT)", last
    assert not db.exists() and leftovers(folder) == []  # the killed creation's file went too

    monkeypatch.delenv("GLYPHLAB_TEST_STORE_CREATION_PAUSE_S")
    main(compose([*RUN, f"tracking.uri=sqlite:///{db}"]))
    assert [r.info.status for r in all_runs(f"sqlite:///{db}")[1]] == ["FINISHED"]


def test_readers_refuse_another_applications_file_as_well(tmp_path, capsys):
    """compare and predict would otherwise give it MLflow's tables just as a run would."""
    from glyphlab import compare, predict

    db = tmp_path / "notes.db"
    other_application(db)
    before = digest(db)
    from PIL import Image

    Image.new("L", (16, 16), 255).save(tmp_path / "a.png")
    for command in (compare.main, predict.main):
        args = ["--tracking-uri", f"sqlite:///{db}"]
        if command is predict.main:
            args += ["--model", "models:/m-0123", str(tmp_path / "a.png")]
        assert command(args) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "another application's SQLite database (2 table(s): notes, tags)" in err[0], err
    assert digest(db) == before and leftovers(tmp_path, "notes.db") == []
