"""What a comparison report holds: MLflow runs → a table of runs, a summary per group (mean ± std
over its runs), the settings that differ, a markdown table and the charts; :func:`write_report`
writes them into one folder. Which runs, and where the folder is: :mod:`glyphlab.compare`.
"""
from __future__ import annotations

import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glyphlab.errors import CompareError

if TYPE_CHECKING:  # pandas is imported where a table is built
    import pandas as pd

GROUP_TAGS = ["data", "model", "augmentation"]
# (MLflow metric, column title, digits); the first is the one groups and best runs are ranked by.
METRICS = [("test/accuracy", "test accuracy", 3), ("test/macro_f1", "test macro F1", 3),
           ("test/digit_accuracy", "test position accuracy", 3), ("eval/accuracy", "eval accuracy", 3)]


def runs_table(runs, by=()) -> "pd.DataFrame":
    """One row per run: run_id, status, experiment_id, the group tags, seed, the ``by`` config
    values (MLflow params; ``(unset)`` where a run has none) and the compared metrics."""
    import pandas as pd

    rows = []
    for r in runs:
        tags, metrics = r.data.tags, r.data.metrics
        row = {"run_id": r.info.run_id, "status": r.info.status, "experiment_id": r.info.experiment_id,
               "seed": tags.get("seed", ""), "eval_data": tags.get("eval_data", "")}
        row.update({t: tags.get(t, "?") for t in GROUP_TAGS})
        row.update({key: r.data.params.get(key, "(unset)") for key in by})
        for key in [m for m, _, _ in METRICS] + ["time/fit_s", "model/n_params"]:
            row[key] = metrics.get(key, np.nan)
        rows.append(row)
    columns = ["run_id", "status", "experiment_id", "seed", "eval_data", *GROUP_TAGS, *by,
               *[m for m, _, _ in METRICS], "time/fit_s", "model/n_params"]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["by"] = list(by)
    return table


def group_keys(table) -> list[str]:
    return GROUP_TAGS + (["eval_data"] if (table["eval_data"] != "").any() else []) + table.attrs.get("by", [])


def summarize(table) -> "pd.DataFrame":
    """One row per group of finished runs: n, mean and std (ddof=1) of each metric, mean fit time, params.

    Sorted by data, model, augmentation (and eval_data).
    """
    keys = group_keys(table)
    done = table[table.status == "FINISHED"]
    if done.empty:
        raise CompareError(f"none of the {len(table)} matching runs finished "
                           f"(statuses: {', '.join(sorted(set(table.status)))})")
    stats = {"n": ("run_id", "size"), "fit_s": ("time/fit_s", "mean"), "n_params": ("model/n_params", "median"),
             "best_run": ("run_id", "first")}
    for metric, _, _ in METRICS:
        stats[f"{metric} mean"] = (metric, "mean")
        stats[f"{metric} std"] = (metric, "std")
    ranked = done.sort_values("test/accuracy", ascending=False, na_position="last")
    summary = ranked.groupby(keys, sort=False).agg(**stats).reset_index().sort_values(keys, ignore_index=True)
    summary.attrs["by"] = table.attrs.get("by", [])
    return summary


def differing_settings(runs, table) -> list[str]:
    """Config values (MLflow params) that differ between the finished runs, as markdown items.

    Left out: the seeds, and a group's own settings (``model.*`` differs with the model) unless
    they also differ inside a group, as an Optuna search's do. What remains is what a reader of
    the table must know, e.g. ``trainer.max_epochs`` set differently for some runs.
    """
    import pandas as pd

    params = {r.info.run_id: r.data.params for r in runs}
    done = table[table.status == "FINISHED"]
    keys = group_keys(table)
    groups = done[keys].astype(str).agg("/".join, axis=1)
    items = []
    for key in sorted(set().union(*(params[i] for i in done.run_id))):
        if re.search(r"(^|\.)(seed|random_state)$", key) or key.startswith("search_space."):
            continue
        values = pd.Series([params[i].get(key, "(unset)") for i in done.run_id], index=done.index)
        if values.nunique() < 2:
            continue
        inside = (values.groupby(groups).nunique() > 1).any()
        if (key.split(".")[0] in keys and not inside) or key in keys:
            continue
        if inside:
            items.append(f"- `{key}`: {values.nunique()} different values, also within groups")
        else:
            parts = [f"{value} ({', '.join(sorted(set(groups[values == value])))})" for value in sorted(set(values))]
            items.append(f"- `{key}`: " + "; ".join(parts))
    return items


