"""MLflow runs → a comparison report: a markdown table and charts in ``experiments/<study>/``.

    glyphlab compare                          # the latest sweep (its parent run's children)
    glyphlab compare --experiment mlp_vs_cnn  # every run of an MLflow experiment
    glyphlab compare --parent <run id> --study my_study
    glyphlab compare --tag data=runes --tag augmentation=rotate
    glyphlab compare --experiment synth_to_real --by data.normalize

Finished runs are grouped by data × model × augmentation (× eval_data when runs have one,
× each ``--by`` config key, e.g. a setting a second sweep changed);
each group gets ``test/accuracy`` mean ± std over its runs (the seeds of a sweep), and the same
for ``test/macro_f1`` and ``eval/accuracy``, the mean fit time and the parameter count. The
folder gets ``report.md``, ``accuracy.png`` (bars with ± std error bars) and
``confusion_matrices.png`` (the ``confusion_matrix.png`` artifacts of the best run per model,
side by side). The table is printed too.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from glyphlab import project_root
from glyphlab.errors import CompareError
from glyphlab.report import write_report


def find_runs(client, experiment: str | None = None, parent: str | None = None,
              tags: dict[str, str] | None = None) -> tuple[list, str]:
    """The runs to compare and a one-line description of how they were chosen.

    With no ``experiment``, ``parent`` or ``tags``: the children of the newest sweep parent run
    (tag ``glyphlab.sweep=parent``) in the store. Sweep parent runs themselves are never returned.
    """
    if experiment is not None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = ", ".join(e.name for e in client.search_experiments()) or "none"
            raise CompareError(f"no MLflow experiment named {experiment!r} (experiments: {names})")
        experiment_ids = [exp.experiment_id]
    else:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        raise CompareError("the MLflow store has no experiment yet; run `python run.py` first")

    if parent is None and experiment is None and not tags:
        latest = client.search_runs(experiment_ids, "tags.`glyphlab.sweep` = 'parent'",
                                    order_by=["attributes.start_time DESC"], max_results=1)
        if not latest:
            raise CompareError("no sweep in the MLflow store; run `python run.py -m ...` first, "
                               "or pick runs with --experiment, --parent or --tag")
        parent = latest[0].info.run_id
    elif parent is not None:
        try:
            client.get_run(parent)
        except Exception:  # MlflowException: no such run (or a malformed id)
            raise CompareError(f"--parent {parent}: no MLflow run with that id in this store; expected the "
                               f"run id of a sweep's parent run (its summary prints it)") from None
    filters = []
    if parent is not None:
        filters.append(f"tags.`mlflow.parentRunId` = '{parent}'")
    for key, value in (tags or {}).items():
        filters.append(f"tags.`{key}` = '{value}'")
    runs = []
    token = None
    while True:  # pages of 1000 (MLflow's limit per request on a tracking server)
        page = client.search_runs(experiment_ids, " and ".join(filters), max_results=1000, page_token=token)
        runs.extend(r for r in page if r.data.tags.get("glyphlab.sweep") != "parent")
        token = page.token
        if not token:
            break

    chosen = []
    if parent is not None:
        run = client.get_run(parent)
        overrides = run.data.tags.get("overrides", "")
        chosen.append(f"children of sweep run `{parent}`" + (f" (`{overrides}`)" if overrides else ""))
    if experiment is not None:
        chosen.insert(0, f"the runs of experiment `{experiment}`")
    chosen += [f"tag `{k}={v}`" for k, v in (tags or {}).items()]
    return runs, ", ".join(chosen)


def study_dir(study: str | None, default_name: str) -> Path:
    """``--study``: a bare name is a folder of ``experiments/``; anything with a slash is a path."""
    name = study or re.sub(r"[^A-Za-z0-9_.-]+", "_", default_name)
    return Path(name) if "/" in name or "\\" in name else project_root() / "experiments" / name


def _write(client, runs, chosen: str, out_dir: Path, command: str, by) -> str:
    """:func:`write_report` into ``out_dir``, made first; a CompareError (one line) when it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file of that name, no permission, a read-only disk
        raise CompareError(f"--study {out_dir}: cannot make the report folder ({e.strerror}); "
                           f"expected a folder that exists or can be created") from None
    try:
        return write_report(client, runs, chosen, out_dir, command, by)
    except OSError as e:  # a read-only folder, a full disk
        raise CompareError(f"cannot write the report into {out_dir}: {e.strerror} "
                           f"({e.filename or 'a file in it'})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glyphlab compare", description=__doc__.split("\n\n")[0],
                                     epilog="examples:\n" + __doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", help="MLflow experiment name (tracking.experiment of the runs)")
    parser.add_argument("--parent", metavar="RUN_ID", help="the sweep's parent run: compare its children")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                        help="only runs with this tag, e.g. data=runes (repeatable)")
    parser.add_argument("--study", metavar="NAME_OR_DIR",
                        help="output folder: a name under experiments/ or a path (default: the experiment's name)")
    parser.add_argument("--by", action="append", default=[], metavar="KEY",
                        help="also group by this config key (an MLflow param), e.g. data.normalize (repeatable)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///<repo>/mlruns/mlflow.db)")
    args = parser.parse_args(argv)

    from mlflow.tracking import MlflowClient

    from glyphlab.tracking.liveness import mark_dead_runs
    from glyphlab.errors import TrackingError
    from glyphlab.tracking.sqlite_store import check as check_sqlite
    from glyphlab.tracking.store import sqlite_path, tracking_uri

    tags = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--tag takes KEY=VALUE, got {item!r}")
        tags[key] = value
    uri = tracking_uri(args.tracking_uri)
    db = sqlite_path(uri)
    try:
        if db is not None and not db.exists():
            raise CompareError(f"no MLflow store at {uri}; run an experiment first or pass --tracking-uri")
        if db is not None:
            try:  # not SQLite, or another application's database: MLflow would add its tables
                check_sqlite(db, uri)
            except TrackingError as e:
                raise CompareError(str(e)) from None
        client = MlflowClient(uri)
        mark_dead_runs(client)  # a run whose process was killed unseen shows as KILLED, not RUNNING
        runs, chosen = find_runs(client, args.experiment, args.parent, tags)
        if not runs:
            raise CompareError(f"no runs match ({chosen or 'all runs'}) in {uri}")
        default_name = client.get_experiment(runs[0].info.experiment_id).name
        out_dir = study_dir(args.study, default_name)
        command = " ".join(["glyphlab compare",
                            *[a for a in (argv if argv is not None else sys.argv[1:])
                              if a != args.tracking_uri and not a.startswith("--tracking-uri")]])
        text = _write(client, runs, chosen, out_dir, command, args.by)
    except CompareError as e:
        print(f"glyphlab.compare: error: {e}", file=sys.stderr)
        return 2
    print(text)
    print(f"\nwrote {out_dir / 'report.md'} (+ accuracy.png, confusion_matrices.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
