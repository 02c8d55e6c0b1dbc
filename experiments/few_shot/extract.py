"""Omniglot drawings as the folders the few-shot study trains and tests on (data=folder layout).

    python experiments/few_shot/extract.py OMNIGLOT OUT [--draws 3] [--ks 1 2 5 10]

For each alphabet (Latin, Greek, katakana) and draw d of drawers (seeded: ``default_rng(d)``, a permutation
of the 20 drawers), writes the original PNGs, named by class (the character, as omniglot.LETTERS names them):

    OUT/<alphabet>/draw<d>/k<k>/<class>/*.png    the drawings of the first k drawers of the permutation
    OUT/<alphabet>/draw<d>/heldout/<class>/*.png  the drawings of its last 10 drawers (every k is tested on them)

The k sets are nested (k=1 ⊂ k=2 ⊂ … ⊂ k=10), so a draw's rows differ only in how many drawings they had.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from glyphlab.data.omniglot import LETTERS, _drawer, _find_sets

ALPHABETS = {"latin": "Latin", "greek": "Greek", "katakana": "Japanese_(katakana)"}
N_DRAWERS, N_HELDOUT = 20, 10


def drawer_order(draw: int) -> list[int]:
    """Draw ``draw``'s permutation of the drawers 1..20: the first k train, the last 10 are held out."""
    return [int(d) for d in np.random.default_rng(draw).permutation(np.arange(1, N_DRAWERS + 1))]


def characters(root: Path, alphabet: str) -> dict[str, list]:
    """``{class name: [(source, name), ...]}`` of one Omniglot alphabet, classes named as data=omniglot names them."""
    found = {}
    for _, alphabets in _find_sets(root, None):
        for name, chars in alphabets.items():
            found.setdefault(name, chars)
    chars = found[alphabet]
    return {LETTERS[alphabet][i]: chars[c] for i, c in enumerate(sorted(chars))}


def write(items, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for source, name in items:
        data = source().read() if callable(source) else Path(source).read_bytes()
        (folder / Path(name).name).write_bytes(data)


def extract(root: Path, out: Path, draws: int, ks: list[int]) -> None:
    for key, alphabet in ALPHABETS.items():
        by_class = characters(root, alphabet)
        for draw in range(draws):
            order = drawer_order(draw)
            base = out / key / f"draw{draw}"
            shutil.rmtree(base, ignore_errors=True)
            for cls, items in by_class.items():
                of = {d: [it for it in items if _drawer(it[1]) == d] for d in order}
                for k in ks:
                    write([it for d in order[:k] for it in of[d]], base / f"k{k}" / cls)
                write([it for d in order[-N_HELDOUT:] for it in of[d]], base / "heldout" / cls)
            (base / "drawers.json").write_text(json.dumps({"order": order, "heldout": order[-N_HELDOUT:]}))
            print(f"{key} draw {draw}: train drawers {order[:max(ks)]}, held out {sorted(order[-N_HELDOUT:])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("omniglot", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5, 10])
    args = parser.parse_args()
    extract(args.omniglot, args.out, args.draws, args.ks)