def _mean_std(mean: float, std: float, n: int, digits: int) -> str:
    if np.isnan(mean):
        return "–"
    if n < 2 or np.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(summary) -> str:
    """The summary as a GitHub markdown table; metrics no group has are left out."""
    keys = [k for k in [*GROUP_TAGS, "eval_data"] if k in summary.columns] + summary.attrs.get("by", [])
    metrics = [(m, title, d) for m, title, d in METRICS if summary[f"{m} mean"].notna().any()]
    header = [*keys, "runs", *[title for _, title, _ in metrics], "fit time (s)", "parameters", "best run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(keys) + ["--:"] * (len(header) - len(keys))) + "|"]
    for _, row in summary.iterrows():
        cells = [str(row[k]) for k in keys] + [str(int(row["n"]))]
        cells += [_mean_std(row[f"{m} mean"], row[f"{m} std"], int(row["n"]), d) for m, _, d in metrics]
        cells.append("–" if np.isnan(row["fit_s"]) else f"{row['fit_s']:.1f}")
        cells.append("–" if np.isnan(row["n_params"]) else f"{int(row['n_params']):,}")
        cells.append(f"`{row['best_run'][:8]}`")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_accuracy(summary, path: Path) -> None:
    """Bars of mean accuracy per model, one bar per augmentation, ± std error bars; one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(m, title) for m, title, _ in METRICS
               if m != "test/macro_f1" and summary[f"{m} mean"].notna().any()]
    several_data = summary["data"].nunique() > 1
    summary = summary.assign(where=summary["data"] + " · " + summary["model"] if several_data else summary["model"])
    # One bar colour per augmentation (and --by values): "heavy", or "heavy · data.normalize=box".
    by = summary.attrs.get("by", [])
    summary = summary.assign(hue=summary[["augmentation", *by]].astype(str).agg(
        lambda row: " · ".join([f"augmentation={row.iloc[0]}", *[f"{k}={v}" for k, v in zip(by, row.iloc[1:])]]),
        axis=1))
    places = list(dict.fromkeys(summary["where"]))
    hues = sorted(dict.fromkeys(summary["hue"]), key=lambda h: (not h.startswith("augmentation=none"), h))  # baseline first
    # Each place shares its slot among the colours it has, so a place with one run group gets one full-width bar
    # (a sweep over data × model grouped --by a key that follows the model has one colour per place).
    present = {p: [h for h in hues if ((summary["where"] == p) & (summary["hue"] == h)).any()] for p in places}
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5.0, 1.3 * len(places) + 2) * len(metrics), 4.2),
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (metric, title) in zip(axes[0], metrics):
        for h, hue in enumerate(hues):
            part = summary[summary["hue"] == hue].groupby("where").first()
            mine = [i for i, p in enumerate(places) if hue in present[p]]
            means = [part[f"{metric} mean"].get(places[i], np.nan) for i in mine]
            stds = np.nan_to_num([part[f"{metric} std"].get(places[i], np.nan) for i in mine])
            widths = np.array([0.8 / len(present[places[i]]) for i in mine])
            x = np.array(mine, dtype=float) + np.array(
                [present[places[i]].index(hue) - (len(present[places[i]]) - 1) / 2 for i in mine]) * widths
            bars = ax.bar(x, means, widths, yerr=stds, capsize=3, label=hue, color=colors(h))
            ax.bar_label(bars, labels=["" if np.isnan(m) else f"{m:.3f}" for m in means], fontsize=7, padding=2)
        ax.set_xticks(np.arange(len(places)), [p.replace(" · ", "\n") for p in places], fontsize=8)
        # Accuracies near 1 differ in the second decimal: start the axis just below the lowest bar.
        low = np.nanmin(summary[f"{metric} mean"] - summary[f"{metric} std"].fillna(0))
        bottom = 0.0 if not low > 0.5 else np.floor((low - 0.01) * 20) / 20
        ax.set_ylim(bottom, 1.0 + (1.0 - bottom) * 0.08)
        ax.set_ylabel(f"{title} (mean ± std over runs)" + (f", axis from {bottom:.2f}" if bottom else ""))
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_best_confusions(client, table, path: Path) -> list[str]:
    """The ``confusion_matrix.png`` of the best finished run per (data, model), side by side.

    Returns the captions of the panels drawn (empty when no run has the artifact).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glyphlab.tracking.store import quiet_progress_bars

    quiet_progress_bars()
    done = table[(table.status == "FINISHED") & table["test/accuracy"].notna()]
    best = done.sort_values("test/accuracy", ascending=False).groupby(["data", "model"], sort=False).head(1)
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, run in best.sort_values(["data", "model"]).iterrows():
            try:
                local = client.download_artifacts(run.run_id, "confusion_matrix.png", tmp + "/" + run.run_id)
            except Exception:  # noqa: BLE001 - a run without the artifact just has no panel
                continue
            caption = (f"{run.model} on {run.data}, augmentation={run.augmentation}, seed {run.seed}: "
                       f"test accuracy {run['test/accuracy']:.3f}")
            panels.append((plt.imread(local), caption))
        if not panels:
            return []
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 6.4), squeeze=False)
        for ax, (image, caption) in zip(axes[0], panels):
            ax.imshow(image)
            ax.set_title(caption, fontsize=9)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return [caption for _, caption in panels]


