"""What the machine or a wrong value does to a run: a write-protected or full store, an artifacts folder that
cannot be written, a data key of the wrong type, a monitored metric that does not exist, memory running out.
Each is one line naming the file or key, exit 2, and no MLflow run left RUNNING (one that exists ends FAILED)."""
import errno
import os
import shutil
import subprocess

import pytest

from helpers import TINY, TINY_SKLEARN, all_runs, assert_nothing_running, cli, main_exit

SKLEARN = ["model=sklearn_mlp", *TINY_SKLEARN, "model.max_epochs=2"]


def write_protect(path):
    """Make ``path`` unwritable even for root (chattr +i), or skip; returns the undo."""
    os.chmod(path, 0o444)
    if not os.access(path, os.W_OK):  # not root: the mode is enough
        return lambda: os.chmod(path, 0o644)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without chattr +i: a file cannot be write-protected here")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def failed_runs(uri, count=1):
    runs = assert_nothing_running(uri)
    assert [r.info.status for r in runs] == ["FAILED"] * count
    return runs


@pytest.mark.slow
def test_write_protected_store_file_is_one_line(store):
    db = store.removeprefix("sqlite:///")
    undo = write_protect(db)
    try:
        p = cli(*SKLEARN)
    finally:
        undo()
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2, p.stderr[-3000:]
    assert lines == [lines[-1]] and lines[-1].startswith(f"glyphlab: error: MLflow store {store} is not writable: {db}"), \
        p.stderr[-3000:]
    assert assert_nothing_running(store) == []


def test_artifacts_folder_that_cannot_be_written_ends_the_run_failed(store, capsys):
    artifacts = os.path.join(os.path.dirname(store.removeprefix("sqlite:///")), "artifacts")
    with open(artifacts, "w") as f:  # a file where the artifacts folder goes: unwritable for root too
        f.write("x")
    code, last = main_exit(SKLEARN, capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: MLflow store {store} cannot be written: {artifacts}"), last
    (run,) = failed_runs(store)
    assert last.endswith(f"MLflow run {run.info.run_id} ended FAILED") and run.data.tags["error"] in last


def test_disk_full_under_the_artifacts_is_one_line(store, capsys, monkeypatch):
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    def full(self, local_file, artifact_path=None):
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(self.artifact_dir, "confusion_matrix.png"))

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", full)
    code, last = main_exit(SKLEARN, capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: MLflow store {store}: no space left on the device"), last
    assert "confusion_matrix.png" in last
    failed_runs(store)


@pytest.mark.slow
def test_disk_full_under_the_database_is_one_line(store, capsys, monkeypatch):
    """SQLite's own 'database or disk is full', as on a full disk: the file may not grow past its size at
    the start of the run (PRAGMA max_page_count on every connection MLflow opens)."""
    import sqlalchemy
    from sqlalchemy.engine import Engine

    pages = {}

    def cap(connection, record):
        cursor = connection.cursor()
        pages.setdefault("n", cursor.execute("PRAGMA page_count").fetchone()[0] + 8)  # room for the run's start
        cursor.execute(f"PRAGMA max_page_count = {pages['n']}")
        cursor.close()

    sqlalchemy.event.listen(Engine, "connect", cap)
    try:
        code, last = main_exit([*SKLEARN, "data.samples_per_class=30"], capsys)
    finally:
        sqlalchemy.event.remove(Engine, "connect", cap)
    db = store.removeprefix("sqlite:///")
    assert code == 2 and last.startswith(f"glyphlab: error: MLflow store {store} cannot be written: {db} is on a full "
                                         f"disk"), last
    assert "Traceback" not in capsys.readouterr().err
    assert_nothing_running(store)


@pytest.mark.parametrize("override, expected", [
    ("data.samples_per_class=1.5", "data.samples_per_class must be an integer, got 1.5 (float)"),
    ("data.samples_per_class=many", "data.samples_per_class must be an integer, got 'many' (str)"),
    ("data.seed=[1,2]", "data.seed must be an integer, got [1, 2] (list)"),
    ("eval_data=runes eval_data.samples_per_class=2.5", "eval_data.samples_per_class must be an integer, got 2.5"),
    ("data=latin data.charset=123", "data.charset must be a string, got 123 (int)"),
    ("data=folder data.root=. data.on_bad_file=3", "data.on_bad_file must be a string, got 3 (int)"),
    ("data=folder data.root=. +data.colour=red", "data.colour is not a key of data option folder"),
    ("handwriting.jitter=abc", "handwriting.jitter must be a number, got 'abc' (str)"),
    ("data=latin handwriting.pen_width=0.1", "handwriting.pen_width must be a list, got 0.1 (float)"),
    ("data._target_=glyphlab.data.runes.nope", "data._target_ must name a data set builder"),
], ids=["float for int", "word for int", "list for int", "eval_data", "int for str", "folder", "unknown key",
        "a group's key", "a group's list", "no builder"])
def test_data_key_of_the_wrong_type_is_named(override, expected, store, capsys):
    base = ["model=sklearn_mlp", "model.max_epochs=2"] if "data=folder" in override else SKLEARN
    code, last = main_exit([*base, *override.split()], capsys)
    assert code == 2 and last.startswith("glyphlab: error: ") and expected in last, last
    assert assert_nothing_running(store) == []  # refused before any run


@pytest.mark.parametrize("override, key", [
    ("callbacks.early_stopping.monitor=val/acc", "callbacks.early_stopping.monitor"),
    ("callbacks.best_checkpoint.monitor=train/accuracy", "callbacks.best_checkpoint.monitor"),
    ("+model.plateau.monitor=val/acc", "model.plateau.monitor"),
])
def test_monitor_of_a_metric_that_does_not_exist_is_one_line(override, key, store, capsys):
    code, last = main_exit(["model=cnn", *TINY, override], capsys)
    bad = override.split("=")[1]
    assert code == 2 and last.startswith(f"glyphlab: error: {key} must be a metric the model logs "
                                         f"(train/loss, val/loss, val/accuracy), got '{bad}'"), last
    failed_runs(store)


@pytest.mark.slow
def test_plateau_monitor_that_exists_is_used(store, capsys):
    from glyphlab.experiment import main
    from helpers import compose

    main(compose(["model=cnn", *TINY, "+model.plateau.monitor=val/loss", "+model.plateau.mode=min"]))
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FINISHED"]


def test_callback_value_lightning_refuses_is_one_line(store, capsys):
    code, last = main_exit(["model=cnn", *TINY, "callbacks.early_stopping.mode=maximum"], capsys)
    assert code == 2 and last.startswith("glyphlab: error: callbacks.early_stopping (EarlyStopping"), last
    failed_runs(store)


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError(
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate "
    "268435456000 bytes. Error code 12 (Cannot allocate memory)")], ids=["MemoryError", "torch's allocator"])
