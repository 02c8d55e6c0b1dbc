"""The scikit-learn family under interruption and under threads: Ctrl-C and SIGTERM stop a run as they
stop a torch run (one line, exit 128 + the signal, the run KILLED), and the run's `threads` caps every
BLAS and OpenMP pool the fit uses."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys

import pytest
from sklearn.neural_network import MLPClassifier

from helpers import ROOT, TINY_SKLEARN, all_runs, compose, scratch, wait_for


class InterruptedMLP(MLPClassifier):
    """scikit-learn's MLP, interrupted in the middle of its third pass as Ctrl-C or SIGTERM would be.

    The signal is sent from inside ``_backprop``, i.e. inside the ``try`` in which MLPClassifier catches
    KeyboardInterrupt: where a real signal lands nearly every time.
    """
    signal_to_send = signal.SIGTERM

    def partial_fit(self, *args, **kwargs):
        self.passes = getattr(self, "passes", 0) + 1
        return super().partial_fit(*args, **kwargs)

    def _backprop(self, *args, **kwargs):
        if self.passes == 3 and not getattr(self, "sent", False):  # after two logged epochs
            self.sent = True
            os.kill(os.getpid(), self.signal_to_send)
        return super()._backprop(*args, **kwargs)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_an_interrupted_sklearn_run_stops_and_ends_killed(store, monkeypatch, capsys, sent):
    from glyphlab.experiment import main

    if sent == signal.SIGINT and signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's KeyboardInterrupt in this process")
    monkeypatch.setattr(InterruptedMLP, "signal_to_send", sent)
    handlers = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    cfg = compose(["model=sklearn_mlp", *TINY_SKLEARN, "model.max_epochs=6", "model.patience=6",
                   "tracking.log_model=false",
                   f"model.estimator._target_={__name__}.{InterruptedMLP.__qualname__}"])
    with pytest.raises(SystemExit) as exited:  # not swallowed: the process exits 130 (SIGINT) / 143 (SIGTERM)
        main(cfg)
    assert exited.value.code == 128 + sent
    client, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["KILLED"] and runs[0].data.tags["error"] == "interrupted"
    assert runs[0].data.tags["threads"] == "1"  # threads=null: the sklearn family's one BLAS thread
    name = "Ctrl-C (SIGINT)" if sent == signal.SIGINT else "SIGTERM"
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"glyphlab: interrupted by {name}; MLflow run {runs[0].info.run_id} ended KILLED"
    assert len(client.get_metric_history(runs[0].info.run_id, "val/accuracy")) == 2  # it stopped in epoch 2
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == handlers  # put back as they were


def test_an_interrupt_between_a_metrics_write_and_its_commit_still_ends_the_run_killed(store, monkeypatch, capsys):
    # Ctrl-C handled right after log_metrics' INSERTs ran and before their COMMIT (where a real SIGINT landed
    # about one time in twenty): the broken-off call's connection holds the SQLite store's write lock. Ending
    # the run KILLED used to wait out the busy timeout, fail with "database is locked" and leave it RUNNING.
    from sqlalchemy.engine import default

    from glyphlab.errors import Interrupted
    from glyphlab.experiment import main

    executemany, metrics_writes = default.DefaultDialect.do_executemany, []

    def interrupted_after_the_inserts(self, cursor, statement, parameters, context=None):
        executemany(self, cursor, statement, parameters, context)
        if statement.startswith("INSERT INTO metrics") and "val/accuracy" in str(parameters):  # an epoch's
            metrics_writes.append(statement)
            if len(metrics_writes) == 2:  # the second epoch's metrics: written, not committed
                raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(default.DefaultDialect, "do_executemany", interrupted_after_the_inserts)
    cfg = compose(["model=sklearn_mlp", *TINY_SKLEARN, "model.max_epochs=6", "model.patience=6",
                   "tracking.log_model=false"])
    with pytest.raises(SystemExit) as exited:
        main(cfg)
    monkeypatch.undo()
    assert exited.value.code == 130 and len(metrics_writes) == 2
    client, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["KILLED"] and runs[0].data.tags["error"] == "interrupted"
    assert len(client.get_metric_history(runs[0].info.run_id, "val/accuracy")) == 1  # the broken-off write rolled back
    err = capsys.readouterr().err
    assert "Traceback" not in err and "database is locked" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == \
        f"glyphlab: interrupted by Ctrl-C (SIGINT); MLflow run {runs[0].info.run_id} ended KILLED"


def ctrl_c_after_an_epoch(store, *args) -> tuple[int, str, str]:
    """A real `python run.py model=sklearn_mlp ARGS` that would train for a long time, sent SIGINT (what Ctrl-C
    sends) once it has logged an epoch; returns its exit code, stdout and stderr."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args, "model=sklearn_mlp", *TINY_SKLEARN,
                             "model.max_epochs=100000", "model.patience=100000", "tracking.log_model=false"],
                            cwd=scratch(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any("val/accuracy" in r.data.metrics for r in all_runs(store)[1]), "an epoch logged",
                 proc=proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_is_one_line_exit_130_and_the_run_killed(store, tmp_path):
    # sklearn's MLP catches the interrupt inside its pass: glyphlab raises it again.
    code, _, err = ctrl_c_after_an_epoch(store, f"hydra.run.dir={tmp_path / 'out'}")
    assert code == 130, err[-3000:]
    assert "Traceback" not in err and "Training interrupted by user" not in err, err[-3000:]
    client, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["KILLED"] and runs[0].data.tags["error"] == "interrupted"
    said = [line for line in err.splitlines() if "interrupted" in line]
    assert said == [f"glyphlab: interrupted by Ctrl-C (SIGINT); MLflow run {runs[0].info.run_id} ended KILLED"], err
    assert err.strip().splitlines() == said  # nothing else on stderr: no sklearn warning, no traceback


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_stops_it_and_ends_job_and_parent_killed_without_a_traceback(store, tmp_path):
    # `python run.py -m ...` (Hydra's basic launcher: the jobs run in this process one after the other), Ctrl-C
    # in the first job: the job says which run ended KILLED, the sweep which job it stopped in, the parent run
    # ends KILLED (not FAILED, not "died with its process"), the second job never starts, exit 130.
    code, out, err = ctrl_c_after_an_epoch(store, "-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert code == 130, err[-3000:]
    client, runs = all_runs(store)
    child = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    parent = [r for r in runs if r.data.tags.get("glyphlab.sweep") == "parent"]
    assert len(child) == 1 and len(parent) == 1, [r.data.tags.get("mlflow.runName") for r in runs]  # job 1 never ran
    assert child[0].info.status == "KILLED" and parent[0].info.status == "KILLED"
    assert err.strip().splitlines() == [
        f"glyphlab: interrupted by Ctrl-C (SIGINT); MLflow run {child[0].info.run_id} ended KILLED",
        f"glyphlab: sweep interrupted by Ctrl-C (SIGINT) in job #0 after 0 of 2 jobs finished; "
        f"the parent run {parent[0].info.run_id} ended KILLED"], err[-3000:]  # and no traceback
    assert "seed=0 → interrupted" in out, out[-2000:]


@pytest.mark.slow
def test_threads_caps_every_blas_and_openmp_pool_even_those_loaded_later():
    # A fresh process: here every pool is loaded already. scikit-learn loads scipy's own OpenBLAS and its
    # OpenMP after limit_threads ran in a run; uncapped they start a thread per core, which on a busy
    # machine makes each small matrix product of the MLP wait for a thread the scheduler has not run.
    script = ("from glyphlab.steps import limit_threads; limit_threads(1, with_torch=False); "
              "import sklearn.neural_network; from threadpoolctl import threadpool_info; "
              "print(sorted({i['filepath'].rsplit('/', 1)[-1]: i['num_threads'] for i in threadpool_info()}.items()))")
    # Without the xdist workers' OPENBLAS_NUM_THREADS=1 and the like, or the pools would start at one thread
    # and the cap could not be seen to work.
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    pools = dict(ast.literal_eval(p.stdout))
    assert len(pools) >= 2 and set(pools.values()) == {1}, pools  # numpy's BLAS, scipy's BLAS, OpenMP


@pytest.mark.slow
def test_threads_null_gives_the_sklearn_family_one_blas_thread_and_the_next_job_its_cores_back():
    # A fresh process whose BLAS pools start at one thread per core (the xdist workers' OPENBLAS_NUM_THREADS=1
    # and the like removed), as `python run.py model=sklearn_mlp` starts.
    script = """
import json
from glyphlab import usable_cores
from glyphlab.models.sklearn_adapter import SklearnFamily
from glyphlab.steps import limit_threads
import sklearn.neural_network
from threadpoolctl import threadpool_info

def pools():
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

seen = {"cores": usable_cores(), "start": pools()}
seen["sklearn, threads=null"] = [limit_threads(None, with_torch=False, family_threads=SklearnFamily.default_threads),
                                 pools()]
seen["next job, no family cap"] = [limit_threads(None, with_torch=False), pools()]
seen["sklearn, threads=2"] = [limit_threads(2, with_torch=False, family_threads=SklearnFamily.default_threads),
                              pools()]
print(json.dumps(seen))
"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    import json

    seen = json.loads(p.stdout)
    cores = seen["cores"]
    assert seen["start"] == [cores]
    assert seen["sklearn, threads=null"] == [1, [1]]                # the family's default: one BLAS thread
    assert seen["next job, no family cap"] == [cores, [cores]]       # a sequential sweep's next (torch) job
    assert seen["sklearn, threads=2"] == [2, [2]]                    # a threads the user set wins