def write_report(client, runs, chosen: str, out_dir: Path, command: str, by=()) -> str:
    """Write report.md, accuracy.png and confusion_matrices.png into ``out_dir``; returns the table."""
    table = runs_table(runs, by)
    summary = summarize(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown_table(summary)
    plot_accuracy(summary, out_dir / "accuracy.png")
    captions = plot_best_confusions(client, table, out_dir / "confusion_matrices.png")

    experiments = sorted({client.get_experiment(i).name for i in table.experiment_id.unique()})
    n_done = int((table.status == "FINISHED").sum())
    skipped = table[table.status != "FINISHED"]
    where = "" if chosen.startswith("the runs of experiment") else f" in {', '.join(f'experiment `{e}`' for e in experiments)}"
    lines = [f"# {out_dir.name}: comparison report", "",
             f"{n_done} finished MLflow runs: {chosen}{where}."]
    if len(skipped):
        counts = skipped.status.value_counts()
        lines.append("Left out (not finished): " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    lines += [f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}`.", "",
              text, "",
              f"Each row is one {' × '.join(group_keys(table))} group; *runs* is the number of finished runs "
              "in it (a sweep's seeds), accuracies are the mean ± sample standard deviation over those "
              "runs, fit time is the mean wall-clock training time, *best run* the MLflow run id "
              "(prefix) with the highest test accuracy.", "",
              "![accuracy per model and augmentation, mean ± std](accuracy.png)", ""]
    if settings := differing_settings(runs, table):
        lines += ["## Settings that differ between runs", "",
                  "Besides the seed and each model's, augmentation's and data set's own settings:", "",
                  *settings, ""]
    if captions:
        lines += ["## Confusion matrices of the best run per model", "",
                  *[f"- {c}" for c in captions], "",
                  "![confusion matrices of the best run per model](confusion_matrices.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return text
