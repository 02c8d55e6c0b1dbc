"""Section e2e: `python run.py model=cnn data=runes`, wall time and test accuracy."""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from benchmarks.common import RUN_PY, Row, bench_env, judge, median, spread, timed


def bench_e2e(repeats: int = 2, args=("model=cnn", "data=runes")) -> list[Row]:
    """Section 7: wall time and test accuracy of the default command, from a cold data cache
    (the data set is synthesized) into an existing MLflow store."""
    walls, cpus, fits, accs = [], [], [], []
    warm_walls, warm_fits = [], []   # the same command again on the built data cache: a lone run's usual case
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = bench_env(work)
        from mlflow.tracking import MlflowClient

        MlflowClient(env["MLFLOW_TRACKING_URI"]).search_experiments()  # creates the store (one-off migration)
        for r in range(repeats):
            env["GLYPHLAB_CACHE"] = str(work / f"cache{r}")
            seconds, cpu, proc = timed([sys.executable, str(RUN_PY), *args, f"hydra.run.dir={work / f'run{r}'}"],
                                       env)
            found = re.search(r"test/accuracy (\d\.\d+)", proc.stdout)
            if proc.returncode != 0 or not found:
                raise RuntimeError(f"run.py {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
            walls.append(seconds)
            cpus.append(cpu)
            fits.append(float(re.search(r"fit (\d+\.?\d*)s", proc.stdout).group(1)))
            accs.append(float(found.group(1)))
            seconds, _, proc = timed([sys.executable, str(RUN_PY), *args, f"hydra.run.dir={work / f'warm{r}'}"], env)
            fit = re.search(r"fit (\d+\.?\d*)s", proc.stdout)
            if proc.returncode != 0 or not fit:
                raise RuntimeError(f"run.py {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
            warm_walls.append(seconds)
            warm_fits.append(float(fit.group(1)))
    wall, acc = median(walls), median(accs)
    rows = []
    target, verdict = judge("e2e_s", wall)
    rows.append(Row("e2e", f"`python run.py {' '.join(args)}`, wall", f"{wall:.0f} s", target, verdict,
                    f"{median(cpus):.0f} CPU-s, of which training (`fit`) {median(fits):.0f} s wall; cold data "
                    f"cache (synthesis included), existing MLflow store, model logged; {spread(walls, ' s')}"))
    ratios = [w / f for w, f in zip(warm_walls, warm_fits)]
    target, verdict = judge("e2e_overhead", median(ratios))
    rows.append(Row("e2e", f"`python run.py {' '.join(args)}`, wall / its fit (data cached)", f"{median(ratios):.2f}×",
                    target, verdict, f"{median(warm_walls):.1f} s wall for {median(warm_fits):.1f} s of `fit` (Lightning "
                                     f"import and Trainer set-up included), i.e. {median(warm_walls) - median(warm_fits):.1f} s "
                                     f"outside training; cold cache: {median(walls) / median(fits):.2f}×; "
                                     f"{spread(ratios)}"))
    target, verdict = judge("e2e_accuracy", acc)
    rows.append(Row("e2e", f"`python run.py {' '.join(args)}`, test accuracy", f"{acc:.4f}", target, verdict,
                    f"seed 0; runs: {', '.join(f'{a:.4f}' for a in accs)}"))
    return rows
