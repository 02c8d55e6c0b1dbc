"""Scaling out on real engines, on this machine: submitit (the Slurm plugin, jobs as local processes),
Lightning DDP on CPU, Ray. Each sweep test checks one MLflow parent run, its children linked to it,
every run FINISHED.
"""
from __future__ import annotations

import os
import shlex

import pytest

from helpers import ROOT, TINY_ANY, cli, compose, parent_and_children


def readme_commands(prefix: str) -> list[list[str]]:
    """The `python run.py ...` commands of README's "Scaling out" section and of its page, docs/scaling.md,
    that start with ``prefix`` (each once)."""
    section = (ROOT / "README.md").read_text().split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    section += "\n" + (ROOT / "docs" / "scaling.md").read_text()
    commands = []
    for line in section.replace("\\\n", " ").splitlines():
        if line.startswith(prefix) and shlex.split(line, comments=True) not in commands:
            commands.append(shlex.split(line, comments=True))
    assert commands, f"README's Scaling out and docs/scaling.md show no `{prefix}` command"
    return commands


def compose_command(argv: list[str]):
    """Compose a README command as Hydra would for its first job (a swept list → its first value)."""
    def first_value(arg):
        key, sep, value = arg.partition("=")
        return f"{key}={value.split(',')[0]}" if sep else arg

    return compose([first_value(a) for a in argv[2:] if a != "-m"], hydra=True)


@pytest.mark.slow
def test_submitit_local_sweep_is_one_parent_with_its_children(store, tmp_path):
    p = cli("-m", "hydra/launcher=submitit_local", "model=sklearn_mlp", "seed=0,1", *TINY_ANY,
            f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert p.returncode == 0, p.stderr[-3000:]
    client, parent, children = parent_and_children(store)
    assert parent.data.tags["launcher"] == "LocalLauncher"
    assert sorted(r.data.tags["seed"] for r in children) == ["0", "1"]
    # each job ran in a submitit process of its own and wrote its own Hydra output dir
    pids = {r.data.tags["glyphlab.pid"] for r in children}
    assert len(pids) == 2 and parent.data.tags["glyphlab.pid"] not in pids
    assert sorted(d.name for d in (tmp_path / "sweep").iterdir() if d.name.isdigit()) == ["0", "1"]
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2


def test_slurm_config_of_the_readme_composes_and_makes_an_sbatch_script(tmp_path, monkeypatch):
    """The README's Slurm command, through the real submitit plugin up to `sbatch`: a stand-in
    `sbatch` keeps the script it is handed (and refuses the job), so no cluster is needed."""
    from hydra.utils import instantiate

    [argv] = readme_commands("python run.py -m hydra/launcher=slurm")
    cfg = compose_command(argv + [f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.partition == "gpu" and cfg.hydra.launcher.gpus_per_node == 1

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"sbatch": f'cp "$1" {tmp_path / "job.sbatch"}\necho "sbatch: error: no cluster here" >&2',
                       "srun": "echo never run >&2"}.items():  # submitit looks for srun before it submits
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(Exception, match="no cluster here"):
        launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0)
    script = (tmp_path / "job.sbatch").read_text()
    for flag in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=16GB", "--time=120",
                 "--array=0-1%2", "--ntasks-per-node=1"):
        assert f"#SBATCH {flag}" in script, (flag, script)


@pytest.mark.slow
def test_ddp_on_cpu_is_one_run_per_job_with_one_folder_inside_a_sweep(store, tmp_path):
    """`trainer=ddp` on 2 CPU processes (gloo) in a sweep beside a 1-process job: rank 1 trains
    only, so each job is one MLflow run and one folder, and nothing re-launches the sweep."""
    p = cli("-m", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1,2", "model=cnn", *TINY_ANY,
            "trainer.max_epochs=2", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
            timeout=300)  # a rank that never joins leaves the other waiting for 30 min (torch's default)
    assert p.returncode == 0, p.stderr[-3000:]
    client, parent, children = parent_and_children(store)
    assert len(children) == 2
    single, ddp = sorted(children, key=lambda r: r.data.params["trainer.devices"])
    assert (single.data.params["trainer.devices"], ddp.data.params["trainer.devices"]) == ("1", "2")
    # one folder per job, rank 1's log beside rank 0's; no second sweep or run folder anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "mlruns", "sweep"]
    jobs = sorted(d.name for d in (tmp_path / "sweep").iterdir() if d.is_dir() and not d.name.startswith("."))
    assert jobs == ["0", "1"]
    assert (tmp_path / "sweep" / "1" / "train_ddp_process_1.log").exists()
    assert not (tmp_path / "sweep" / "0" / "train_ddp_process_1.log").exists()
    # the same metrics, one value per epoch, as the 1-process job; test accuracy within noise of it
    assert set(ddp.data.metrics) == set(single.data.metrics)
    for key in ("val/accuracy", "train/loss"):
        assert len(client.get_metric_history(ddp.info.run_id, key)) == \
            len(client.get_metric_history(single.info.run_id, key)) == 2, key
    assert abs(ddp.data.metrics["test/accuracy"] - single.data.metrics["test/accuracy"]) <= 0.1
    assert ddp.data.metrics["test/accuracy"] > 3 / int(ddp.data.metrics["data/n_classes"])  # it learned


