"""What a sweep shows (#16 item 4): a line per finished job, ``[n/N] model data overrides → accuracy (time)``,
numbered by the sweep's own process whatever process ran the job, and at the end the comparison table,
printed and logged on the parent run as report.md and accuracy.png."""
from __future__ import annotations

import re

import pytest

from helpers import TINY_ANY, check_report, cli, job_lines, parent_of


@pytest.mark.slow
def test_basic_launcher_shows_each_job_as_it_ends_then_the_table(store, tmp_path):
    # seed=-1 is refused before the job's run starts: a failed job among the lines
    p = cli("-m", "model=sklearn_mlp", "seed=0,-1", *TINY_ANY, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert p.returncode == 1, p.stderr[-3000:]
    lines = job_lines(p.stdout)
    assert len(lines) == 2, p.stdout
    assert re.fullmatch(r"\[1/2\] sklearn_mlp runes seed=0 → [01]\.\d{3} \(\d+ s\)", lines[0]), lines
    assert re.fullmatch(r"\[2/2\] sklearn_mlp runes seed=-1 → failed \(\d+ s\)", lines[1]), lines
    # each line comes when its job ends: before the next job's output, not all at the end
    out = p.stdout
    assert out.index(lines[0]) < out.index("seed=-1 data.") < out.index(lines[1]) < out.index("| runes |")
    client, parent, children = parent_of(store)
    [child] = children
    assert lines[0].split("→ ")[1].startswith(f"{child.data.metrics['test/accuracy']:.3f}")
    check_report(client, parent, children, out)


# The joblib launcher's lines (jobs in other processes): tests/test_reliability.py, eight parallel jobs.


def test_sweep_size_counts_the_jobs_of_hydras_sweep_syntax():
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from helpers import ROOT
    from glyphlab.tracking.progress import sweep_size

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
        optuna = compose(config_name="config", overrides=["hparams_search=optuna", "hydra.sweeper.n_trials=7"],
                         return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["model=sklearn_mlp,mlp,cnn", "seed=range(0,4)", "data.image_size=16"]
    assert sweep_size(cfg) == 12
    with open_dict(cfg):  # a preset's swept params, and a command-line value that replaces one of them
        cfg.hydra.sweeper.params = {"model": "mlp,cnn", "augmentation": "none,rotate"}
        cfg.hydra.overrides.task = ["model=cnn", "seed=0,1,2"]
    assert sweep_size(cfg) == 6
    assert sweep_size(optuna) == 7
