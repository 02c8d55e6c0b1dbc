"""trainer.precision=auto: bf16-mixed only where the device computes bf16 natively, 32-true elsewhere,
and the run records which one it trained in. The hardware probe is monkeypatched both ways, so
the choice is proven on any machine; the trainings are real and tiny."""
from __future__ import annotations

import pytest
import torch

from helpers import TINY, all_runs, compose
from glyphlab.models import torch_adapter, training
from glyphlab.models.training import resolve_precision


def test_the_default_precision_is_auto():
    assert compose().trainer.precision == "auto"


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cpu_follows_its_bf16_hardware(monkeypatch, native, expected):
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto", "auto") == expected
    assert resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cuda_gpu_follows_the_gpu_not_the_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: not native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: native)
    assert resolve_precision("auto", "gpu") == expected
    assert resolve_precision("auto", "auto") == expected
    # accelerator=cpu on a machine with a GPU: the CPU decides
    assert resolve_precision("auto", "cpu") == ("32-true" if native else "bf16-mixed")


def test_a_precision_given_is_kept_whatever_the_hardware(monkeypatch):
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    for given in ("32-true", "bf16-mixed", "16-mixed", 32):
        assert resolve_precision(given, "cpu") == given


def test_the_cpu_probe_reads_torchs_capabilities(monkeypatch):
    for caps, expected in (({"avx512_bf16": True}, True), ({"amx_bf16": True, "avx512_bf16": False}, True),
                           ({"avx512_f": True, "avx512_bf16": False, "amx_bf16": False}, False), ({}, False)):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        assert training.cpu_has_native_bf16() is expected


@pytest.mark.slow
@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_a_run_trains_in_the_chosen_precision_and_records_it(store, monkeypatch, native, expected):
    from glyphlab.experiment import run

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    used = []
    fit = torch_adapter.TorchFamily.fit

    def watched_fit(self, cfg, *args, **kwargs):  # the precision Lightning trained in, seen from inside fit
        import pytorch_lightning as pl

        original = pl.Trainer.fit

        def record(trainer, *a, **k):
            used.append(trainer.precision)
            return original(trainer, *a, **k)

        with monkeypatch.context() as m:
            m.setattr(pl.Trainer, "fit", record)
            return fit(self, cfg, *args, **kwargs)

    monkeypatch.setattr(torch_adapter.TorchFamily, "fit", watched_fit)
    accuracy = run(compose(["model=cnn", *TINY, "trainer.max_epochs=1"]))
    assert 0.0 <= accuracy <= 1.0
    assert used == [expected]
    _, runs = all_runs(store)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["precision"] == expected
    assert runs[0].data.params["trainer.precision"] == "auto"
