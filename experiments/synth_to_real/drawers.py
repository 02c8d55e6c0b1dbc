"""Which drawers a study's models misread: eval accuracy per Omniglot drawer, from the logged models of visible.sh runs.

    python experiments/synth_to_real/drawers.py <store>/mlflow.db <study> [set]   # set: latin, greek, kana (default kana)

For every FINISHED run of ``params.study = <study>`` on that set (visible.sh with ``tracking.log_model=true``): the
logged model read through the run's own test-time views (``model.tta`` as the run logged it) on the run's real set, as
tta_screen.py composes it, split by drawer (``meta["drawers"]``). Prints one line per drawer — accuracy per seed
and the mean — then the set's accuracy without its k worst drawers (k = 0..3), to say how much of what is missed
is a few hands.
"""
from __future__ import annotations

import sys

import numpy as np

from tta_screen import logged_reader, real_set


def main(db: str, study: str, wanted: str = "kana") -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from glyphlab.models.tta import with_views

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("synth_to_real")
    runs = [r for r in client.search_runs([experiment.experiment_id], f"params.study = '{study}'", max_results=1000)
            if r.info.status == "FINISHED" and r.data.params["data.name"] == wanted]
    if not runs:
        raise SystemExit(f"drawers.py: no FINISHED run of study {study!r} on data {wanted!r} in {db}")
    per_seed, drawers = {}, None
    for run in sorted(runs, key=lambda r: int(r.data.params["seed"])):
        reader, meta = logged_reader(run.info.run_id)
        real = real_set(run.data.params)
        index = {c: i for i, c in enumerate(meta["classes"])}
        truth = np.array([index[real.classes[label]] for label in real.labels])
        read = with_views(reader, meta.get("tta"))(real.images).argmax(-1)
        drawers = np.asarray(real.meta["drawers"])
        per_seed[run.data.params["seed"]] = read == truth
    seeds = list(per_seed)
    print("drawer\t" + "\t".join(f"seed {s}" for s in seeds) + "\tmean")
    means = {}
    for d in sorted(set(drawers.tolist())):
        accs = [per_seed[s][drawers == d].mean() for s in seeds]
        means[d] = float(np.mean(accs))
        print(f"{d}\t" + "\t".join(f"{a:.3f}" for a in accs) + f"\t{means[d]:.3f}")
    worst = sorted(means, key=means.get)
    for k in range(4):
        keep = ~np.isin(drawers, worst[:k])
        accs = [per_seed[s][keep].mean() for s in seeds]
        print(f"without the {k} worst drawers {worst[:k]}: " + " / ".join(f"{a:.3f}" for a in accs)
              + f" = {np.mean(accs):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
