"""The scikit-learn family under interruption and under threads: Ctrl-C and SIGTERM stop a run as they
stop a torch run, and the run's `threads` caps every BLAS and OpenMP pool the fit uses."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys

import pytest
from sklearn.neural_network import MLPClassifier

from conftest import TINY_SKLEARN, all_runs, compose


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
def test_an_interrupted_sklearn_run_stops_and_ends_killed(store, monkeypatch, sent):
    from glyphlab.experiment import main

    if sent == signal.SIGINT and signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's KeyboardInterrupt in this process")
    monkeypatch.setattr(InterruptedMLP, "signal_to_send", sent)
    handlers = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    cfg = compose(["model=sklearn_mlp", *TINY_SKLEARN, "model.max_epochs=6", "model.patience=6",
                   "tracking.log_model=false",
                   f"model.estimator._target_={__name__}.{InterruptedMLP.__qualname__}"])
    with pytest.raises(KeyboardInterrupt):  # not swallowed: the process exits non-zero (Python's 130 / SIGINT)
        main(cfg)
    client, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["KILLED"] and runs[0].data.tags["error"] == "interrupted"
    assert len(client.get_metric_history(runs[0].info.run_id, "val/accuracy")) == 2  # it stopped in epoch 2
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == handlers  # put back as they were


def test_threads_caps_every_blas_and_openmp_pool_even_those_loaded_later():
    # A fresh process: here every pool is loaded already. scikit-learn loads scipy's own OpenBLAS and its
    # OpenMP after limit_threads ran in a run; uncapped they start a thread per core, which on a busy
    # machine makes each small matrix product of the MLP wait for a thread the scheduler has not run.
    script = ("from glyphlab.steps import limit_threads; limit_threads(1, with_torch=False); "
              "import sklearn.neural_network; from threadpoolctl import threadpool_info; "
              "print(sorted({i['filepath'].rsplit('/', 1)[-1]: i['num_threads'] for i in threadpool_info()}.items()))")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    pools = dict(ast.literal_eval(p.stdout))
    assert len(pools) >= 2 and set(pools.values()) == {1}, pools  # numpy's BLAS, scipy's BLAS, OpenMP
