"""Scaling out on real engines, on this machine: submitit (the Slurm plugin, jobs as local processes),
Lightning DDP on CPU, Ray. Each sweep test checks one MLflow parent run, its children linked to it,
every run FINISHED.
"""
from __future__ import annotations

import os
import shlex

import pytest

from conftest import ROOT, all_runs, cli
from test_sweeps import TINY_ANY, compose_with_hydra, parent_and_children


def readme_commands(prefix: str) -> list[list[str]]:
    """The `python run.py ...` commands of README's "Scaling out" section that start with ``prefix``."""
    section = (ROOT / "README.md").read_text().split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    commands = [shlex.split(line, comments=True) for line in section.replace("\\\n", " ").splitlines()
                if line.startswith(prefix)]
    assert commands, f"README's Scaling out section shows no `{prefix}` command"
    return commands


def compose_command(argv: list[str]):
    """Compose a README command as Hydra would for its first job (a swept list → its first value)."""
    def first_value(arg):
        key, sep, value = arg.partition("=")
        return f"{key}={value.split(',')[0]}" if sep else arg

    return compose_with_hydra([first_value(a) for a in argv[2:] if a != "-m"])


def test_submitit_local_sweep_is_one_parent_with_its_children(store, tmp_path):
    p = cli("-m", "hydra/launcher=submitit_local", "model=sklearn_mlp", "seed=0,1", *TINY_ANY,
            f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert p.returncode == 0, p.stderr[-3000:]
    client, parent, children = parent_and_children(store)
    assert parent.data.tags["launcher"] == "LocalLauncher"
    assert sorted(r.data.tags["seed"] for r in children) == ["0", "1"]
    # each job ran in its own submitit process and wrote its own Hydra output dir
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