@pytest.mark.parametrize("variable", ["LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"])
def test_a_process_started_for_rank_1_is_told_apart(variable, monkeypatch):
    from glyphlab.distributed import is_rank_zero

    for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert is_rank_zero()
    monkeypatch.setenv(variable, "0")
    assert is_rank_zero()
    monkeypatch.setenv(variable, "1")
    assert not is_rank_zero()


@pytest.mark.parametrize("n, batch_size", [(10, 4), (11, 4), (7, 3), (3, 8)])
def test_ddp_ranks_share_out_every_training_batch(n, batch_size, monkeypatch):
    """2 ranks: equal, non-empty shares of every batch (unequal step counts would hang DDP), every
    sample trained once per pass (one repeated to whole shares when n is odd); with an even batch
    size and n, the two shares make up exactly the batches of a single process."""
    import torch

    from glyphlab.models.lit import TensorBatches

    def batches(rank, world):
        stream = TensorBatches(torch.zeros(n, 1, 1, dtype=torch.uint8), torch.arange(n), batch_size,
                               shuffle=True, seed=3)
        monkeypatch.setattr(stream, "_share", lambda: (rank, world))
        got = [labels.tolist() for _, labels in stream]
        assert len(got) == len(stream)
        return got

    single, shares = batches(0, 1), [batches(rank, 2) for rank in range(2)]
    assert len(shares[0]) == len(shares[1])
    assert all(len(a) == len(b) > 0 for a, b in zip(*shares))
    seen = [x for share in shares for batch in share for x in batch]
    assert sorted(set(seen)) == list(range(n)) and len(seen) == n + n % 2
    if n % 2 == 0 and batch_size % 2 == 0:
        assert [sorted(a + b) for a, b in zip(*shares)] == [sorted(s) for s in single]


@pytest.fixture
def ray_cluster(store):
    """A Ray cluster of 2 CPUs on this machine (127.0.0.1), started here and stopped after the test;
    its workers inherit the test store's environment. Yields the address a sweep joins it with."""
    import ray

    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_sweep_on_a_local_cluster_is_one_parent_with_its_children(store, tmp_path, ray_cluster):
    p = cli("-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={ray_cluster}", "model=sklearn_mlp",
            "seed=0,1,2,3", *TINY_ANY, f"tracking.uri={store}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    client, parent, children = parent_and_children(store)
    assert parent.data.tags["launcher"] == "RayLauncher"
    assert sorted(r.data.tags["seed"] for r in children) == ["0", "1", "2", "3"]
    assert parent.data.tags["glyphlab.pid"] not in {r.data.tags["glyphlab.pid"] for r in children}  # Ray workers
    # each job reserved 1 of the cluster's 2 CPUs: 1 thread each, never more than 2 at once
    assert all(r.data.tags["threads"] == "1" for r in children)
    events = sorted([(r.info.start_time, 1) for r in children] + [(r.info.end_time, -1) for r in children])
    running = [sum(step for _, step in events[:i + 1]) for i in range(len(events))]
    assert max(running) <= 2
    assert sorted(d.name for d in (tmp_path / "sweep").iterdir() if d.name.isdigit()) == ["0", "1", "2", "3"]


def test_gpu_check_without_a_gpu_says_so_and_exits_0(monkeypatch, capsys):
    import torch

    gpu_check = _gpu_check()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert "no CUDA GPU here" in out and "nothing to check" in out


def test_gpu_check_run_composes_and_its_training_runs_in_bf16():
    """The GPU check's steps on the CPU, small: its run's overrides compose (online augmentation,
    mixed precision) and its img/s measurement trains in bf16 autocast with the augmenter."""
    gpu_check = _gpu_check()
    cfg = compose(gpu_check.run_overrides("auto", "bf16-mixed", quick=False), hydra=True)
    assert cfg.trainer.accelerator == "auto" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.model.name == "cnn" and cfg.augmentation.mode == "online"
    rate, ran_on = gpu_check.throughput("cpu", "bf16-mixed", n_images=256, epochs=2)
    assert rate > 0 and ran_on == "cpu"


def _gpu_check():
    import sys

    sys.path.insert(0, str(ROOT))  # benchmarks/ lives beside run.py, not installed
    from benchmarks import gpu_check

    return gpu_check


def test_every_launcher_command_of_the_readme_composes():
    for argv in readme_commands("python run.py -m hydra/launcher="):
        cfg = compose_command(argv)
        assert cfg.hydra.launcher._target_.startswith("hydra_plugins."), argv
