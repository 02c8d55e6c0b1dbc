"""results.tsv → the few-shot table (markdown, printed and written to table.md) and few_shot.png.

    python experiments/few_shot/report.py     (or: study.py report)
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

ROWS = {"real": "real drawings only", "finetune": "read_real model fine-tuned on them (lr 3e-3)",
        "finetune:lr3e-4": "read_real model fine-tuned on them (lr 3e-4)",
        "synth": "synthesis + them (one run)", "synth:init": "synthesis + them, from the read_real model",
        "synth:s400": "synthesis + them, 400 a class (session 13's recipe)",
        "synth:rep40": "synthesis + them, 400 a class, each drawing ×40",
        "synth:own": "synthesis + them, session 17's recipe (each net its own synthetic set)",
        "synth:4blocks": "synthesis + them, session 18's recipe (four convolution blocks)",
        "synth:wa": "synthesis + them, session 21's recipe (mean of the epochs' weights)",
        "synth:tta": "synthesis + them, session 22's recipe (+ test-time views)",
        "synth:s24": "synthesis + them, session 22's recipe again (session 23's environment)",
        "synth:rw80": "synthesis + them, each also written 80 times from its strokes (data.extra_rewrites=80)",
        "synth:s800": "synthesis + them, 800 synthetic a class (the control: as many images, none from the drawings)",
        "synth:rwauto": "synthesis + them, written anew from their strokes (data.extra_rewrites=auto, the default "
                        "since session 25)"}
ALPHABETS = {"latin": "Omniglot Latin (a–z)", "greek": "Omniglot Greek", "katakana": "Omniglot katakana"}
KS = (0, 1, 2, 5, 10)
# the plot's rows (the table has them all): without synthesis, fine-tuned, synthesis + k, and the session-24 pair
PLOTTED = ("real", "finetune", "synth", "synth:s24", "synth:rwauto")
TARGETS = (0.95, 0.98)


def load(path: Path) -> dict:
    """``{(row, alphabet, k): [eval accuracy per draw]}``; the last line of a (row, alphabet, k, draw) wins."""
    cells: dict = {}
    with path.open() as f:
        for r in csv.DictReader(f, delimiter="\t"):
            cells[(r["row"], r["alphabet"], int(r["k"]), int(r["draw"]))] = float(r["eval_accuracy"])
    grouped = defaultdict(list)
    for (row, alphabet, k, _), accuracy in sorted(cells.items()):
        grouped[(row, alphabet, k)].append(accuracy)
    return grouped


def shown(values: list[float] | None, n_classes: int | None = None) -> str:
    if not values:
        return "—"
    mean = np.mean(values)
    spread = f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""
    return f"{mean:.3f}{spread} ({len(values)})"


def first_reaching(grouped: dict, row: str, alphabet: str, target: float) -> str:
    for k in KS:
        values = grouped.get((row, alphabet, k))
        if values and np.mean(values) >= target:
            return str(k)
    measured = [k for k in KS if grouped.get((row, alphabet, k))]
    return f"> {max(measured)}" if measured else "—"


def table(grouped: dict) -> str:
    lines = []
    for alphabet, title in ALPHABETS.items():
        lines += [f"**{title}**, tested on 10 held-out drawers (eval/accuracy, mean ± std (draws)):", "",
                  "| row | " + " | ".join(f"k = {k}" for k in KS) + " | k for 0.95 | k for 0.98 |",
                  "|---|" + "---|" * (len(KS) + 2)]
        for row, name in ROWS.items():
            cells = [shown(grouped.get((row, alphabet, k))) for k in KS]
            reach = [first_reaching(grouped, row, alphabet, t) for t in TARGETS]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {reach[0]} | {reach[1]} |")
        lines.append("")
    return "\n".join(lines)


def plot(grouped: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ALPHABETS), figsize=(4.2 * len(ALPHABETS), 4.6), sharey=True)
    for ax, (alphabet, title) in zip(axes, ALPHABETS.items()):
        for colour, row in enumerate(PLOTTED):
            name = ROWS[row]
            ks = [k for k in KS if grouped.get((row, alphabet, k))]
            if not ks:
                continue
            means = [np.mean(grouped[(row, alphabet, k)]) for k in ks]
            stds = [np.std(grouped[(row, alphabet, k)], ddof=1) if len(grouped[(row, alphabet, k)]) > 1 else 0
                    for k in ks]
            ax.errorbar(ks, means, yerr=stds, marker="o", capsize=3, label=name, color=f"C{colour}")
        for target in TARGETS:
            ax.axhline(target, color="grey", lw=0.8, ls="--")
        ax.set_xticks(KS)
        ax.set_title(title)
        ax.set_xlabel("your drawings per class (k drawers)")
        ax.set_ylim(0.5, 1.0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on 10 held-out drawers")
    handles = {}
    for ax in axes:  # every row once, whichever panel has it
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=120)


def report(results: Path, out: Path) -> None:
    grouped = load(results)
    text = table(grouped)
    (out / "table.md").write_text(text + "\n")
    plot(grouped, out / "few_shot.png")
    print(text)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    report(here / "results.tsv", here)