def test_out_of_memory_while_training_is_one_line(error, store, capsys, monkeypatch):
    from glyphlab.models.cnn import CNN

    forward = CNN.forward

    def hungry(self, x):
        if self.training:  # the net's check before training runs in eval mode: this is a training step
            raise error
        return forward(self, x)

    monkeypatch.setattr(CNN, "forward", hungry)
    code, last = main_exit(["model=cnn", *TINY], capsys)
    assert code == 2 and last.startswith("glyphlab: error: out of memory while training ("), last
    assert "try a smaller model.batch_size or data.image_size" in last
    (run,) = failed_runs(store)
    assert last.endswith(f"MLflow run {run.info.run_id} ended FAILED")


def test_out_of_memory_in_an_sklearn_fit_names_its_batch_size(store, capsys, monkeypatch):
    from sklearn.neural_network import MLPClassifier

    def hungry(self, *args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    monkeypatch.setattr(MLPClassifier, "partial_fit", hungry)
    code, last = main_exit(SKLEARN, capsys)
    assert code == 2 and "out of memory while training (Unable to allocate 74.5 GiB" in last, last
    assert "model.estimator.batch_size" in last
    failed_runs(store)


def test_disk_full_as_the_run_starts_ends_it_failed(store, capsys, monkeypatch):
    """The run is created, then the store fails to start it: it must not stay RUNNING."""
    import mlflow

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mlflow, "start_run", full)
    code, last = main_exit(SKLEARN, capsys)
    assert code == 2 and last.startswith(f"glyphlab: error: MLflow store {store}: no space left on the device"), last
    (run,) = failed_runs(store)
    assert last.endswith(f"MLflow run {run.info.run_id} ended FAILED")


@pytest.mark.parametrize("argv", [["pedict", "--model", "runs:/x/model", "a.png"], ["comapre"]])
def test_a_mistyped_command_is_one_line_naming_the_commands(argv, capsys):
    from glyphlab import cli

    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"glyphlab: error: unknown command {argv[0]!r}; expected one of compare, predict, draw, fonts, "
                   f"or overrides key=value (glyphlab --help)"]
