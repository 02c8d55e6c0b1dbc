"""The leading table of README.md from visible.sh's results.tsv: eval accuracy per set and row, mean ± sample std over seeds.

    python experiments/synth_to_real/table.py /tmp/final/results.tsv                  # every row, in file order
    python experiments/synth_to_real/table.py /tmp/final/results.tsv recipe recipe-mlp  # only these rows
"""
from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

SETS = ("latin", "greek", "katakana", "digits")


def main(path: str, only: list[str]) -> None:
    runs: dict = defaultdict(dict)
    for line in open(path, encoding="utf-8"):
        name, data, seed, ev, *_ = line.rstrip("\n").split("\t")
        if ev != "FAIL":
            runs[(name, data)][int(seed)] = float(ev)  # a repeated seed: the last run counts
    names = only or list(dict.fromkeys(name for name, _ in runs))
    print("| row | " + " | ".join(SETS) + " | mean |")
    print("| --- |" + " --: |" * (len(SETS) + 1))
    for name in names:
        cells, means = [], []
        for data in SETS:
            seeds = runs.get((name, data), {})
            if not seeds:
                cells.append("")
                continue
            v = np.array([seeds[s] for s in sorted(seeds)])
            means.append(v.mean())
            each = " / ".join(f"{x:.3f}" for x in v)
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1):.3f} ({each})" if len(v) > 1 else f"{v[0]:.3f}")
        mean = f"{np.mean(means):.3f}" if len(means) == len(SETS) else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
