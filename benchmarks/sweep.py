"""Section sweep: a 6-job sweep (`-m model=cnn,sklearn_mlp seed=0,1,2`, data cached) under the
sequential (basic) launcher and under hydra/launcher=joblib n_jobs=2 — the one-machine launcher
README.md's "Scaling out" recommends: throughput in jobs per minute, and the sequential sweep's wall
time against the sum of its jobs' fits (what a sweep spends outside training)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.common import FULL, RUN_PY, Row, bench_env, judge, median, spread, timed
from glyphlab import usable_cores

LAUNCHERS = {"sequential": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def _finished_runs(uri: str, experiment: str) -> list:
    """Runs of ``experiment`` that ended FINISHED with a test accuracy (the sweep's parent excluded)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.info.status == "FINISHED" and "test/accuracy" in r.data.metrics]


def n_jobs_of(sweep_args) -> int:
    n = 1
    for a in sweep_args:
        if "," in a:
            n *= len(a.split("=", 1)[1].split(","))
    return n


def bench_sweep(sweep_args=FULL["sweep_args"], repeats: int = 2) -> list[Row]:
    """The same multirun under each launcher of ``LAUNCHERS``, alternated (the order flips every
    repeat); fits are the jobs' own ``time/fit_s`` as logged to MLflow."""
    n_jobs = n_jobs_of(sweep_args)
    walls = {k: [] for k in LAUNCHERS}
    overheads = []   # sequential wall / sum of its fits
    failed: dict[str, str] = {}
    fits = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = bench_env(work)
        uri = env["MLFLOW_TRACKING_URI"]
        # Warm-up (not timed): builds the data set into the cache and creates the MLflow store.
        *_, proc = timed([sys.executable, str(RUN_PY), *[a.split(",")[0] for a in sweep_args], "trainer.max_epochs=1",
                          "tracking.experiment=warmup", f"hydra.run.dir={work / 'warm'}"], env)
        if proc.returncode != 0:
            raise RuntimeError(f"sweep warm-up failed:\n{proc.stderr[-2000:]}")
        for r in range(repeats):
            for kind in (list(LAUNCHERS) if r % 2 == 0 else list(LAUNCHERS)[::-1]):
                experiment = f"bench-{kind}-{r}"
                seconds, _, proc = timed([sys.executable, str(RUN_PY), "-m", *sweep_args, *LAUNCHERS[kind],
                                          "trainer.enable_progress_bar=false", f"tracking.experiment={experiment}",
                                          f"hydra.sweep.dir={work / experiment}"], env)
                done = _finished_runs(uri, experiment)
                if proc.returncode != 0 or len(done) != n_jobs:  # a row saying so; the other launcher still counts
                    failed[kind] = (f"exit {proc.returncode}, {len(done)}/{n_jobs} runs finished: "
                                    f"{(proc.stderr.strip().splitlines() or ['?'])[-1][:300]}")
                    continue
                walls[kind].append(seconds)
                if kind == "sequential":
                    fit = sum(run.data.metrics["time/fit_s"] for run in done)
                    fits.append(fit)
                    overheads.append(seconds / fit)
    args = " ".join(sweep_args)
    rows = [Row("sweep", f"{n_jobs}-job sweep, {kind} launcher", "failed", detail=f"`run.py -m {args}`: {why}")
            for kind, why in failed.items()]
    if not overheads:
        return rows
    overhead = median(overheads)
    target, verdict = judge("sweep_overhead", overhead)
    between = (median(walls["sequential"]) - median(fits)) / n_jobs
    rows.append(Row("sweep", f"{n_jobs}-job sequential sweep: wall / sum of its fits", f"{overhead:.2f}×", target,
                    verdict, f"`run.py -m {args}`: {median(walls['sequential']):.0f} s wall, fits (each job's "
                             f"time/fit_s) {median(fits):.0f} s, i.e. {between:.1f} s per job outside training "
                             f"(process start included); data cached; {spread(overheads)}"))
    for kind in LAUNCHERS:
        if not walls[kind]:
            continue
        rate = [n_jobs / w * 60 for w in walls[kind]]
        name = ("sequential (basic) launcher, all cores per job" if kind == "sequential" else
                "hydra/launcher=joblib n_jobs=2 (README's one-machine launcher), 1 thread per job")
        rows.append(Row("sweep", f"sweep throughput, {name}", f"{median(rate):.1f} jobs/min",
                        detail=f"`run.py -m {args}`, {median(walls[kind]):.0f} s wall; {spread(rate)}"))
    speedups = [s / p for s, p in zip(walls["sequential"], walls["joblib"])]
    if not speedups:
        return rows
    rows.append(Row("sweep", f"{n_jobs}-job sweep: sequential / joblib n_jobs=2 wall", f"{median(speedups):.2f}×",
                    "retired (was ≥ 1.6×)", "–",
                    f"on {usable_cores()} cores one job already uses all of them (BENCHMARKS.md notes); "
                    f"{spread(speedups)}"))
    return rows
