"""Section sweep: a 4-job sweep, sequential vs hydra/launcher=joblib n_jobs=2."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.common import FULL, RUN_PY, Row, bench_env, judge, median, spread, timed
from glyphlab import usable_cores


def _finished_runs(uri: str, experiment: str) -> int:
    """Runs of ``experiment`` that ended FINISHED with a test accuracy (the sweep's parent excluded)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return 0
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return sum(r.info.status == "FINISHED" and "test/accuracy" in r.data.metrics for r in runs)


def bench_sweep(sweep_args=FULL["sweep_args"], repeats: int = 3) -> list[Row]:
    """Section 6: the same multirun sequential vs hydra/launcher=joblib n_jobs=2, interleaved."""
    n_jobs = 1
    for a in sweep_args:
        if "," in a:
            n_jobs *= len(a.split("=", 1)[1].split(","))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = bench_env(work)
        uri = env["MLFLOW_TRACKING_URI"]
        # Warm-up (not timed): builds the data set into the cache and creates the MLflow store.
        *_, proc = timed([sys.executable, str(RUN_PY), *[a.split(",")[0] for a in sweep_args], "trainer.max_epochs=1",
                          "tracking.experiment=warmup", f"hydra.run.dir={work / 'warm'}"], env)
        if proc.returncode != 0:
            raise RuntimeError(f"sweep warm-up run failed:\n{proc.stderr[-2000:]}")
        seq, par, speedups = [], [], []
        for r in range(repeats):
            for kind, extra, times in (("seq", [], seq),
                                       ("joblib", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], par)):
                experiment = f"bench-{kind}-{r}"
                seconds, _, proc = timed([sys.executable, str(RUN_PY), "-m", *sweep_args, *extra,
                                          "trainer.enable_progress_bar=false", f"tracking.experiment={experiment}",
                                          f"hydra.sweep.dir={work / experiment}"], env)
                done = _finished_runs(uri, experiment)
                if proc.returncode != 0 or done != n_jobs:
                    raise RuntimeError(f"{kind} sweep: exit {proc.returncode}, {done}/{n_jobs} runs finished:\n"
                                       f"{proc.stderr[-2000:]}")
                times.append(seconds)
            speedups.append(seq[-1] / par[-1])
    speedup = median(speedups)
    target, verdict = judge("sweep_speedup", speedup)
    return [Row("sweep", f"{n_jobs}-job sweep: sequential / joblib n_jobs=2 wall", f"{speedup:.2f}×", target,
                verdict, f"`run.py -m {' '.join(sweep_args)}`: sequential {median(seq):.0f} s "
                         f"({usable_cores()} threads per job), joblib {median(par):.0f} s (1 thread per job); data "
                         f"cached; {spread(speedups)}")]
